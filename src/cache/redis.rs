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

/// Redis cache settings that can never connect. Messages never quote the URL: it may carry
/// the password.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The URL does not parse (the reason is scrubbed of the URL's secrets).
    #[error(
        "litellm_settings.cache_params: the Redis URL is not usable: {0} (expected redis://[:password@]host[:port][/db])"
    )]
    Url(String),
    #[error("litellm_settings.cache_params.host: {0}")]
    Host(::redis::RedisError),
    #[error("litellm_settings.cache_params: {0}")]
    Client(::redis::RedisError),
    #[error("litellm_settings.cache_params: the Redis cache needs a tokio runtime")]
    NoRuntime,
}

/// Why Redis did not answer the background task.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("{0}")]
    Redis(::redis::RedisError),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
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
    pub fn start(settings: &RedisSettings, announce: Announce) -> Result<RedisCache, CacheError> {
        let client = client(settings)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| CacheError::NoRuntime)?;
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
        match timeout(
            CONNECT_TIMEOUT,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(LinkError::Redis(e)),
            Err(_) => Err(LinkError::Timeout(CONNECT_TIMEOUT)),
        }
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
            match timeout(CALL_TIMEOUT, ping.query_async::<String>(conn)).await {
                // A slow answer, not a dead link: let requests use Redis again.
                Ok(Ok(_)) => {
                    self.state.send_replace(Link::Up(conn.clone()));
                }
                Ok(Err(e)) => return Some(LinkError::Redis(e)),
                Err(_) => return Some(LinkError::Timeout(CALL_TIMEOUT)),
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

/// A Redis client for the settings (nothing is connected yet). Messages never quote the URL:
/// it may carry the password.
fn client(settings: &RedisSettings) -> Result<::redis::Client, CacheError> {
    let info = match &settings.url {
        Some(url) => url
            .expose()
            .into_connection_info()
            .map_err(|e| CacheError::Url(url.scrub(&e.to_string())))?,
        None => {
            let info = (settings.host.clone(), settings.port)
                .into_connection_info()
                .map_err(CacheError::Host)?;
            match &settings.password {
                Some(p) => {
                    info.set_redis_settings(RedisConnectionInfo::default().set_password(p.expose()))
                }
                None => info,
            }
        }
    };
    ::redis::Client::open(info).map_err(CacheError::Client)
}
