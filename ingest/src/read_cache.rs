//! Media files recently read from disk, least recently used first, within a byte budget: what
//! the origin keeps so a popular file is read (and its buffer allocated and faulted in) once,
//! not once per request. Used for live segments that left memory (`hls/disk.rs`) and for past
//! broadcasts' files (`record/`); each keys entries by names that never change content.

use std::hash::Hash;

use bytes::Bytes;
use hashlink::LinkedHashMap;

/// The cache; `K` names a file.
pub struct ReadCache<K: Hash + Eq> {
    entries: LinkedHashMap<K, (Bytes, i64)>,
    bytes: usize,
    budget: usize,
}

impl<K: Hash + Eq> ReadCache<K> {
    /// An empty cache holding at most `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Self {
            entries: LinkedHashMap::new(),
            bytes: 0,
            budget,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A file's body and modification time, now the most recently used.
    pub fn get(&mut self, key: &K) -> Option<(Bytes, i64)> {
        let found = self.entries.get(key).cloned()?;
        self.entries.to_back(key);
        Some(found)
    }

    /// Keeps a file, dropping the least recently used beyond the budget. One file may take at
    /// most a quarter of the budget, so a few large ones cannot flush it.
    pub fn insert(&mut self, key: K, body: Bytes, modified_ms: i64) {
        let size = body.len();
        if size > self.budget / 4 {
            return;
        }
        if let Some((old, _)) = self.entries.insert(key, (body, modified_ms)) {
            self.bytes -= old.len();
        }
        self.bytes += size;
        while self.bytes > self.budget {
            let Some((_, (gone, _))) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= gone.len();
        }
    }

    /// Forgets the files `doomed` says.
    pub fn forget(&mut self, mut doomed: impl FnMut(&K) -> bool) {
        let bytes = &mut self.bytes;
        self.entries.retain(|k, (body, _)| {
            let drop = doomed(k);
            if drop {
                *bytes -= body.len();
            }
            !drop
        });
    }

    /// Forgets one file.
    pub fn remove(&mut self, key: &K) {
        if let Some((gone, _)) = self.entries.remove(key) {
            self.bytes -= gone.len();
        }
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.entries.values().map(|(b, _)| b.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_cache_keeps_the_recently_used_within_its_budget() {
        let seg = |len: usize| Bytes::from(vec![7u8; len]);
        let mut cache = ReadCache::new(1000);
        cache.insert(("alice", 1), seg(200), 1);
        cache.insert(("alice", 2), seg(200), 1);
        cache.insert(("bob", 1), seg(200), 1);
        assert_eq!(cache.bytes(), 600);
        assert!(cache.get(&("alice", 1)).is_some()); // now the most recent
        cache.insert(("alice", 3), seg(250), 1);
        cache.insert(("alice", 4), seg(250), 1);
        assert!(cache.bytes() <= 1000);
        assert!(
            cache.get(&("alice", 2)).is_none(),
            "least recently used left first"
        );
        assert!(cache.get(&("alice", 1)).is_some());
        assert_eq!(cache.get(&("bob", 1)).map(|(b, _)| b.len()), Some(200));
        cache.insert(("alice", 9), seg(251), 1);
        assert!(
            cache.get(&("alice", 9)).is_none(),
            "over a quarter of the budget"
        );
        cache.insert(("alice", 1), seg(100), 1); // replaced, not counted twice
        assert_eq!(cache.bytes(), cache.held());
        cache.remove(&("alice", 3));
        assert!(cache.get(&("alice", 3)).is_none() && cache.get(&("alice", 4)).is_some());
        cache.forget(|(user, _)| *user == "alice");
        assert_eq!(
            (cache.entries.len(), cache.bytes()),
            (1, 200),
            "only bob's is left"
        );
        let mut off = ReadCache::new(0);
        off.insert(("alice", 1), seg(1), 1);
        assert!(
            off.get(&("alice", 1)).is_none(),
            "a zero budget caches nothing"
        );
    }
}
