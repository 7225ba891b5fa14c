//! State shared by every llmux instance through Redis (`router_settings.redis_*`): request and
//! token counts against `rpm` / `tpm`, cooldowns, and the cost ledger.
//!
//! [`SharedState`] sits behind the [`HealthBook`](super::health::HealthBook), which keeps this
//! instance's own records and stays authoritative for them; the fleet's state is merged in.
//! Data enters from the router's hot path (a claimed request slot, tokens, a cooldown, a cost)
//! and from Redis (other instances' cooldowns on the `llmux:cooldowns` channel, counts returned
//! by every call); it leaves as extra [`Blocked`] verdicts, fleet counts for usage-based
//! routing and the metrics pane, [`SharedCost`], and `SharedState` / `Cooldown` route events.
//!
//! Keys (`{id}` is a deployment id, braced so one deployment's keys share a cluster slot):
//! - `llmux:{id}:rpm`: sorted set, one member per request scored by Redis's clock in ms; the
//!   rpm window slides over the last minute like the local one (no double burst at a minute
//!   boundary). Claimed atomically by a Lua script that checks the limits first, so `rpm: 5`
//!   admits exactly five requests a minute across the fleet.
//! - `llmux:{id}:tpm:{unix_minute}`: tokens per fixed minute (INCRBY, expires after 120 s);
//!   tokens are only known after a call, so tpm is approximate anyway.
//! - `llmux:{id}:cooldown`: the reason, expiring when the cooldown ends (only ever extended);
//!   every new cooldown is also published on `llmux:cooldowns` for the other instances.
//! - `llmux:cost`: hash of deployment id → picodollars spent, over the fleet's lifetime.
//! - `llmux:generation`: a random tag, set by the first instance to find it missing; when it
//!   changes, the store lost its state and each instance writes back all it holds.
//!
//! Only the rpm/tpm claim for a deployment that has a limit is a Redis round trip on the
//! request's path, bounded by [`CALL_TIMEOUT`]; everything else goes to a background worker
//! through a channel. Cooldowns from others arrive by pub/sub into the local book, so picks
//! never wait on Redis for them. While Redis is away the router runs on local state, counts
//! what happened meanwhile, and the worker pushes it back when Redis returns — or, when Redis
//! returns empty, everything this instance holds for the current windows, so a restart without
//! persistence does not reset the fleet's limits (budgets heal the same way, see
//! `budget::share`).

mod keys;
mod restore;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::health::{Blocked, LocalBook};
use crate::cache::{RedisSettingsError, RedisUse, redis_client, redis_runtime};
use crate::config::RedisSettings;
use crate::metrics::Usd;
use crate::secret::Secret;
use keys::{admit_cmd, unix_minute, until_next_minute};

/// The longest any Redis call may take before the router goes on without it.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(100);
/// Where the shared state's settings are written (`router_settings.redis_*`).
const SHARED_SETTINGS: RedisUse = RedisUse {
    url: "router_settings.redis_url",
    host: "router_settings.redis_host",
    section: "router_settings.redis_*",
    what: "shared state",
};
/// How long a fleet-wide read (the cost ledger) may wait behind this instance's queued writes.
const READ_TIMEOUT: Duration = Duration::from_millis(500);
/// Jobs queued for the worker before new ones are dropped (it drains them in microseconds
/// when Redis is up and into memory when it is down, so this only fills if it is stuck).
const JOB_QUEUE: usize = 4096;
/// Whether Redis is in use, for status bars and `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStatus {
    /// `host:port` (never the password or the URL as written).
    pub target: String,
    pub connected: bool,
    /// The last `SharedState` event's message; `None` until the first connection attempt
    /// ended (so a subscriber that came late still learns the state).
    pub message: Option<String>,
}

/// The fleet's cost ledger: what every instance sharing the Redis has spent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedCost {
    pub total: Usd,
    pub by_deployment: BTreeMap<String, Usd>,
}

/// A cooldown as published on `llmux:cooldowns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CooldownMessage {
    /// The publishing instance (it ignores its own messages).
    from: String,
    deployment: String,
    /// Time left, relative so that clock skew between hosts does not matter.
    ms: u64,
    reason: String,
}

/// What the hot path hands to the worker.
#[derive(Debug)]
enum Job {
    /// Requests sent (count against rpm) without a claim, `at` when they were sent.
    Requests {
        id: String,
        count: u32,
        at: SystemTime,
    },
    Tokens {
        id: String,
        minute: u64,
        tokens: u64,
    },
    Cooldown {
        id: String,
        left: Duration,
        reason: String,
    },
    Cost {
        id: String,
        cost: Usd,
    },
    /// A call on the hot path failed: check the connection.
    Suspect,
    ReadCost(oneshot::Sender<Option<SharedCost>>),
}

/// The last fleet counts Redis returned for one deployment. Both are lower bounds of the
/// truth until they expire: requests until the oldest counted one leaves the window, tokens
/// until their minute ends.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    requests: u32,
    requests_until: Option<Instant>,
    tokens: u64,
    tokens_minute: u64,
}

/// What the hot path and the worker share.
#[derive(Debug)]
struct Link {
    /// Set while Redis answers; the hot path skips Redis entirely while it is `None`.
    conn: Mutex<Option<MultiplexedConnection>>,
    connected: AtomicBool,
    /// The last announcement, set before its event is sent.
    announcement: Mutex<Option<String>>,
    target: String,
    /// Random per router: tags published messages and rpm members.
    instance: String,
    seq: AtomicU64,
    seen: Mutex<HashMap<String, Seen>>,
}

impl Link {
    fn conn(&self) -> Option<MultiplexedConnection> {
        lock(&self.conn).clone()
    }

    fn set_conn(&self, conn: Option<MultiplexedConnection>) {
        *lock(&self.conn) = conn;
    }

    /// A fresh, fleet-unique prefix for rpm members.
    fn member(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{}:{n}", self.instance)
    }

    /// Records what an admit script returned.
    fn saw(&self, id: &str, answer: AdmitAnswer, minute: u64, now: Instant) {
        {
            let mut seen = lock(&self.seen);
            let s = seen.entry(id.to_string()).or_default();
            s.requests = answer.requests;
            s.requests_until = Some(now + answer.free_in);
        }
        self.saw_tokens(id, minute, answer.tokens);
    }

    fn saw_tokens(&self, id: &str, minute: u64, tokens: u64) {
        let mut seen = lock(&self.seen);
        let s = seen.entry(id.to_string()).or_default();
        if s.tokens_minute != minute {
            s.tokens_minute = minute;
            s.tokens = 0;
        }
        s.tokens = s.tokens.max(tokens);
    }

    /// The fleet's requests in the window and tokens this minute, as last seen.
    fn usage(&self, id: &str, now: Instant) -> (u32, u64, Option<Instant>) {
        let seen = lock(&self.seen).get(id).copied().unwrap_or_default();
        let until = seen.requests_until.filter(|u| *u > now);
        let requests = if until.is_some() { seen.requests } else { 0 };
        let tokens = if seen.tokens_minute == unix_minute() {
            seen.tokens
        } else {
            0
        };
        (requests, tokens, until)
    }
}

/// One admit script answer.
#[derive(Debug, Clone, Copy)]
struct AdmitAnswer {
    admitted: bool,
    requests: u32,
    tokens: u64,
    free_in: Duration,
}

impl AdmitAnswer {
    fn from_reply(reply: (i64, i64, i64, i64)) -> AdmitAnswer {
        let (admitted, requests, tokens, free_ms) = reply;
        AdmitAnswer {
            admitted: admitted == 1,
            requests: u32::try_from(requests.max(0)).unwrap_or(u32::MAX),
            tokens: u64::try_from(tokens.max(0)).unwrap_or(0),
            free_in: Duration::from_millis(u64::try_from(free_ms.max(0)).unwrap_or(0)),
        }
    }
}

/// The router's link to Redis. Dropping it stops the background worker.
#[derive(Debug)]
pub(crate) struct SharedState {
    link: Arc<Link>,
    jobs: mpsc::Sender<Job>,
}

impl SharedState {
    /// Starts the background worker, which connects (and reconnects) on its own: a Redis that
    /// is down now is not an error. `groups` maps every deployment id to its group. Fails on
    /// settings that can never connect, or outside a tokio runtime.
    pub(crate) fn start(
        settings: &RedisSettings,
        groups: HashMap<String, String>,
        local: LocalBook,
        events: super::sink::EventSink,
    ) -> Result<SharedState, RedisSettingsError> {
        let client = redis_client(settings, SHARED_SETTINGS)?;
        let runtime = redis_runtime(SHARED_SETTINGS)?;
        let link = Arc::new(Link {
            conn: Mutex::new(None),
            connected: AtomicBool::new(false),
            announcement: Mutex::new(None),
            target: client.get_connection_info().addr().to_string(),
            instance: format!("{:016x}", rand::random::<u64>()),
            seq: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
        });
        let (jobs, rx) = mpsc::channel(JOB_QUEUE);
        let secrets = [settings.password.clone(), settings.url.clone()]
            .into_iter()
            .flatten()
            .collect();
        runtime.spawn(worker::run(worker::Worker {
            client,
            link: link.clone(),
            groups,
            local,
            events,
            secrets,
            jobs: rx,
            generation: None,
            spent: HashMap::new(),
        }));
        Ok(SharedState { link, jobs })
    }

    fn send(&self, job: Job) {
        // A full queue means the worker is stuck; losing a count beats blocking a request.
        let _ = self.jobs.try_send(job);
    }

    /// The live Redis connection, while Redis answers (budgets sync their spend over it).
    pub(crate) fn connection(&self) -> Option<MultiplexedConnection> {
        self.link.conn()
    }

    pub(crate) fn status(&self) -> SharedStatus {
        SharedStatus {
            target: self.link.target.clone(),
            connected: self.link.connected.load(Ordering::SeqCst),
            message: lock(&self.link.announcement).clone(),
        }
    }

    /// Blocked by the fleet's last seen counts (cooldowns from others are in the local book).
    pub(crate) fn blocked(
        &self,
        id: &str,
        rpm: Option<u32>,
        tpm: Option<u64>,
        now: Instant,
    ) -> Option<Blocked> {
        let (requests, tokens, requests_until) = self.link.usage(id, now);
        if let (Some(limit), Some(until)) = (rpm, requests_until)
            && requests >= limit
        {
            return Some(Blocked::RpmLimit {
                used: requests,
                limit,
                free_in: until - now,
            });
        }
        match tpm {
            Some(limit) if tokens >= limit => Some(Blocked::TpmLimit {
                used: tokens,
                limit,
                free_in: until_next_minute(),
            }),
            _ => None,
        }
    }

    pub(crate) fn usage(&self, id: &str, now: Instant) -> (u32, u64) {
        let (requests, tokens, _) = self.link.usage(id, now);
        (requests, tokens)
    }

    /// Claims a request slot (see [`super::health::HealthBook::admit`]). A deployment without
    /// limits, or a Redis that is away, costs no round trip: the request is counted by the
    /// worker.
    pub(crate) async fn admit(
        &self,
        id: &str,
        rpm: Option<u32>,
        tpm: Option<u64>,
        now: Instant,
    ) -> Option<Blocked> {
        let conn = if rpm.is_some() || tpm.is_some() {
            self.link.conn()
        } else {
            None
        };
        let Some(mut conn) = conn else {
            self.send(Job::Requests {
                id: id.to_string(),
                count: 1,
                at: SystemTime::now(),
            });
            return None;
        };
        let minute = unix_minute();
        let limit = |l: Option<u64>| l.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let cmd = admit_cmd(
            id,
            minute,
            limit(rpm.map(u64::from)),
            limit(tpm),
            &self.link.member(),
            1,
            Duration::ZERO,
        );
        let reply = tokio::time::timeout(CALL_TIMEOUT, cmd.query_async(&mut conn)).await;
        let answer = match reply {
            Ok(Ok(reply)) => AdmitAnswer::from_reply(reply),
            _ => {
                // Go on locally at once; the worker checks the link and says so if it is down.
                self.link.set_conn(None);
                self.send(Job::Suspect);
                self.send(Job::Requests {
                    id: id.to_string(),
                    count: 1,
                    at: SystemTime::now(),
                });
                return None;
            }
        };
        self.link.saw(id, answer, minute, now);
        if answer.admitted {
            None
        } else {
            // What the answer was just recorded as; recomputed for the same verdict.
            self.blocked(id, rpm, tpm, now).or(Some(Blocked::RpmLimit {
                used: answer.requests,
                limit: rpm.unwrap_or(0),
                free_in: answer.free_in,
            }))
        }
    }

    pub(crate) fn record_tokens(&self, id: &str, tokens: u64) {
        self.send(Job::Tokens {
            id: id.to_string(),
            minute: unix_minute(),
            tokens,
        });
    }

    pub(crate) fn record_cooldown(&self, id: &str, left: Duration, reason: &str) {
        self.send(Job::Cooldown {
            id: id.to_string(),
            left,
            reason: reason.to_string(),
        });
    }

    pub(crate) fn record_cost(&self, id: &str, cost: Usd) {
        if !cost.is_zero() {
            self.send(Job::Cost {
                id: id.to_string(),
                cost,
            });
        }
    }

    /// The fleet's ledger, read after this instance's own queued writes; `None` while Redis
    /// is away or slow.
    pub(crate) async fn cost(&self) -> Option<SharedCost> {
        let (tx, rx) = oneshot::channel();
        self.jobs.try_send(Job::ReadCost(tx)).ok()?;
        tokio::time::timeout(READ_TIMEOUT, rx)
            .await
            .ok()?
            .ok()
            .flatten()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Removes every secret from a message (a driver error could echo the URL).
fn scrub(secrets: &[Secret], text: &str) -> String {
    secrets.iter().fold(text.to_string(), |t, s| s.scrub(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_messages_round_trip() {
        let m = CooldownMessage {
            from: "i1".into(),
            deployment: "d".into(),
            ms: 1500,
            reason: "authentication failed".into(),
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<CooldownMessage>(&text).unwrap(), m);
    }

    #[test]
    fn settings_never_leak_the_password_into_errors_or_the_target() {
        let bad = RedisSettings {
            host: String::new(),
            port: 6379,
            password: None,
            url: Some(Secret::new("not a url with s3cret-pass")),
        };
        let err = redis_client(&bad, SHARED_SETTINGS).unwrap_err();
        assert!(matches!(err, RedisSettingsError::Url { .. }), "{err}");
        let err = err.to_string();
        assert!(err.starts_with("router_settings.redis_url: "), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let tls = RedisSettings {
            url: Some(Secret::new("rediss://:s3cret-pass@cache.example:6380")),
            ..bad.clone()
        };
        let err = redis_client(&tls, SHARED_SETTINGS).unwrap_err().to_string();
        assert!(err.contains("TLS") && !err.contains("s3cret"), "{err}");
        let good = RedisSettings {
            host: String::new(),
            port: 6379,
            password: None,
            url: Some(Secret::new("redis://:s3cret-pass@127.0.0.1:6390/0")),
        };
        let target = redis_client(&good, SHARED_SETTINGS)
            .unwrap()
            .get_connection_info()
            .addr()
            .to_string();
        assert_eq!(target, "127.0.0.1:6390");
    }

    #[test]
    fn seen_counts_expire_with_their_window() {
        let link = Link {
            conn: Mutex::new(None),
            connected: AtomicBool::new(false),
            announcement: Mutex::new(None),
            target: String::new(),
            instance: "i".into(),
            seq: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
        };
        let now = Instant::now();
        let answer = AdmitAnswer::from_reply((0, 5, 10, 2_000));
        link.saw("d", answer, unix_minute(), now);
        assert_eq!(link.usage("d", now).0, 5);
        assert_eq!(link.usage("d", now + Duration::from_secs(2)).0, 0);
        assert_eq!(link.member(), "i:0");
        assert_eq!(link.member(), "i:1");
    }
}
