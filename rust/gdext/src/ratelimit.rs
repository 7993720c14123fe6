//! Messages a game loop could repeat thousands of times a second (a send to a full queue, a read
//! from an empty one): the first of each kind for each peer is printed; after that, at most one a
//! second per kind, with a count of what was held back. The return code carries the news; the log
//! stays readable.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use godot::prelude::*;

const INTERVAL: Duration = Duration::from_secs(1);

struct Seen {
    last: Instant,
    held_back: u64,
}

static SEEN: Mutex<Option<HashMap<&'static str, Seen>>> = Mutex::new(None);
/// (kind, peer) pairs already printed once. Cleared when it reaches `MAX_FIRSTS`, so it stays small.
static FIRSTS: Mutex<Option<HashSet<(&'static str, i64)>>> = Mutex::new(None);
const MAX_FIRSTS: usize = 4096;

/// `Some(n)` if the message may be printed now, `n` being how many of its kind were held back.
fn admit(kind: &'static str, peer: Option<i64>) -> Option<u64> {
    if let Some(peer) = peer {
        let mut firsts = FIRSTS.lock().unwrap_or_else(|e| e.into_inner());
        let set = firsts.get_or_insert_with(HashSet::new);
        if set.len() >= MAX_FIRSTS {
            set.clear();
        }
        if set.insert((kind, peer)) {
            return Some(0);
        }
    }
    let mut guard = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    match map.get_mut(kind) {
        Some(seen) if now.duration_since(seen.last) < INTERVAL => {
            seen.held_back += 1;
            None
        }
        Some(seen) => {
            let n = std::mem::take(&mut seen.held_back);
            seen.last = now;
            Some(n)
        }
        None => {
            map.insert(
                kind,
                Seen {
                    last: now,
                    held_back: 0,
                },
            );
            Some(0)
        }
    }
}

fn text(message: String, held_back: u64) -> String {
    match held_back {
        0 => message,
        n => format!("{message} (and {n} more like it in the last second, not printed)"),
    }
}

/// A warning about `peer` (or about no peer in particular).
pub fn warn(kind: &'static str, peer: Option<i64>, message: String) {
    if let Some(n) = admit(kind, peer) {
        godot_warn!("{}", text(message, n));
    }
}

/// An error about `peer` (or about no peer in particular).
pub fn error(kind: &'static str, peer: Option<i64>, message: String) {
    if let Some(n) = admit(kind, peer) {
        godot_error!("{}", text(message, n));
    }
}
