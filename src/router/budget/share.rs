//! Budget spend shared through Redis (`router_settings.redis_*`), so a fleet of instances
//! keeps one budget, as LiteLLM's budget limiter does with its Redis cache.
//!
//! Each budget has one hash, `llmux:budget:{<scope>:<period>}` (`start`: the window's start in
//! Unix ms, `spend`: picodollars, `base`: the largest view written back into it), expiring when
//! the window ends. Every second (and on [`sync_now`]) a background task adds what this
//! instance spent since the last sync to it and reads the fleet's window back, in one
//! pipelined round trip over the shared state's connection. Requests never wait on Redis: they
//! check the local window, which is the fleet's as last read plus this instance's own spend
//! since. The first sync of a budget offers the window seeded from this instance's request
//! log, used only when the fleet has none. While Redis is away, spend stays pending locally and
//! is added when it is back.
//!
//! A Redis that comes back empty (no persistence, a failover) must not hand out the budget
//! again, so every later sync also offers this instance's view of the fleet's window (as last
//! read, without its own pending spend). A missing window is started again from that view; a
//! window someone else started after the loss (a different start) gets the view merged in:
//! the amount by which it exceeds the largest view merged so far is added. Views of the same
//! window differ only by what was spent between two reads, so the fleet's spend is kept within
//! a second of spending.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::metrics::Usd;
use crate::router::Inner;

/// How often the fleet's spend is read and this instance's added.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// The longest one sync may take before it is given up (the spend stays pending).
const SYNC_TIMEOUT: Duration = Duration::from_millis(500);

/// What a sync offers besides its spend ([`SPEND_SCRIPT`]'s `ARGV[4]`).
const OFFER_NONE: i64 = 0;
/// The window read back from this instance's request log: used only when none runs.
const OFFER_SEED: i64 = 1;
/// This instance's view of the fleet's window: restarts a window the store lost, and is merged
/// into one started again after the loss.
const OFFER_VIEW: i64 = 2;

/// Adds `ARGV[3]` picodollars to a budget's window, starting one when none runs (from the
/// offered window when it is still current, else at `ARGV[1]`), and merges an offered view into
/// a window that overlaps it but began at another time (started again after the store lost
/// the one viewed). Spend stays in Redis's exact integers: the merge adds the view, then
/// subtracts the base, never computing with Lua's doubles.
/// KEYS: the hash. ARGV: now ms, period ms, add, offer kind, offered start, offered spend.
/// Returns {start ms or -1 when no window runs, spend as a string (exact beyond 2^53)}.
const SPEND_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local add = tonumber(ARGV[3])
local offer = tonumber(ARGV[4])
local offered = tonumber(ARGV[5])
local start = tonumber(redis.call('HGET', KEYS[1], 'start') or '')
if start and now >= start + period then
  redis.call('DEL', KEYS[1])
  start = nil
end
if offer > 0 and now >= offered + period then
  offer = 0
end
if not start then
  if offer > 0 then
    start = offered
    redis.call('HSET', KEYS[1], 'start', ARGV[5], 'spend', ARGV[6], 'base', ARGV[6])
  elseif add > 0 then
    start = now
    redis.call('HSET', KEYS[1], 'start', ARGV[1], 'spend', '0', 'base', '0')
  else
    return {-1, '0'}
  end
  redis.call('PEXPIREAT', KEYS[1], start + period)
elseif offer == 2 and offered ~= start and start < offered + period then
  local base = redis.call('HGET', KEYS[1], 'base') or '0'
  local view = ARGV[6]
  if #view > #base or (#view == #base and view > base) then
    redis.call('HINCRBY', KEYS[1], 'spend', view)
    if base ~= '0' then
      redis.call('HINCRBY', KEYS[1], 'spend', '-' .. base)
    end
    redis.call('HSET', KEYS[1], 'base', view)
  end
  if offered < start then
    start = offered
    redis.call('HSET', KEYS[1], 'start', ARGV[5])
    redis.call('PEXPIREAT', KEYS[1], start + period)
  end
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
    // What each budget adds, and the window it offers, taken out under the lock.
    let jobs: Vec<(Usd, Offer)> = {
        let mut windows = budgets.windows();
        budgets
            .scopes
            .iter()
            .zip(windows.iter_mut())
            .map(|(scope, w)| {
                w.roll(scope.period_ms(), now);
                let add = std::mem::take(&mut w.pending);
                (add, Offer::of(w, add))
            })
            .collect()
    };
    let mut pipe = redis::pipe();
    for (scope, (add, offer)) in budgets.scopes.iter().zip(&jobs) {
        pipe.cmd("EVAL")
            .arg(SPEND_SCRIPT)
            .arg(1)
            .arg(key(&scope.key()))
            .arg(now)
            .arg(scope.period_ms())
            .arg(add.pico())
            .arg(offer.kind)
            .arg(offer.start)
            .arg(offer.spend.pico());
    }
    let reply: Option<Vec<(i64, String)>> =
        match tokio::time::timeout(SYNC_TIMEOUT, pipe.query_async(&mut conn)).await {
            Ok(Ok(r)) => Some(r),
            _ => None,
        };
    let mut windows = budgets.windows();
    let Some(reply) = reply.filter(|r| r.len() == jobs.len()) else {
        // Not added: keep it for the next sync.
        for (w, (add, _)) in windows.iter_mut().zip(&jobs) {
            w.pending += *add;
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

/// The window a sync offers with its spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offer {
    kind: i64,
    start: u64,
    spend: Usd,
}

impl Offer {
    /// Before the first sync, the window seeded from the log; after it, the fleet's window as
    /// last read (once it holds any spend: an empty view has nothing to give back).
    fn of(w: &super::Window, add: Usd) -> Offer {
        let none = Offer {
            kind: OFFER_NONE,
            start: 0,
            spend: Usd::ZERO,
        };
        let Some(start) = w.start_ms else {
            return none;
        };
        let spend = w.spent.saturating_sub(add);
        match w.synced {
            false => Offer {
                kind: OFFER_SEED,
                start,
                spend,
            },
            true if !spend.is_zero() => Offer {
                kind: OFFER_VIEW,
                start,
                spend,
            },
            true => none,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_offered_as_a_seed_before_the_first_sync_and_as_a_view_after() {
        let mut w = super::super::Window {
            start_ms: Some(7),
            spent: Usd::from_pico(30),
            ..Default::default()
        };
        let pico = Usd::from_pico;
        assert_eq!(Offer::of(&w, pico(10)).kind, OFFER_SEED);
        assert_eq!(Offer::of(&w, pico(10)).spend, pico(20));
        w.synced = true;
        let view = Offer::of(&w, pico(10));
        assert_eq!(
            (view.kind, view.start, view.spend),
            (OFFER_VIEW, 7, pico(20))
        );
        assert_eq!(
            Offer::of(&w, pico(30)).kind,
            OFFER_NONE,
            "nothing read from the fleet yet"
        );
        w.start_ms = None;
        assert_eq!(Offer::of(&w, Usd::ZERO).kind, OFFER_NONE);
    }
}
