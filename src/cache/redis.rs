//! The Redis cache (`cache_params.type: redis`): answers shared by every instance that points
//! at the same Redis, as JSON values under `{namespace or llmux:cache}:{sha256}`, written with
//! `SET … PX ttl` so Redis expires them.
//!
//! A background task owns connecting: it connects at start, reconnects with backoff when Redis
//! goes away, and announces each change once (through the [`Announce`] callback). The request
//! path only reads the connection state: while the first connection is being made it waits
//! for it (at most [`CONNECT_TIMEOUT`], so a one-shot `llmux ask` still finds the cache); while
//! Redis is away a lookup is an instant miss and a store is skipped. Every call is bounded by
//! [`CALL_TIMEOUT`]; a failed call marks the link down and asks the task to check it.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisConnectionInfo};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

use super::Announce;
use crate::config::RedisSettings;
use crate::secret::Secret;

/// The longest one cache GET or SET may take before the request goes on without it.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// The longest a connection attempt may take; also how long a request waits for the first one.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The first wait between connection attempts; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often an idle connection is checked, so a vanished Redis is noticed before a request.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// Where the connection stands, as the request path sees it.
#[derive(Clone)]
enum Link {
    /// The first connection attempt is under way.
    Connecting,
    Up(MultiplexedConnection),
    Down,
}

/// Where one user of Redis (the response cache, the router's shared state) reads its
/// settings, for messages that point there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisUse {
    /// Named when the URL does not parse.
    pub url: &'static str,
    /// Named when the host and port do not make an address.
    pub host: &'static str,
    /// Named for anything else.
    pub section: &'static str,
    /// What needs the connection, for "… needs a tokio runtime".
    pub what: &'static str,
}

/// The response cache's settings (`cache_params`).
pub const CACHE_SETTINGS: RedisUse = RedisUse {
    url: "litellm_settings.cache_params: the Redis URL is not usable",
    host: "litellm_settings.cache_params.host",
    section: "litellm_settings.cache_params",
    what: "the Redis cache",
};

/// Redis settings that can never connect. Messages never quote the URL: it may carry the
/// password.
#[derive(Debug, thiserror::Error)]
pub enum RedisSettingsError {
    /// The URL does not parse (`why` is scrubbed of the URL's secrets).
    #[error("{}: {why} (expected redis://[:password@]host[:port][/db])", .at.url)]
    Url { at: RedisUse, why: String },
    #[error("{}: {source}", .at.host)]
    Host {
        at: RedisUse,
        source: ::redis::RedisError,
    },
    #[error("{}: {source}", .at.section)]
    Client {
        at: RedisUse,
        source: ::redis::RedisError,
    },
    #[error("{}: {} needs a tokio runtime", .at.section, .at.what)]
    NoRuntime { at: RedisUse },
}

/// Why a Redis link (the cache's, the router's shared state's) failed a call or broke: what
/// their announcements say in parentheses. A Redis error's text can quote the URL: scrub the
/// message that carries it.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("no answer within {} ms", .0.as_millis())]
    NoAnswer(Duration),
    #[error("resync took over {} ms", .0.as_millis())]
    SlowResync(Duration),
    #[error("the connection was closed")]
    Closed,
}

/// `call`, given at most `limit` to answer.
pub async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, ::redis::RedisError>>,
) -> Result<T, LinkError> {
    match timeout(limit, call).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(LinkError::NoAnswer(limit)),
    }
}

/// The request path's handle. Dropping it ends the background task.
pub struct RedisCache {
    link: watch::Receiver<Link>,
    state: Arc<watch::Sender<Link>>,
    /// Asks the task to check the connection after a failed call.
    suspect: mpsc::Sender<()>,
}

impl RedisCache {
    /// Starts the background task; a Redis that is down now is not an error.
    pub fn start(
        settings: &RedisSettings,
        announce: Announce,
    ) -> Result<RedisCache, RedisSettingsError> {
        let client = client(settings, CACHE_SETTINGS)?;
        let runtime = runtime(CACHE_SETTINGS)?;
        let (state, link) = watch::channel(Link::Connecting);
        let state = Arc::new(state);
        let (suspect, suspects) = mpsc::channel(1);
        let secrets = [settings.password.clone(), settings.url.clone()]
            .into_iter()
            .flatten()
            .collect();
        runtime.spawn(run(Task {
            target: client.get_connection_info().addr().to_string(),
            client,
            state: state.clone(),
            announce,
            secrets,
            suspects,
        }));
        Ok(RedisCache {
            link,
            state,
            suspect,
        })
    }

    /// The connection to use now, waiting for the first one; `None` while Redis is away.
    async fn conn(&self) -> Option<MultiplexedConnection> {
        let mut link = self.link.clone();
        let ready = timeout(
            CONNECT_TIMEOUT,
            link.wait_for(|l| !matches!(l, Link::Connecting)),
        )
        .await;
        match ready {
            Ok(Ok(l)) => match &*l {
                Link::Up(conn) => Some(conn.clone()),
                Link::Connecting | Link::Down => None,
            },
            _ => None,
        }
    }

    /// A failed call: go on without Redis until the task has checked it.
    fn failed(&self) {
        self.state.send_replace(Link::Down);
        let _ = self.suspect.try_send(());
    }

    /// The value under `key`; `None` when there is none or Redis is away or slow.
    pub async fn get(&self, key: &str) -> Option<String> {
        let mut conn = self.conn().await?;
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(key);
        match timeout(CALL_TIMEOUT, cmd.query_async::<Option<String>>(&mut conn)).await {
            Ok(Ok(value)) => value,
            _ => {
                self.failed();
                None
            }
        }
    }

    /// Sets `key` to `value` for `ttl`; false when Redis is away or slow.
    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> bool {
        let Some(mut conn) = self.conn().await else {
            return false;
        };
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(ms);
        match timeout(CALL_TIMEOUT, cmd.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => true,
            _ => {
                self.failed();
                false
            }
        }
    }
}

struct Task {
    client: ::redis::Client,
    target: String,
    state: Arc<watch::Sender<Link>>,
    announce: Announce,
    secrets: Vec<Secret>,
    suspects: mpsc::Receiver<()>,
}

/// Connects, watches, reconnects; one announcement per change of state.
async fn run(mut t: Task) {
    let mut announced: Option<bool> = None;
    let mut backoff = BACKOFF_START;
    loop {
        match t.connect().await {
            Ok(mut conn) => {
                backoff = BACKOFF_START;
                let message = if announced == Some(false) {
                    format!("response cache: Redis at {} is back", t.target)
                } else {
                    format!(
                        "response cache: answers are shared through Redis at {}",
                        t.target
                    )
                };
                // In use before it is said, so whoever hears it finds the cache working.
                t.state.send_replace(Link::Up(conn.clone()));
                t.say(true, message);
                let Some(why) = t.watch(&mut conn).await else {
                    return;
                };
                t.state.send_replace(Link::Down);
                t.say(
                    false,
                    format!(
                        "response cache: lost Redis at {} ({why}); answering without the cache until it is back",
                        t.target
                    ),
                );
                announced = Some(false);
            }
            Err(why) => {
                if announced != Some(false) {
                    t.say(
                        false,
                        format!(
                            "response cache: Redis at {} is unreachable ({why}); answering without the cache until it answers",
                            t.target
                        ),
                    );
                    announced = Some(false);
                }
                // Said before a request waiting for the first attempt goes on, so its events
                // come after this one.
                t.state.send_replace(Link::Down);
                if !t.wait(backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

impl Task {
    fn say(&self, connected: bool, message: String) {
        let message = self.secrets.iter().fold(message, |m, s| s.scrub(&m));
        (self.announce)(connected, message);
    }

    async fn connect(&self) -> Result<MultiplexedConnection, LinkError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        bounded(
            CONNECT_TIMEOUT,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
    }

    /// Checks the connection when asked and every [`KEEPALIVE`]; returns why it broke, or
    /// `None` when the cache is gone.
    async fn watch(&mut self, conn: &mut MultiplexedConnection) -> Option<LinkError> {
        loop {
            tokio::select! {
                s = self.suspects.recv() => s?,
                _ = tokio::time::sleep(KEEPALIVE) => {}
            }
            let ping = ::redis::cmd("PING");
            match bounded(CALL_TIMEOUT, ping.query_async::<String>(conn)).await {
                // A slow answer, not a dead link: let requests use Redis again.
                Ok(_) => {
                    self.state.send_replace(Link::Up(conn.clone()));
                }
                Err(e) => return Some(e),
            }
        }
    }

    /// Waits `delay`; false when the cache is gone.
    async fn wait(&mut self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            s = self.suspects.recv() => s.is_some(),
        }
    }
}

/// A Redis client for the settings `at` reads (nothing is connected yet).
pub fn client(
    settings: &RedisSettings,
    at: RedisUse,
) -> Result<::redis::Client, RedisSettingsError> {
    let info = match &settings.url {
        Some(url) => url.expose().into_connection_info().map_err(|e| {
            let why = url.scrub(&e.to_string());
            RedisSettingsError::Url { at, why }
        })?,
        None => {
            let info = (settings.host.clone(), settings.port)
                .into_connection_info()
                .map_err(|source| RedisSettingsError::Host { at, source })?;
            match &settings.password {
                Some(p) => {
                    info.set_redis_settings(RedisConnectionInfo::default().set_password(p.expose()))
                }
                None => info,
            }
        }
    };
    ::redis::Client::open(info).map_err(|source| RedisSettingsError::Client { at, source })
}

/// The tokio runtime the background task of `at`'s user runs on.
pub fn runtime(at: RedisUse) -> Result<tokio::runtime::Handle, RedisSettingsError> {
    tokio::runtime::Handle::try_current().map_err(|_| RedisSettingsError::NoRuntime { at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_connect_say_where_they_are_written() {
        let bad = RedisSettings {
            host: String::new(),
            port: 6379,
            password: None,
            url: Some(Secret::new("not a url with s3cret-pass")),
        };
        let err = client(&bad, CACHE_SETTINGS).unwrap_err().to_string();
        assert!(
            err.starts_with("litellm_settings.cache_params: the Redis URL is not usable: "),
            "{err}"
        );
        assert!(
            err.ends_with(" (expected redis://[:password@]host[:port][/db])"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        assert_eq!(
            runtime(CACHE_SETTINGS).unwrap_err().to_string(),
            "litellm_settings.cache_params: the Redis cache needs a tokio runtime"
        );
    }
}
