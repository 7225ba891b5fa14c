//! The background task behind [`SharedState`](super::SharedState): it owns the connections to
//! Redis, runs the writes the hot path queues (request and token counts, cooldowns, costs),
//! applies the cooldowns other instances publish to the local book, and reconnects with
//! backoff when Redis goes away.
//!
//! Jobs come in on a channel; what Redis answers goes into the link's cache of fleet counts,
//! the local book, and `SharedState` route events — one when Redis is lost or unreachable,
//! one when it is (back) in use, never one per failed attempt. While Redis is away, counts and
//! costs are kept in memory and pushed when it returns, together with this instance's running
//! cooldowns; the cooldowns already in Redis are pulled into the local book. When Redis comes
//! back without its state (the generation key changed: restarted empty, an empty replica, a
//! flush, also noticed on a live link at the keepalive), only pushing what happened meanwhile
//! would forget everything before: the worker writes back all this instance holds instead (its
//! requests of the last minute, its tokens of this minute, its lifetime cost, its cooldowns).
//! The task ends when the router (the last job sender) is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use redis::AsyncConnectionConfig;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::keys::{
    COOLDOWN_CHANNEL, COOLDOWN_SCRIPT, COST_KEY, TPM_KEY_TTL_SECS, admit_cmd, cooldown_key,
    tpm_key, unix_minute,
};
use super::restore::Pending;
use super::{AdmitAnswer, CALL_TIMEOUT, CooldownMessage, Job, Link, SharedCost, lock, scrub};
use crate::cache::{LinkError, bounded};
use crate::metrics::Usd;
use crate::router::event::RouteEventKind;
use crate::router::health::LocalBook;
use crate::secret::Secret;

/// The longest a connection attempt (with its handshake and subscription) or a resync may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The first wait between connection attempts; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often an idle link is checked, so a Redis that vanished without closing the socket, or
/// lost its state without closing it, is noticed before a request needs it.
const KEEPALIVE: Duration = Duration::from_secs(5);

pub(super) struct Worker {
    pub(super) client: redis::Client,
    pub(super) link: Arc<Link>,
    /// Deployment id → group, for the deployments this instance knows.
    pub(super) groups: HashMap<String, String>,
    pub(super) local: LocalBook,
    /// Where its route events about the shared state go.
    pub(super) events: crate::router::sink::EventSink,
    pub(super) secrets: Vec<Secret>,
    pub(super) jobs: mpsc::Receiver<Job>,
    /// The store's generation tag as last seen (`None` before the first connection).
    pub(super) generation: Option<String>,
    /// Deployment id → what this instance spent, over its lifetime: what it writes back
    /// into a ledger that was lost.
    pub(super) spent: HashMap<String, Usd>,
}

/// Why serving on a connection stopped.
enum Ended {
    /// The router is gone.
    Closed,
    Broken(LinkError),
}

pub(super) async fn run(mut w: Worker) {
    let mut pending = Pending::default();
    // The state last announced: `None` before the first announcement.
    let mut announced: Option<bool> = None;
    let mut backoff = BACKOFF_START;
    let target = w.link.target.clone();
    loop {
        let connected = match w.connect().await {
            Ok((mut conn, sink, stream)) => match w.resync(&mut conn, &mut pending).await {
                Ok(summary) => Ok((conn, sink, stream, summary)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match connected {
            Ok((conn, sink, stream, summary)) => {
                backoff = BACKOFF_START;
                w.link.set_conn(Some(conn.clone()));
                w.link.connected.store(true, Ordering::SeqCst);
                let message = if announced == Some(false) {
                    format!("Redis at {target} is back; {summary}")
                } else {
                    format!("sharing rpm/tpm counts, cooldowns and cost through Redis at {target}")
                };
                w.announce(true, message);
                let ended = w.serve(conn, stream, &mut pending).await;
                drop(sink);
                w.link.set_conn(None);
                w.link.connected.store(false, Ordering::SeqCst);
                // From here on the last announcement was "connected"; the next says it is lost.
                match ended {
                    Ended::Closed => return,
                    Ended::Broken(why) => {
                        w.announce(
                            false,
                            format!(
                                "lost Redis at {target} ({why}); going on with this instance's own state until it is back"
                            ),
                        );
                        announced = Some(false);
                    }
                }
            }
            Err(why) => {
                if announced != Some(false) {
                    w.announce(
                        false,
                        format!(
                            "Redis at {target} is unreachable ({why}); going on with this instance's own state until it answers"
                        ),
                    );
                    announced = Some(false);
                }
                if !w.wait(backoff, &mut pending).await {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

impl Worker {
    fn announce(&self, connected: bool, message: String) {
        let message = scrub(&self.secrets, &message);
        *lock(&self.link.announcement) = Some(message.clone());
        self.events
            .announce("", None, RouteEventKind::SharedState { connected, message });
    }

    /// Subscribes to the cooldown channel first, so nothing published during the resync is
    /// missed, then opens the connection for commands.
    async fn connect(
        &self,
    ) -> Result<(MultiplexedConnection, PubSubSink, PubSubStream), LinkError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        let attempt = async {
            let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
            sink.subscribe(COOLDOWN_CHANNEL).await?;
            let conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            Ok::<_, redis::RedisError>((conn, sink, stream))
        };
        bounded(CONNECT_TIMEOUT, attempt).await
    }

    /// Waits `delay` while keeping the jobs that arrive. False when the router is gone.
    async fn wait(&mut self, delay: Duration, pending: &mut Pending) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return true,
                job = self.jobs.recv() => match job {
                    Some(job) => {
                        self.note(&job);
                        pending.keep(job);
                    }
                    None => return false,
                },
            }
        }
    }

    /// Runs jobs and applies published cooldowns until the connection breaks.
    async fn serve(
        &mut self,
        mut conn: MultiplexedConnection,
        mut stream: PubSubStream,
        pending: &mut Pending,
    ) -> Ended {
        let mut keepalive = tokio::time::interval_at(Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            tokio::select! {
                job = self.jobs.recv() => match job {
                    None => return Ended::Closed,
                    Some(job) => {
                        self.note(&job);
                        if let Err(why) = self.execute(&mut conn, job, pending).await {
                            return Ended::Broken(why);
                        }
                    }
                },
                msg = stream.next() => match msg {
                    None => return Ended::Broken(LinkError::Closed),
                    Some(msg) => self.on_message(msg.get_payload_bytes()),
                },
                _ = keepalive.tick() => {
                    if let Err(why) = self.keepalive(&mut conn, pending).await {
                        return Ended::Broken(why);
                    }
                }
            }
        }
    }

    /// Keeps this instance's lifetime cost per deployment, for a ledger that has to be refilled.
    fn note(&mut self, job: &Job) {
        if let Job::Cost { id, cost } = job {
            *self.spent.entry(id.clone()).or_default() += *cost;
        }
    }

    /// The idle link's check: the store still answers and still has its state (else it is
    /// refilled at once, and that is said).
    async fn keepalive(
        &mut self,
        conn: &mut MultiplexedConnection,
        pending: &mut Pending,
    ) -> Result<(), LinkError> {
        let lost = bounded(CALL_TIMEOUT, self.store_lost(conn)).await?;
        if lost {
            let summary = self.restore(conn, pending, true).await?;
            let target = self.link.target.clone();
            self.announce(
                true,
                format!("Redis at {target} lost its state (restarted or flushed); {summary}"),
            );
        }
        Ok(())
    }

    async fn ping(&self, conn: &mut MultiplexedConnection) -> Result<(), LinkError> {
        let cmd = redis::cmd("PING");
        self.call::<String>(conn, &cmd).await.map(|_| ())
    }

    /// One bounded call.
    async fn call<T: redis::FromRedisValue>(
        &self,
        conn: &mut MultiplexedConnection,
        cmd: &redis::Cmd,
    ) -> Result<T, LinkError> {
        bounded(CALL_TIMEOUT, cmd.query_async::<T>(conn)).await
    }

    /// Runs one job; on failure the job is kept in `pending` and the link is reported broken.
    async fn execute(
        &mut self,
        conn: &mut MultiplexedConnection,
        job: Job,
        pending: &mut Pending,
    ) -> Result<(), LinkError> {
        let job = match job {
            Job::ReadCost(reply) => {
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(COST_KEY);
                let ledger = self.call::<HashMap<String, u64>>(conn, &cmd).await;
                let _ = reply.send(ledger.as_ref().ok().map(|ledger| {
                    SharedCost {
                        total: ledger.values().map(|p| Usd::from_pico(*p)).sum(),
                        by_deployment: ledger
                            .iter()
                            .map(|(id, pico)| (id.clone(), Usd::from_pico(*pico)))
                            .collect(),
                    }
                }));
                return ledger.map(|_| ());
            }
            other => other,
        };
        let result = match &job {
            Job::Requests { id, count, at } => {
                let minute = unix_minute();
                let age = SystemTime::now().duration_since(*at).unwrap_or_default();
                let cmd = admit_cmd(id, minute, -1, -1, &self.link.member(), *count, age);
                self.call(conn, &cmd).await.map(|reply| {
                    let answer = AdmitAnswer::from_reply(reply);
                    self.link.saw(id, answer, minute, Instant::now());
                })
            }
            Job::Tokens { id, minute, tokens } => {
                let mut cmd = redis::pipe();
                cmd.cmd("INCRBY")
                    .arg(tpm_key(id, *minute))
                    .arg(*tokens)
                    .cmd("EXPIRE")
                    .arg(tpm_key(id, *minute))
                    .arg(TPM_KEY_TTL_SECS)
                    .ignore();
                bounded(CALL_TIMEOUT, cmd.query_async::<(u64,)>(conn))
                    .await
                    .map(|(total,)| self.link.saw_tokens(id, *minute, total))
            }
            Job::Cooldown { id, left, reason } => {
                let cmd = self.cooldown_cmd(id, *left, reason);
                self.call::<i64>(conn, &cmd).await.map(|_| ())
            }
            Job::Cost { id, cost } => {
                let mut cmd = redis::cmd("HINCRBY");
                cmd.arg(COST_KEY).arg(id).arg(cost.pico());
                self.call::<u64>(conn, &cmd).await.map(|_| ())
            }
            Job::Suspect => self.ping(conn).await.map(|()| {
                // A slow answer, not a dead link: let the hot path use Redis again.
                self.link.set_conn(Some(conn.clone()));
            }),
            Job::ReadCost(_) => Ok(()),
        };
        if result.is_err() {
            pending.keep(job);
        }
        result
    }

    pub(super) fn cooldown_cmd(&self, id: &str, left: Duration, reason: &str) -> redis::Cmd {
        let ms = (left.as_millis() as u64).max(1);
        let message = CooldownMessage {
            from: self.link.instance.clone(),
            deployment: id.to_string(),
            ms,
            reason: reason.to_string(),
        };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(COOLDOWN_SCRIPT)
            .arg(1)
            .arg(cooldown_key(id))
            .arg(reason)
            .arg(ms)
            .arg(COOLDOWN_CHANNEL)
            .arg(serde_json::to_string(&message).unwrap_or_default());
        cmd
    }

    /// A cooldown another instance published.
    fn on_message(&self, payload: &[u8]) {
        let Ok(m) = serde_json::from_slice::<CooldownMessage>(payload) else {
            return;
        };
        if m.from == self.link.instance {
            return;
        }
        self.apply_cooldown(&m.deployment, Duration::from_millis(m.ms), &m.reason);
    }

    /// Extends a local cooldown from the fleet, and says so when it changed anything.
    pub(super) fn apply_cooldown(&self, id: &str, left: Duration, reason: &str) -> bool {
        let Some(group) = self.groups.get(id) else {
            return false;
        };
        let Some(left) = self.local.extend_cooldown(id, left, reason, Instant::now()) else {
            return false;
        };
        self.events.announce(
            group,
            Some(id),
            RouteEventKind::Cooldown {
                secs: left.as_secs_f64(),
                reason: format!("{reason}; reported by another instance"),
            },
        );
        true
    }
}
