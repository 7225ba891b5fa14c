//! Spend survives restarts: at start the budgets are replayed from the paid answers the request
//! log recorded in the last period (the longest of any budget), read through [`EventLog`].
//!
//! The replay runs on a blocking thread after the router is built, so a long log never delays
//! the TUI's first frame or `serve`'s start; a request waits for it ([`Seeded::wait`]) before
//! it checks a budget, and so does the Redis sync, so nothing is decided on a spend of zero
//! that is only not read yet. Without budgets or a request log there is nothing to wait for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use super::Budgets;
use crate::router::{EventLog, Inner};

/// Whether the replay is over; requests and the Redis sync wait for it.
#[derive(Debug, Default)]
pub(crate) struct Seeded {
    done: AtomicBool,
    notify: Notify,
}

impl Seeded {
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Returns once the replay is over (at once after that: one atomic load).
    pub(crate) async fn wait(&self) {
        loop {
            // Registered before the check, so a `finish` in between is not missed.
            let notified = self.notify.notified();
            if self.is_done() {
                return;
            }
            notified.await;
        }
    }
}

/// Starts the replay on a blocking thread (inline outside a tokio runtime); `Seeded` says when
/// it is over.
pub(crate) fn start(inner: &Arc<Inner>) {
    let budgets = &inner.budgets;
    if budgets.is_empty() || inner.sink.log().is_none() {
        budgets.seeded.finish();
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        seed(budgets, inner.sink.log());
        budgets.seeded.finish();
        return;
    };
    let inner = inner.clone();
    runtime.spawn_blocking(move || {
        seed(&inner.budgets, inner.sink.log());
        inner.budgets.seeded.finish();
    });
}

/// Replays the spend of the last period from `log` into `budgets`.
fn seed(budgets: &Budgets, log: Option<&Arc<dyn EventLog>>) {
    let (Some(log), Some(longest)) = (log, budgets.longest_period()) else {
        return;
    };
    let now = budgets.clock.now_ms();
    let since = now.saturating_sub(longest.as_millis() as u64);
    // A log that cannot be read costs the seed, never the start.
    let Ok(spends) = log.spend_since(since) else {
        return;
    };
    for s in spends {
        budgets.replay(&s.deployment, s.cost, s.at_unix_ms);
    }
    // Thresholds already crossed are said again by the first spend of this run.
    for w in budgets.windows().iter_mut() {
        w.warned = 0;
    }
}
