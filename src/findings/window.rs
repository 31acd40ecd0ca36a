//! Time windows per key, bounded: the one small framework the cross-connection findings
//! count with (as fail2ban's `findtime`/`maxretry`). Each key keeps the events of the last
//! `window` seconds of capture time, at most `max_per_key` of them; at most `max_keys` keys
//! are tracked. Whatever a cap turns away is counted, never silently lost.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::time::Timestamp;

/// What the caps turned away, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowDrops {
    /// Events of a key not tracked because `max_keys` keys were.
    pub keys_full: u64,
    /// Oldest events of a key dropped to stay under `max_per_key`.
    pub events_over_cap: u64,
}

/// Events per key within a sliding window of capture time.
#[derive(Debug)]
pub struct KeyedWindows<K, V> {
    map: HashMap<K, VecDeque<(Timestamp, V)>>,
    window_secs: u64,
    max_keys: usize,
    max_per_key: usize,
    drops: WindowDrops,
}

impl<K: Eq + Hash + Clone, V> KeyedWindows<K, V> {
    pub fn new(window_secs: u64, max_keys: usize, max_per_key: usize) -> Self {
        KeyedWindows {
            map: HashMap::new(),
            window_secs,
            max_keys: max_keys.max(1),
            max_per_key: max_per_key.max(1),
            drops: WindowDrops::default(),
        }
    }

    pub fn drops(&self) -> WindowDrops {
        self.drops
    }

    /// Adds an event and returns the key's events within the window ending at `ts` (the
    /// new one included), or `None` when the key could not be tracked.
    pub fn push(&mut self, key: &K, ts: Timestamp, value: V) -> Option<&VecDeque<(Timestamp, V)>> {
        if !self.map.contains_key(key) {
            if self.map.len() >= self.max_keys {
                self.prune_idle(ts);
            }
            if self.map.len() >= self.max_keys {
                self.drops.keys_full += 1;
                return None;
            }
        }
        let window = self.window_secs;
        let events = self.map.entry(key.clone()).or_default();
        while events
            .front()
            .is_some_and(|(t, _)| ts.secs_since(*t) > window)
        {
            events.pop_front();
        }
        if events.len() >= self.max_per_key {
            events.pop_front();
            self.drops.events_over_cap += 1;
        }
        events.push_back((ts, value));
        Some(events)
    }

    /// Forgets keys whose newest event left the window: they count for nothing any more.
    fn prune_idle(&mut self, now: Timestamp) {
        let window = self.window_secs;
        self.map.retain(|_, events| {
            events
                .back()
                .is_some_and(|(t, _)| now.secs_since(*t) <= window)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }

    #[test]
    fn events_leave_the_window_and_caps_are_counted() {
        let mut w: KeyedWindows<u8, u8> = KeyedWindows::new(600, 2, 3);
        assert_eq!(w.push(&1, at(0), 1).map(VecDeque::len), Some(1));
        assert_eq!(w.push(&1, at(600), 2).map(VecDeque::len), Some(2));
        // 601 s after the first: it left the window.
        assert_eq!(w.push(&1, at(601), 3).map(VecDeque::len), Some(2));
        assert_eq!(w.push(&1, at(602), 4).map(VecDeque::len), Some(3));
        assert_eq!(w.push(&1, at(603), 5).map(VecDeque::len), Some(3));
        assert_eq!(w.drops().events_over_cap, 1);
        assert!(w.push(&2, at(603), 1).is_some());
        assert!(w.push(&3, at(603), 1).is_none(), "two keys at most");
        assert_eq!(w.drops().keys_full, 1);
        // Once key 2's events are old, a new key takes its place.
        assert!(w.push(&3, at(1300), 1).is_some());
    }
}
