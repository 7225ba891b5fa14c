//! Budget spend shared through Redis (`router_settings.redis_*`), so a fleet of instances
//! keeps one budget, as LiteLLM's budget limiter does with its Redis cache.
//!
//! Each budget has one hash, `llmux:budget:{<scope>:<period>}` (`start`: the window's start in
//! Unix ms, `spend`: picodollars), expiring when the window ends. Every second (and on
//! [`sync_now`]) a background task adds what this instance spent since the last sync to it and
//! reads the fleet's window back, in one pipelined round trip over the shared state's
//! connection. Requests never wait on Redis: they check the local window, which is the fleet's
//! as last read plus this instance's own spend since. The first sync of a budget offers the
//! window seeded from this instance's request log, used only when the fleet has none. While
//! Redis is away, spend stays pending locally and is added when it is back.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::metrics::Usd;
use crate::router::Inner;

/// How often the fleet's spend is read and this instance's added.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// The longest one sync may take before it is given up (the spend stays pending).
const SYNC_TIMEOUT: Duration = Duration::from_millis(500);

/// Adds `ARGV[3]` picodollars to a budget's window, starting one when none runs (from the
/// offered seed `ARGV[4]`/`ARGV[5]` when it is still current, else at `ARGV[1]`).
/// KEYS: the hash. ARGV: now ms, period ms, add, seed start (-1: none), seed spend.
/// Returns {start ms or -1 when no window runs, spend as a string (exact beyond 2^53)}.
const SPEND_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local add = tonumber(ARGV[3])
local start = tonumber(redis.call('HGET', KEYS[1], 'start') or '')
if start and now >= start + period then
  redis.call('DEL', KEYS[1])
  start = nil
end
if not start then
  local seed = tonumber(ARGV[4])
  if seed >= 0 and now < seed + period then
    start = seed
    redis.call('HSET', KEYS[1], 'start', ARGV[4], 'spend', ARGV[5])
  elseif add > 0 then
    start = now
    redis.call('HSET', KEYS[1], 'start', ARGV[1], 'spend', '0')
  else
    return {-1, '0'}
  end
  redis.call('PEXPIREAT', KEYS[1], start + period)
end
redis.call('HINCRBY', KEYS[1], 'spend', ARGV[3])
return {start, redis.call('HGET', KEYS[1], 'spend')}
";

fn key(scope_key: &str) -> String {
    format!("llmux:budget:{{{scope_key}}}")
}

/// Starts the once-a-second sync when there are budgets and Redis; it ends with the router.
pub(crate) fn spawn_sync(inner: &Arc<Inner>) {
    if inner.budgets.is_empty() || inner.health.shared().is_none() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<Inner> = Arc::downgrade(inner);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(SYNC_INTERVAL);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            sync_now(&inner).await;
        }
    });
}

/// One sync; false without Redis, while it is away, or when the round trip failed.
pub(crate) async fn sync_now(inner: &Inner) -> bool {
    let Some(mut conn) = inner.health.shared().and_then(|s| s.connection()) else {
        return false;
    };
    let budgets = &inner.budgets;
    // Before the replay is over the local windows are not the whole truth: offering them as
    // the fleet's seed would lose what the log holds.
    if !budgets.seeded.is_done() {
        return false;
    }
    let now = budgets.clock.now_ms();
    // What each budget adds, and the seed it offers, taken out under the lock.
    let jobs: Vec<(u64, i64, u64)> = {
        let mut windows = budgets.windows();
        budgets
            .scopes
            .iter()
            .zip(windows.iter_mut())
            .map(|(scope, w)| {
                w.roll(scope.period_ms(), now);
                let add = std::mem::take(&mut w.pending).pico();
                let (seed_start, seed_spend) = match (w.synced, w.start_ms) {
                    (false, Some(s)) => (
                        i64::try_from(s).unwrap_or(-1),
                        w.spent.pico().saturating_sub(add),
                    ),
                    _ => (-1, 0),
                };
                (add, seed_start, seed_spend)
            })
            .collect()
    };
    let mut pipe = redis::pipe();
    for (scope, (add, seed_start, seed_spend)) in budgets.scopes.iter().zip(&jobs) {
        pipe.cmd("EVAL")
            .arg(SPEND_SCRIPT)
            .arg(1)
            .arg(key(&scope.key()))
            .arg(now)
            .arg(scope.period_ms())
            .arg(*add)
            .arg(*seed_start)
            .arg(*seed_spend);
    }
    let reply: Option<Vec<(i64, String)>> =
        match tokio::time::timeout(SYNC_TIMEOUT, pipe.query_async(&mut conn)).await {
            Ok(Ok(r)) => Some(r),
            _ => None,
        };
    let mut windows = budgets.windows();
    let Some(reply) = reply.filter(|r| r.len() == jobs.len()) else {
        // Not added: keep it for the next sync.
        for (w, (add, _, _)) in windows.iter_mut().zip(&jobs) {
            w.pending += Usd::from_pico(*add);
        }
        return false;
    };
    for ((w, scope), (start, spend)) in windows.iter_mut().zip(&budgets.scopes).zip(reply) {
        w.synced = true;
        let Ok(start) = u64::try_from(start) else {
            continue;
        };
        let fleet = Usd::from_pico(spend.parse().unwrap_or(0));
        w.start_ms = Some(start);
        w.spent = fleet + w.pending;
        w.roll(scope.period_ms(), budgets.clock.now_ms());
    }
    true
}
