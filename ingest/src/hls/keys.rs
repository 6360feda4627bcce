//! The media keys of a private publish: a fresh random key per publish, a new one every
//! `rotate_every` segments, each with a random salt for its segments' IVs. The ring keeps the
//! keys the segments still fetchable need (listed, or retired but within their grace), so the
//! origin can serve them, and forgets older ones — keys are never written anywhere but memory.

use std::collections::VecDeque;

use boltstream_hls::encrypt::{MediaKey, SegmentKey};
use rand::rngs::OsRng;
use rand::RngCore;

/// Keys kept per channel: enough for a window of segments under the shortest rotation, plus
/// their grace; a bound on memory whatever the settings.
const KEPT: usize = 64;

/// One publish's keys.
pub struct KeyRing {
    rotate_every: u32,
    used: u32,
    /// Newest last.
    keys: VecDeque<MediaKey>,
    /// Segments encrypted under the current key, for the MPEG-TS output's IVs.
    counter: u64,
    last_id: u64,
}

impl KeyRing {
    /// A ring whose first key is made now; a key serves `rotate_every` segments (at least 1).
    pub fn new(rotate_every: u32, now_ms: i64) -> Self {
        let mut ring = Self {
            rotate_every: rotate_every.max(1),
            used: 0,
            keys: VecDeque::with_capacity(KEPT),
            counter: 0,
            last_id: 0,
        };
        ring.fresh(now_ms);
        ring
    }

    fn fresh(&mut self, now_ms: i64) {
        let mut key = [0u8; 16];
        OsRng.fill_bytes(&mut key);
        // Ids from the wall clock, forced to increase: never reused by a later publish either.
        self.last_id = (now_ms.max(0) as u64).max(self.last_id + 1);
        if self.keys.len() == KEPT {
            self.keys.pop_front();
        }
        self.keys.push_back(MediaKey {
            id: self.last_id,
            key,
            salt: OsRng.next_u64(),
        });
        self.used = 0;
    }

    /// The key the next segment uses, rotating when the current one has served its segments.
    pub fn next_segment(&mut self, now_ms: i64) -> MediaKey {
        if self.used >= self.rotate_every {
            self.fresh(now_ms);
        }
        self.used += 1;
        *self.keys.back().expect("a ring always holds a key")
    }

    /// The next MPEG-TS segment's key and IV (numbered within its key).
    pub fn next_ts_segment(&mut self, now_ms: i64) -> SegmentKey {
        let key = self.next_segment(now_ms);
        self.counter += 1;
        key.for_segment(self.counter)
    }

    /// A key by id, while kept.
    pub fn key(&self, id: u64) -> Option<[u8; 16]> {
        self.keys.iter().find(|k| k.id == id).map(|k| k.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_rotate_every_n_segments_and_are_never_reused() {
        let mut ring = KeyRing::new(3, 1000);
        let ids: Vec<u64> = (0..9).map(|_| ring.next_segment(1000).id).collect();
        assert_eq!(ids[0], ids[2]);
        assert_ne!(ids[2], ids[3]);
        assert_eq!(ids[3], ids[5]);
        assert!(ids[6] > ids[3]);
        let keys: Vec<[u8; 16]> = [ids[0], ids[3], ids[6]]
            .iter()
            .map(|id| ring.key(*id).unwrap())
            .collect();
        assert!(keys[0] != keys[1] && keys[1] != keys[2]);
        let a = ring.next_ts_segment(1000);
        let b = ring.next_ts_segment(1000);
        assert_ne!(a.tag.iv, b.tag.iv, "one IV per segment");
        // A bounded ring.
        let mut ring = KeyRing::new(1, 0);
        for _ in 0..KEPT * 2 {
            ring.next_segment(0);
        }
        assert_eq!(ring.keys.len(), KEPT);
        assert_eq!(ring.key(1), None, "the oldest are forgotten");
    }
}
