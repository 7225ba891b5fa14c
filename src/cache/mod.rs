//! The response cache (`litellm_settings.cache: true` + `cache_params`): an identical request
//! within the TTL is answered from here instead of upstream, at no cost.
//!
//! The router asks [`ResponseCache::get`] with the [`CacheKey`] of a request (a SHA-256 of
//! the namespace, the resolved model group and the request as it is sent, minus what does not
//! change the answer: tags, the no-cache flag, the streaming flag), and hands every complete,
//! successful answer to [`ResponseCache::put`] as a [`CachedAnswer`]. Answers live in this
//! process's memory ([`local`], bounded by entry count and bytes, least recently used out
//! first) or in Redis ([`redis`], shared by every instance using it, JSON values set with a
//! TTL). The cache never fails a request: a Redis that is away is a miss and one warning,
//! announced through the callback the router passes in. Nothing here knows about the router;
//! replaying an answer as a stream is the router's job, in pieces from [`replay_pieces`].

pub mod local;
mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::config::{CacheBackend, CacheSettings};
use crate::provider::{ChatRequest, ToolCall, Usage};

pub use local::{LocalCache, MAX_ENTRIES, MAX_ENTRY_BYTES, MAX_TOTAL_BYTES};
pub use redis::{
    LinkError, RedisSettingsError, RedisUse, bounded, client as redis_client,
    runtime as redis_runtime,
};

/// Version of the key and value layout; a change makes old entries misses, never garbage.
const FORMAT_VERSION: u32 = 1;
/// The Redis key prefix when `cache_params.namespace` is not set.
const DEFAULT_PREFIX: &str = "llmux:cache";
/// Characters per piece when a cached answer is replayed as a stream.
pub const REPLAY_PIECE_CHARS: usize = 64;
/// Request fields that do not change the answer and are left out of the key.
const NOT_IN_KEY: &[&str] = &["tags", "no_cache", "stream"];
/// Finish reasons of answers that are not kept: a refusal may not happen again.
const NOT_STORED_FINISH: &[&str] = &[
    "content_filter",
    "safety",
    "recitation",
    "refusal",
    "blocklist",
    "prohibited_content",
    "spii",
];

/// Says when the cache's Redis comes into use, is lost, or is back: (connected, message).
pub type Announce = Arc<dyn Fn(bool, String) + Send + Sync>;

/// What identifies a request in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key of `request` on `group` (already resolved from any alias) in `namespace`.
    pub fn new(namespace: Option<&str>, group: &str, request: &ChatRequest) -> CacheKey {
        let mut fields = match serde_json::to_value(request) {
            Ok(serde_json::Value::Object(map)) => map,
            // A request always serializes to an object; anything else still keys uniquely.
            Ok(other) => [("request".to_string(), other)].into_iter().collect(),
            Err(e) => [("unserializable".to_string(), e.to_string().into())]
                .into_iter()
                .collect(),
        };
        for name in NOT_IN_KEY {
            fields.remove(*name);
        }
        let canonical = serde_json::json!({
            "v": FORMAT_VERSION,
            "namespace": namespace,
            "group": group,
            "request": fields,
        });
        let mut hasher = Sha256::new();
        hasher.update(canonical.to_string().as_bytes());
        CacheKey(hasher.finalize().into())
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One stored answer: what a replay needs to look like the live one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// The usage of the original answer (reported again; nothing is spent).
    pub usage: Usage,
    /// Tool calls the answer made, replayed whole after the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The group and deployment that gave the original answer.
    pub group: String,
    pub deployment: String,
}

impl CachedAnswer {
    /// Whether an answer is worth keeping: it has text or tool calls and was not refused. Answers cut at
    /// `max_tokens` (`length`) are kept: the same request with the same limit is cut the same.
    pub fn storable(&self) -> bool {
        let refused = self
            .finish_reason
            .as_deref()
            .is_some_and(|f| NOT_STORED_FINISH.iter().any(|r| f.eq_ignore_ascii_case(r)));
        (!self.text.is_empty() || !self.tool_calls.is_empty()) && !refused
    }

    /// Bytes it holds, for the local cache's byte cap.
    pub fn weight(&self) -> usize {
        /// Roughly what an entry costs besides its strings (map slot, order, Arc, usage).
        const ENTRY_OVERHEAD: usize = 192;
        self.text.len()
            + self.reasoning.len()
            + self.finish_reason.as_ref().map_or(0, String::len)
            + self.group.len()
            + self.deployment.len()
            + self
                .tool_calls
                .iter()
                .map(|c| c.id.len() + c.name.len() + c.arguments.len())
                .sum::<usize>()
            + ENTRY_OVERHEAD
    }
}

/// Counters for `/metrics` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing (Redis away counts here).
    pub misses: u64,
    /// Answers stored.
    pub stores: u64,
    /// Entries and bytes held in memory now (0 for Redis).
    pub entries: usize,
    pub bytes: usize,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stores: AtomicU64,
}

enum Backend {
    Local(Mutex<LocalCache>),
    Redis(self::redis::RedisCache),
}

/// The cache a router answers from. Built once per router.
pub struct ResponseCache {
    backend: Backend,
    ttl: Duration,
    namespace: Option<String>,
    counters: Counters,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("backend", &self.kind())
            .field("ttl", &self.ttl)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl ResponseCache {
    /// Builds the cache; a Redis one starts connecting in the background (it needs a tokio
    /// runtime). Fails only on Redis settings that can never connect.
    pub fn new(
        settings: &CacheSettings,
        announce: Announce,
    ) -> Result<ResponseCache, RedisSettingsError> {
        let backend = match &settings.backend {
            CacheBackend::Local => Backend::Local(Mutex::new(LocalCache::default())),
            CacheBackend::Redis(r) => Backend::Redis(self::redis::RedisCache::start(r, announce)?),
        };
        Ok(ResponseCache {
            backend,
            ttl: settings.ttl,
            namespace: settings.namespace.clone(),
            counters: Counters::default(),
        })
    }

    /// `local` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Local(_) => "local",
            Backend::Redis(_) => "redis",
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The key of `request` on the resolved `group`.
    pub fn key(&self, group: &str, request: &ChatRequest) -> CacheKey {
        CacheKey::new(self.namespace.as_deref(), group, request)
    }

    /// The stored answer for `key`, if one is there and fresh.
    pub async fn get(&self, key: &CacheKey) -> Option<CachedAnswer> {
        let found = match &self.backend {
            Backend::Local(m) => lock(m).get(key, Instant::now()).map(|a| (*a).clone()),
            Backend::Redis(r) => r
                .get(&self.redis_key(key))
                .await
                .and_then(|json| serde_json::from_str(&json).ok()),
        };
        let counter = if found.is_some() {
            &self.counters.hits
        } else {
            &self.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `answer` under `key` for the TTL, if it is [storable](CachedAnswer::storable).
    /// With Redis this waits for the write, bounded by a short timeout, so the next request
    /// (here or on another instance) finds it.
    pub async fn put(&self, key: &CacheKey, answer: CachedAnswer) {
        if !answer.storable() {
            return;
        }
        let stored = match &self.backend {
            Backend::Local(m) => lock(m).put(*key, answer, self.ttl, Instant::now()),
            Backend::Redis(r) => match serde_json::to_string(&answer) {
                Ok(json) => r.put(&self.redis_key(key), &json, self.ttl).await,
                Err(_) => false,
            },
        };
        if stored {
            self.counters.stores.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> CacheStats {
        let (entries, bytes) = match &self.backend {
            Backend::Local(m) => {
                let c = lock(m);
                (c.len(), c.bytes())
            }
            Backend::Redis(_) => (0, 0),
        };
        CacheStats {
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            stores: self.counters.stores.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }

    /// `{namespace}:{hex}`, or `llmux:cache:{hex}` without a namespace.
    fn redis_key(&self, key: &CacheKey) -> String {
        let prefix = self.namespace.as_deref().unwrap_or(DEFAULT_PREFIX);
        format!("{prefix}:{}", key.hex())
    }
}

/// `text` in pieces of about [`REPLAY_PIECE_CHARS`] characters, on character boundaries.
pub fn replay_pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .char_indices()
            .nth(REPLAY_PIECE_CHARS)
            .map_or(rest.len(), |(i, _)| i);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Message;

    fn request(text: &str) -> ChatRequest {
        ChatRequest::new(vec![Message::user(text)])
    }

    #[test]
    fn the_key_ignores_tags_and_flags_but_not_parameters() {
        let base = request("hi");
        let k = CacheKey::new(None, "g", &base);
        let mut tagged = base.clone();
        tagged.tags = vec!["team-a".into()];
        tagged.no_cache = true;
        tagged.stream = false;
        assert_eq!(CacheKey::new(None, "g", &tagged), k);

        let mut hotter = base.clone();
        hotter.temperature = Some(0.7);
        let mut shorter = base.clone();
        shorter.max_tokens = Some(10);
        for other in [
            CacheKey::new(None, "g", &hotter),
            CacheKey::new(None, "g", &shorter),
            CacheKey::new(None, "other", &base),
            CacheKey::new(Some("ns"), "g", &base),
            CacheKey::new(None, "g", &request("hi!")),
        ] {
            assert_ne!(other, k);
        }
        assert_eq!(k.hex().len(), 64);
    }

    #[test]
    fn replay_pieces_rebuild_the_text_on_char_boundaries() {
        let text = "é".repeat(REPLAY_PIECE_CHARS * 2 + 5);
        let pieces: Vec<&str> = replay_pieces(&text).collect();
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[0].chars().count(), REPLAY_PIECE_CHARS);
        assert_eq!(pieces.concat(), text);
        assert_eq!(replay_pieces("").count(), 0);
    }

    #[test]
    fn refusals_and_empty_answers_are_not_stored() {
        let answer = |text: &str, finish: Option<&str>| CachedAnswer {
            text: text.into(),
            reasoning: String::new(),
            finish_reason: finish.map(str::to_string),
            usage: Usage::default(),
            tool_calls: Vec::new(),
            group: "g".into(),
            deployment: "d".into(),
        };
        assert!(answer("ok", Some("stop")).storable());
        assert!(answer("ok", Some("length")).storable());
        assert!(answer("ok", None).storable());
        assert!(!answer("", Some("stop")).storable());
        assert!(!answer("no", Some("content_filter")).storable());
        assert!(!answer("no", Some("SAFETY")).storable());
    }
}
