//! Topics on the game thread's side of a server: subscriptions (`crate::topics`), publishing to a
//! topic's subscribers as one broadcast, and the bus to other processes (`crate::bus`): what it
//! received is delivered to the local subscribers at `poll`, its changes of state and failed
//! publishes become signals.

use tungstenite::Bytes;

use super::{Server, Signal};
use crate::bus::{BusChange, BusMessage, BusStats};
use crate::error::BroadcastError;
use crate::event::{Kind, PeerId};
use crate::topics::{check_name, TopicError};

/// What a publish did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Local subscribers that did not get it, and why (as `broadcast` reports them).
    pub failed: Vec<(PeerId, BroadcastError)>,
    /// Local subscribers that have it queued.
    pub local: usize,
    /// Local subscribers of the topic, the excluded ones included (0: nobody here has it).
    pub subscribers: usize,
    /// Handed to the bus (`None`: there is no bus; `Some(false)`: the bus is down or too many
    /// publishes wait, counted in `BusStats::failed`).
    pub bus: Option<bool>,
}

impl Server {
    /// Subscribes connected peer `id` to `topic` (again: nothing changes).
    pub fn subscribe(&mut self, id: PeerId, topic: &str) -> Result<(), TopicError> {
        if !self.peers.contains_key(&id) {
            return Err(TopicError::UnknownPeer(id));
        }
        if self.topics.subscribe(id, topic)? {
            if let Some(bus) = &self.bus {
                bus.subscribe(topic);
            }
        }
        Ok(())
    }

    pub fn unsubscribe(&mut self, id: PeerId, topic: &str) -> Result<(), TopicError> {
        if !self.peers.contains_key(&id) {
            return Err(TopicError::UnknownPeer(id));
        }
        if self.topics.unsubscribe(id, topic)? {
            if let Some(bus) = &self.bus {
                bus.unsubscribe(topic);
            }
        }
        Ok(())
    }

    /// `data` to every local subscriber of `topic` but those in `exclude` (one shared copy, as
    /// `broadcast`), and to the other processes' subscribers through the bus.
    pub fn publish(
        &self,
        topic: &str,
        data: Bytes,
        kind: impl Into<Kind>,
        exclude: &[PeerId],
    ) -> Result<Published, TopicError> {
        check_name(topic)?;
        let kind = kind.into();
        let ids: Vec<PeerId> = self.topics.subscribers(topic).collect();
        let bus = self.bus.as_ref().map(|b| b.publish(topic, kind.text, &data));
        let failed = if ids.is_empty() {
            Vec::new()
        } else {
            self.broadcast(data, kind, Some(&ids), exclude)
        };
        let excluded = ids.iter().filter(|id| exclude.contains(id)).count();
        Ok(Published {
            subscribers: ids.len(),
            local: ids.len() - excluded - failed.len(),
            failed,
            bus,
        })
    }

    /// The local subscribers of `topic`.
    pub fn subscribers(&self, topic: &str) -> Vec<PeerId> {
        self.topics.subscribers(topic).collect()
    }

    /// The topics peer `id` is subscribed to.
    pub fn topics_of(&self, id: PeerId) -> &[String] {
        self.topics.topics_of(id)
    }

    pub fn has_bus(&self) -> bool {
        self.bus.is_some()
    }

    /// Whether the bus is connected (`false` without one).
    pub fn is_bus_up(&self) -> bool {
        self.bus.as_ref().is_some_and(|b| b.is_up())
    }

    /// The bus's counters, and the local deliveries of its messages that failed (a full queue).
    pub fn bus_stats(&self) -> (BusStats, u64) {
        (
            self.bus.as_ref().map(|b| b.stats()).unwrap_or_default(),
            self.bus_undelivered,
        )
    }

    /// A peer is gone: its subscriptions end.
    pub(super) fn forget_topics(&mut self, id: PeerId) {
        for topic in self.topics.forget(id) {
            if let Some(bus) = &self.bus {
                bus.unsubscribe(&topic);
            }
        }
    }

    /// At `poll`: what the bus received goes to the local subscribers; its changes of state and
    /// newly failed publishes become signals.
    pub(super) fn poll_bus(&mut self) {
        let Some(bus) = &self.bus else {
            return;
        };
        for change in bus.take_changes() {
            self.bus_signals.push_back(match change {
                BusChange::Up => Signal::BusConnected,
                BusChange::Down(reason) => Signal::BusDisconnected { reason },
            });
        }
        let failed = bus.stats().failed;
        if failed > self.bus_failed_told {
            self.bus_signals.push_back(Signal::BusPublishFailed {
                count: failed - self.bus_failed_told,
            });
            self.bus_failed_told = failed;
        }
        let mut received: Vec<BusMessage> = std::mem::take(&mut self.bus_received);
        bus.take_messages(&mut received);
        for msg in received.drain(..) {
            let ids: Vec<PeerId> = self.topics.subscribers(&msg.topic).collect();
            if !ids.is_empty() {
                let failed = self.broadcast(msg.data, msg.text, Some(&ids), &[]);
                self.bus_undelivered += failed.len() as u64;
            }
        }
        self.bus_received = received;
    }
}
