//! The in-memory cache (`cache_params.type: local`): this process's answers, bounded.
//!
//! Entries come in through [`LocalCache::put`] with their TTL and leave through
//! [`LocalCache::get`] while fresh. Memory stays bounded by two caps, whichever is reached
//! first: [`MAX_ENTRIES`] answers and [`MAX_TOTAL_BYTES`] of text; past either, the least
//! recently used entries go. An answer bigger than [`MAX_ENTRY_BYTES`] is not kept at all.
//! Expired entries are dropped when looked up or when they reach the end of the LRU order.
//! Time is passed in, so tests drive expiry without waiting.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{CacheKey, CachedAnswer};

/// Answers kept at most (LiteLLM's in-memory cache keeps 200; ours are smaller, text only).
pub const MAX_ENTRIES: usize = 1000;
/// Bytes of answers kept at most, over all entries.
pub const MAX_TOTAL_BYTES: usize = 64 * 1024 * 1024;
/// The biggest single answer kept (LiteLLM's `max_size_per_item` is 1 MB too).
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
struct Slot {
    answer: Arc<CachedAnswer>,
    weight: usize,
    expires: Instant,
    /// Position in the LRU order: higher is more recently used.
    used: u64,
}

/// An LRU map of answers with a TTL each.
#[derive(Debug)]
pub struct LocalCache {
    slots: HashMap<CacheKey, Slot>,
    /// `used` → key, oldest first.
    order: BTreeMap<u64, CacheKey>,
    next_use: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for LocalCache {
    fn default() -> Self {
        LocalCache::with_limits(MAX_ENTRIES, MAX_TOTAL_BYTES)
    }
}

impl LocalCache {
    /// A cache holding at most `max_entries` answers and `max_bytes` bytes.
    pub fn with_limits(max_entries: usize, max_bytes: usize) -> LocalCache {
        LocalCache {
            slots: HashMap::new(),
            order: BTreeMap::new(),
            next_use: 0,
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes held (as [`CachedAnswer::weight`] counts them).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The answer under `key` if it is still fresh at `now`; marks it recently used.
    pub fn get(&mut self, key: &CacheKey, now: Instant) -> Option<Arc<CachedAnswer>> {
        let slot = self.slots.get(key)?;
        if slot.expires <= now {
            self.remove(key);
            return None;
        }
        let used = self.bump();
        let slot = self.slots.get_mut(key)?;
        self.order.remove(&slot.used);
        slot.used = used;
        self.order.insert(used, *key);
        Some(slot.answer.clone())
    }

    /// Keeps `answer` until `now + ttl`, replacing any entry under `key`, then evicts the
    /// least recently used entries past the caps. Returns false when it was too big to keep.
    pub fn put(
        &mut self,
        key: CacheKey,
        answer: CachedAnswer,
        ttl: Duration,
        now: Instant,
    ) -> bool {
        let weight = answer.weight();
        if weight > MAX_ENTRY_BYTES.min(self.max_bytes) {
            return false;
        }
        self.remove(&key);
        let used = self.bump();
        self.order.insert(used, key);
        self.bytes += weight;
        self.slots.insert(
            key,
            Slot {
                answer: Arc::new(answer),
                weight,
                expires: now + ttl,
                used,
            },
        );
        while self.slots.len() > self.max_entries || self.bytes > self.max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.slots.remove(&oldest) {
                self.bytes -= slot.weight;
            }
        }
        true
    }

    fn remove(&mut self, key: &CacheKey) {
        if let Some(slot) = self.slots.remove(key) {
            self.order.remove(&slot.used);
            self.bytes -= slot.weight;
        }
    }

    fn bump(&mut self) -> u64 {
        self.next_use += 1;
        self.next_use
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ChatRequest, Message, Usage};

    const TTL: Duration = Duration::from_secs(1);

    fn key(n: usize) -> CacheKey {
        CacheKey::new(
            None,
            "g",
            &ChatRequest::new(vec![Message::user(n.to_string())]),
        )
    }

    fn answer(text: &str) -> CachedAnswer {
        CachedAnswer {
            text: text.into(),
            reasoning: String::new(),
            finish_reason: Some("stop".into()),
            usage: Usage::default(),
            tool_calls: Vec::new(),
            group: "g".into(),
            deployment: "d".into(),
        }
    }

    #[test]
    fn entries_expire_after_their_ttl() {
        let mut c = LocalCache::default();
        let t0 = Instant::now();
        assert!(c.put(key(1), answer("a"), TTL, t0));
        assert_eq!(
            c.get(&key(1), t0 + TTL / 2).map(|a| a.text.clone()),
            Some("a".into())
        );
        assert!(c.get(&key(1), t0 + TTL).is_none());
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn the_entry_cap_evicts_the_least_recently_used() {
        let mut c = LocalCache::with_limits(3, MAX_TOTAL_BYTES);
        let t0 = Instant::now();
        for n in 0..3 {
            c.put(key(n), answer("x"), TTL, t0);
        }
        // 0 is used again, so 1 is now the least recently used.
        assert!(c.get(&key(0), t0).is_some());
        c.put(key(3), answer("x"), TTL, t0);
        assert_eq!(c.len(), 3);
        assert!(c.get(&key(1), t0).is_none());
        for n in [0, 2, 3] {
            assert!(c.get(&key(n), t0).is_some(), "{n} was evicted");
        }
    }

    #[test]
    fn the_byte_cap_holds_and_oversized_answers_are_refused() {
        let one = answer(&"x".repeat(1000)).weight();
        let mut c = LocalCache::with_limits(MAX_ENTRIES, one * 2 + one / 2);
        let t0 = Instant::now();
        for n in 0..10 {
            c.put(key(n), answer(&"x".repeat(1000)), TTL, t0);
            assert!(c.bytes() <= one * 2 + one / 2);
        }
        assert_eq!(c.len(), 2);
        assert!(c.get(&key(9), t0).is_some());

        let mut big = LocalCache::default();
        assert!(!big.put(key(0), answer(&"x".repeat(MAX_ENTRY_BYTES)), TTL, t0));
        assert!(big.is_empty());
    }

    #[test]
    fn replacing_an_entry_keeps_the_byte_count_right() {
        let mut c = LocalCache::default();
        let t0 = Instant::now();
        c.put(key(0), answer("short"), TTL, t0);
        c.put(key(0), answer("a longer answer"), TTL, t0);
        assert_eq!(c.len(), 1);
        assert_eq!(c.bytes(), answer("a longer answer").weight());
    }
}
