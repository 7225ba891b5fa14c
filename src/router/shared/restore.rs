//! Bringing Redis up to date after the worker (re)connects, or finds at its keepalive that the
//! store lost its state: what happened while Redis was away is kept in [`Pending`] and pushed;
//! a store that lost its state (its generation tag changed: restarted empty, an empty replica,
//! a flush) is refilled with everything this instance holds for the current windows instead.
//! Then the fleet's running cooldowns are pulled into the local book and this instance's
//! pushed.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::time::Instant;

use super::Job;
use super::keys::{
    COST_KEY, GENERATION_KEY, SECS_PER_MINUTE, TPM_KEY_TTL_SECS, admit_cmd, cooldown_key, tpm_key,
    unix_minute, unix_ms, unix_secs,
};
use super::worker::{CONNECT_TIMEOUT, Worker};
use crate::cache::{LinkError, bounded};
use crate::money::Usd;
use crate::router::health::MINUTE;

/// What happened while Redis was away, to push when it is back.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// (deployment, unix second) → requests.
    requests: HashMap<(String, u64), u32>,
    /// (deployment, unix minute) → tokens.
    tokens: HashMap<(String, u64), u64>,
    /// deployment → spent.
    cost: HashMap<String, Usd>,
}

impl Pending {
    /// Keeps a job that could not run. Reads are answered "unknown"; cooldowns need nothing
    /// (the local book has them and they are pushed on resync).
    pub(super) fn keep(&mut self, job: Job) {
        match job {
            Job::Requests { id, count, at } => {
                *self.requests.entry((id, unix_secs(at))).or_default() += count;
            }
            Job::Tokens { id, minute, tokens } => {
                let n = self.tokens.entry((id, minute)).or_default();
                *n = n.saturating_add(tokens);
            }
            Job::Cost { id, cost } => *self.cost.entry(id).or_default() += cost,
            Job::ReadCost(reply) => {
                let _ = reply.send(None);
            }
            Job::Cooldown { .. } | Job::Suspect => {}
        }
    }

    fn len(&self) -> usize {
        self.requests.len() + self.tokens.len() + self.cost.len()
    }
}

impl Worker {
    /// After (re)connecting: learns whether the store lost its state, then [`Self::restore`]s.
    /// Returns a summary for the event.
    pub(super) async fn resync(
        &mut self,
        conn: &mut MultiplexedConnection,
        pending: &mut Pending,
    ) -> Result<String, LinkError> {
        let lost = bounded(CONNECT_TIMEOUT, self.store_lost(conn)).await?;
        self.restore(conn, pending, lost).await
    }

    /// Whether the store lost its state since this worker last looked (see [`GENERATION_KEY`]);
    /// the first look only learns the tag.
    pub(super) async fn store_lost(
        &mut self,
        conn: &mut MultiplexedConnection,
    ) -> Result<bool, redis::RedisError> {
        let candidate = format!("{:016x}", rand::random::<u64>());
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(GENERATION_KEY)
            .arg(&candidate)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(GENERATION_KEY);
        let (tag,): (Option<String>,) = pipe.query_async(conn).await?;
        let tag = tag.unwrap_or(candidate);
        let lost = self.generation.as_ref().is_some_and(|known| *known != tag);
        self.generation = Some(tag);
        Ok(lost)
    }

    /// Brings the store up to date: pushes what happened while Redis was away (or, when it
    /// `lost` its state, all this instance holds: [`Self::refill`]), pulls the fleet's running
    /// cooldowns, pushes this instance's. Returns a summary for the event.
    pub(super) async fn restore(
        &self,
        conn: &mut MultiplexedConnection,
        pending: &mut Pending,
        lost: bool,
    ) -> Result<String, LinkError> {
        let work = async {
            let pushed = if lost {
                self.refill(conn, pending).await?
            } else {
                let n = pending.len();
                if n > 0 {
                    self.flush(conn, pending).await?;
                }
                n
            };
            let ids: Vec<&String> = self.groups.keys().collect();
            let mut pulled = 0usize;
            if !ids.is_empty() {
                let keys: Vec<String> = ids.iter().map(|id| cooldown_key(id)).collect();
                let mut mget = redis::cmd("MGET");
                mget.arg(&keys);
                let reasons: Vec<Option<String>> = mget.query_async(conn).await?;
                let mut pttl = redis::pipe();
                for k in &keys {
                    pttl.cmd("PTTL").arg(k);
                }
                let left: Vec<i64> = pttl.query_async(conn).await?;
                for ((id, reason), ms) in ids.iter().zip(reasons).zip(left) {
                    if let (Some(reason), Ok(ms @ 1..)) = (reason, u64::try_from(ms))
                        && self.apply_cooldown(id, Duration::from_millis(ms), &reason)
                    {
                        pulled += 1;
                    }
                }
            }
            let mine = self.local.running_cooldowns(Instant::now());
            for (id, left, reason) in &mine {
                let _: i64 = self
                    .cooldown_cmd(id, *left, reason)
                    .query_async(conn)
                    .await?;
            }
            let what = if lost {
                "it had lost its state: wrote back this instance's counts and cost"
            } else {
                "resynced"
            };
            Ok::<_, redis::RedisError>(format!(
                "{what}: {pushed} counts pushed, {pulled} cooldowns pulled, {} pushed",
                mine.len()
            ))
        };
        match bounded(CONNECT_TIMEOUT, work).await {
            Err(LinkError::NoAnswer(limit)) => Err(LinkError::SlowResync(limit)),
            done => done,
        }
    }

    /// Writes back into a store that lost its state all this instance holds for the current
    /// windows, in one pipeline: its requests of the last minute (one entry per second of them,
    /// dated by the newest, so none leaves the fleet's window before it leaves this one's), its
    /// tokens of this minute and its lifetime cost per deployment. What was pending is part of
    /// that, so `pending` is cleared once it went through. Returns the counts pushed.
    async fn refill(
        &self,
        conn: &mut MultiplexedConnection,
        pending: &mut Pending,
    ) -> Result<usize, redis::RedisError> {
        let now = Instant::now();
        let minute = unix_minute();
        let into_minute = Duration::from_millis(unix_ms() % (SECS_PER_MINUTE * 1000));
        let mut pipe = redis::pipe();
        let mut pushed = 0;
        for usage in self.local.recent_usage(now) {
            let mut by_second: HashMap<u64, u64> = HashMap::new();
            for (age, n) in &usage.requests {
                *by_second.entry(age.as_secs()).or_default() += n;
            }
            for (secs, n) in by_second {
                let count = u32::try_from(n).unwrap_or(u32::MAX);
                let age = Duration::from_secs(secs);
                let member = self.link.member();
                pipe.add_command(admit_cmd(&usage.id, minute, -1, -1, &member, count, age))
                    .ignore();
                pushed += 1;
            }
            let tokens: u64 = usage
                .tokens
                .iter()
                .filter(|(age, _)| *age < into_minute)
                .map(|(_, n)| n)
                .sum();
            if tokens > 0 {
                pipe.cmd("INCRBY")
                    .arg(tpm_key(&usage.id, minute))
                    .arg(tokens)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(tpm_key(&usage.id, minute))
                    .arg(TPM_KEY_TTL_SECS)
                    .ignore();
                pushed += 1;
            }
        }
        for (id, cost) in &self.spent {
            pipe.cmd("HINCRBY")
                .arg(COST_KEY)
                .arg(id)
                .arg(cost.pico())
                .ignore();
            pushed += 1;
        }
        pipe.query_async::<()>(conn).await?;
        *pending = Pending::default();
        Ok(pushed)
    }

    /// Pushes the kept counts (requests still inside the window, tokens of this minute) and
    /// costs in one pipeline; `pending` is cleared only when it went through.
    async fn flush(
        &self,
        conn: &mut MultiplexedConnection,
        pending: &mut Pending,
    ) -> Result<(), redis::RedisError> {
        let now_ms = unix_ms();
        let minute = unix_minute();
        let window_secs = MINUTE.as_secs();
        let mut pipe = redis::pipe();
        for ((id, sec), count) in &pending.requests {
            if sec + window_secs <= now_ms / 1000 {
                continue;
            }
            let age = Duration::from_millis(now_ms.saturating_sub(sec * 1000));
            pipe.add_command(admit_cmd(
                id,
                minute,
                -1,
                -1,
                &self.link.member(),
                *count,
                age,
            ))
            .ignore();
        }
        for ((id, m), tokens) in &pending.tokens {
            if *m != minute {
                continue;
            }
            pipe.cmd("INCRBY")
                .arg(tpm_key(id, *m))
                .arg(*tokens)
                .ignore()
                .cmd("EXPIRE")
                .arg(tpm_key(id, *m))
                .arg(TPM_KEY_TTL_SECS)
                .ignore();
        }
        for (id, cost) in &pending.cost {
            pipe.cmd("HINCRBY")
                .arg(COST_KEY)
                .arg(id)
                .arg(cost.pico())
                .ignore();
        }
        pipe.query_async::<()>(conn).await?;
        *pending = Pending::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn pending_adds_up_what_could_not_be_sent() {
        let mut p = Pending::default();
        let at = SystemTime::now();
        for _ in 0..3 {
            p.keep(Job::Requests {
                id: "a".into(),
                count: 1,
                at,
            });
        }
        p.keep(Job::Cost {
            id: "a".into(),
            cost: Usd::from_pico(5),
        });
        p.keep(Job::Cost {
            id: "a".into(),
            cost: Usd::from_pico(7),
        });
        p.keep(Job::Tokens {
            id: "a".into(),
            minute: 1,
            tokens: 10,
        });
        p.keep(Job::Suspect);
        assert_eq!(p.requests.get(&("a".to_string(), unix_secs(at))), Some(&3));
        assert_eq!(p.cost.get("a"), Some(&Usd::from_pico(12)));
        assert_eq!(p.len(), 3);
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        p.keep(Job::ReadCost(tx));
        assert_eq!(rx.try_recv().ok(), Some(None), "reads are answered unknown");
    }
}
