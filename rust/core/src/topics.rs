//! Topics: which peers are subscribed to which names, on the game thread (`Server::subscribe`,
//! `Server::publish`). A publish goes to the topic's subscribers as one `broadcast` (one copy of
//! the bytes, framed per recipient on the I/O side); with a bus (`crate::bus`) it also goes to the
//! other processes, and the bus is told when a topic gets its first local subscriber or loses its
//! last, so that a process only hears the topics it has subscribers for.

use std::collections::{HashMap, HashSet};

use thiserror::Error;

use crate::event::PeerId;

/// The longest topic name, in bytes (UTF-8).
pub const MAX_TOPIC_LEN: usize = 256;
/// The most topics one client may be subscribed to.
pub const MAX_TOPICS_PER_PEER: usize = 64;

/// Why a subscription or a publish was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TopicError {
    #[error("a topic name must be 1 to {MAX_TOPIC_LEN} bytes of UTF-8, not {0} bytes")]
    BadName(usize),
    #[error("client {0} is already subscribed to {MAX_TOPICS_PER_PEER} topics")]
    TooMany(PeerId),
    #[error("no client with id {0} is connected")]
    UnknownPeer(PeerId),
    #[error("client {0} is not subscribed to {1:?}")]
    NotSubscribed(PeerId, String),
}

/// Checks a topic name.
pub fn check_name(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::BadName(topic.len()));
    }
    Ok(())
}

/// The subscriptions of one server's peers, both ways.
#[derive(Debug, Default)]
pub struct Topics {
    by_topic: HashMap<String, HashSet<PeerId>>,
    by_peer: HashMap<PeerId, Vec<String>>,
}

impl Topics {
    /// Subscribes `id` to `topic`. `Ok(true)`: the topic had no subscriber before (the bus should
    /// hear it now); subscribing again is `Ok(false)`.
    pub fn subscribe(&mut self, id: PeerId, topic: &str) -> Result<bool, TopicError> {
        check_name(topic)?;
        let mine = self.by_peer.entry(id).or_default();
        if mine.iter().any(|t| t == topic) {
            return Ok(false);
        }
        if mine.len() >= MAX_TOPICS_PER_PEER {
            return Err(TopicError::TooMany(id));
        }
        mine.push(topic.to_string());
        let subscribers = self.by_topic.entry(topic.to_string()).or_default();
        subscribers.insert(id);
        Ok(subscribers.len() == 1)
    }

    /// Unsubscribes `id` from `topic`. `Ok(true)`: that was the topic's last subscriber.
    pub fn unsubscribe(&mut self, id: PeerId, topic: &str) -> Result<bool, TopicError> {
        check_name(topic)?;
        let not_subscribed = || TopicError::NotSubscribed(id, topic.to_string());
        let mine = self.by_peer.get_mut(&id).ok_or_else(not_subscribed)?;
        let at = mine.iter().position(|t| t == topic).ok_or_else(not_subscribed)?;
        mine.swap_remove(at);
        if mine.is_empty() {
            self.by_peer.remove(&id);
        }
        Ok(self.leave(id, topic))
    }

    /// `id` is gone: its subscriptions end. Returns the topics that lost their last subscriber.
    pub fn forget(&mut self, id: PeerId) -> Vec<String> {
        let Some(mine) = self.by_peer.remove(&id) else {
            return Vec::new();
        };
        mine.into_iter().filter(|t| self.leave(id, t)).collect()
    }

    fn leave(&mut self, id: PeerId, topic: &str) -> bool {
        let Some(subscribers) = self.by_topic.get_mut(topic) else {
            return false;
        };
        subscribers.remove(&id);
        if subscribers.is_empty() {
            self.by_topic.remove(topic);
            return true;
        }
        false
    }

    /// The subscribers of `topic`, in no particular order.
    pub fn subscribers(&self, topic: &str) -> impl Iterator<Item = PeerId> + '_ {
        self.by_topic.get(topic).into_iter().flatten().copied()
    }

    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.by_topic.get(topic).map_or(0, HashSet::len)
    }

    /// The topics `id` is subscribed to, in the order it subscribed (but for removals).
    pub fn topics_of(&self, id: PeerId) -> &[String] {
        self.by_peer.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Every topic with at least one subscriber (what a bus connection must listen to).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_topic.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_both_ways_and_the_bus_changes() {
        let mut t = Topics::default();
        assert_eq!(t.subscribe(2, "blue"), Ok(true), "first subscriber");
        assert_eq!(t.subscribe(3, "blue"), Ok(false));
        assert_eq!(t.subscribe(3, "blue"), Ok(false), "again: nothing changes");
        assert_eq!(t.subscribe(3, "red"), Ok(true));
        let mut blue: Vec<_> = t.subscribers("blue").collect();
        blue.sort();
        assert_eq!(blue, [2, 3]);
        assert_eq!(t.topics_of(3), ["blue", "red"]);
        assert_eq!(t.unsubscribe(2, "blue"), Ok(false));
        assert_eq!(
            t.unsubscribe(2, "blue"),
            Err(TopicError::NotSubscribed(2, "blue".into()))
        );
        let mut gone = t.forget(3);
        gone.sort();
        assert_eq!(gone, ["blue", "red"], "the last subscriber left both");
        assert_eq!(t.names().count(), 0);
        assert!(t.topics_of(3).is_empty());
    }

    #[test]
    fn names_and_counts_are_bounded() {
        let mut t = Topics::default();
        assert_eq!(t.subscribe(2, ""), Err(TopicError::BadName(0)));
        let long = "x".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(t.subscribe(2, &long), Err(TopicError::BadName(MAX_TOPIC_LEN + 1)));
        assert!(t.subscribe(2, &"x".repeat(MAX_TOPIC_LEN)).is_ok());
        for i in 1..MAX_TOPICS_PER_PEER {
            t.subscribe(2, &format!("t{i}")).unwrap();
        }
        assert_eq!(t.subscribe(2, "one more"), Err(TopicError::TooMany(2)));
        assert_eq!(t.topics_of(2).len(), MAX_TOPICS_PER_PEER);
    }
}
