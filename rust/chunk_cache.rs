//! A decoded-chunk cache per open array, bounded in bytes, least recently used out first.
//! The halo pattern (neighbouring blocks re-reading the chunks they share) then decodes each
//! chunk about once.
//!
//! A cache belongs to the process that made it: in a forked child it is bypassed (every lookup
//! misses, nothing is added), because its mutex may have been inherited locked by a parent
//! thread that does not exist in the child.

use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

type ChunkCoords = Vec<u64>;

pub struct ChunkCache {
    capacity_bytes: usize,
    owner_pid: u32,
    state: Mutex<State>,
}

struct State {
    chunks: LruCache<ChunkCoords, Arc<Vec<u8>>>,
    bytes: usize,
}

impl ChunkCache {
    /// A cache holding at most `capacity_bytes` of decoded chunks.
    pub fn new(capacity_bytes: usize) -> Self {
        ChunkCache {
            capacity_bytes,
            owner_pid: std::process::id(),
            state: Mutex::new(State {
                chunks: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// Bytes currently held.
    pub fn size_bytes(&self) -> usize {
        self.lock().map_or(0, |state| state.bytes)
    }

    /// The state, or `None` in a forked child (see the module docs).
    fn lock(&self) -> Option<MutexGuard<'_, State>> {
        if std::process::id() != self.owner_pid {
            return None;
        }
        // A panic while holding the lock cannot leave the map inconsistent (every update is one
        // call), so a poisoned lock is still usable.
        Some(
            self.state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    pub fn get(&self, chunk: &[u64]) -> Option<Arc<Vec<u8>>> {
        self.lock()?.chunks.get(chunk).cloned()
    }

    /// Whether `chunk` is cached (without making it the most recently used).
    pub fn contains(&self, chunk: &[u64]) -> bool {
        self.lock()
            .is_some_and(|state| state.chunks.contains(chunk))
    }

    /// Adds a decoded chunk, evicting the least recently used ones beyond the bound; a chunk
    /// larger than the whole bound is not kept.
    pub fn insert(&self, chunk: ChunkCoords, data: Arc<Vec<u8>>) {
        if data.len() > self.capacity_bytes {
            return;
        }
        let Some(mut state) = self.lock() else {
            return;
        };
        state.bytes += data.len();
        if let Some(old) = state.chunks.put(chunk, data) {
            state.bytes -= old.len();
        }
        while state.bytes > self.capacity_bytes {
            match state.chunks.pop_lru() {
                Some((_, evicted)) => state.bytes -= evicted.len(),
                None => break,
            }
        }
    }

    /// Forgets a chunk (after it was written).
    pub fn invalidate(&self, chunk: &[u64]) {
        let Some(mut state) = self.lock() else {
            return;
        };
        if let Some(old) = state.chunks.pop(chunk) {
            state.bytes -= old.len();
        }
    }

    pub fn clear(&self) {
        let Some(mut state) = self.lock() else {
            return;
        };
        state.chunks.clear();
        state.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_beyond_the_bound() {
        let cache = ChunkCache::new(30);
        cache.insert(vec![0], Arc::new(vec![0; 10]));
        cache.insert(vec![1], Arc::new(vec![1; 10]));
        cache.insert(vec![2], Arc::new(vec![2; 10]));
        assert!(cache.get(&[0]).is_some()); // now most recent
        cache.insert(vec![3], Arc::new(vec![3; 10]));
        assert!(cache.get(&[1]).is_none());
        assert_eq!(cache.size_bytes(), 30);
        cache.insert(vec![4], Arc::new(vec![4; 31]));
        assert!(cache.get(&[4]).is_none());
        cache.invalidate(&[0]);
        assert_eq!(cache.size_bytes(), 20);
        cache.clear();
        assert_eq!(cache.size_bytes(), 0);
    }
}
