//! Spend survives restarts: at start the budgets are replayed from the request log's `Done`
//! events of the last period (the longest of any budget), newest part of the file only.
//!
//! The replay runs on a blocking thread after the router is built, so a long log never delays
//! the TUI's first frame or `serve`'s start; a request waits for it ([`Seeded::wait`]) before
//! it checks a budget, and so does the Redis sync, so nothing is decided on a spend of zero
//! that is only not read yet. Without budgets or a request log there is nothing to wait for.
//!
//! The log is read backwards in chunks from its end and reading stops at the first chunk that
//! holds only answers older than that, so a months-long log costs no more than its last
//! period. A line that does not parse (a torn write) is skipped. Cached answers cost nothing
//! and are skipped; an answer with an unknown price adds nothing.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;

use super::Budgets;
use crate::metrics::Usd;
use crate::router::Inner;
use crate::store::RequestLog;

/// Bytes read from the end of the log at a time.
const CHUNK: u64 = 64 * 1024;
/// Events are written in batches, so slightly out of order: read this much further back.
const ORDER_SLACK: Duration = Duration::from_secs(60);
/// How a `Done` event's tag looks in the log, to skip other lines without parsing them.
const DONE_TAG: &[u8] = br#""event":"done""#;
/// The `event` of a `Done` line.
const DONE_EVENT: &str = "done";

/// What the replay needs of a `done` line; every other field is skipped unparsed (reading
/// the whole `RouteEvent`, with its flattened kind, was most of the seed's time).
#[derive(Debug, Deserialize)]
pub(crate) struct Answer {
    event: String,
    #[serde(default)]
    pub(crate) deployment: Option<String>,
    pub(crate) at_unix_ms: u64,
    #[serde(default)]
    pub(crate) cost_usd: Option<Usd>,
    #[serde(default)]
    pub(crate) cached: bool,
}

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
fn seed(budgets: &Budgets, log: Option<&RequestLog>) {
    let (Some(log), Some(longest)) = (log, budgets.longest_period()) else {
        return;
    };
    log.sync();
    let now = budgets.clock.now_ms();
    let since = now.saturating_sub(longest.as_millis() as u64);
    // A log that cannot be read costs the seed, never the start.
    let Ok(answers) = recent_answers(log.path(), since) else {
        return;
    };
    for a in answers {
        // Cached answers cost nothing; an unknown price adds nothing.
        if let (Some(id), Some(cost), false) = (&a.deployment, a.cost_usd, a.cached) {
            budgets.replay(id, cost, a.at_unix_ms);
        }
    }
    // Thresholds already crossed are said again by the first spend of this run.
    for w in budgets.windows().iter_mut() {
        w.warned = 0;
    }
}

/// The `done` events at or after `since` (Unix ms), oldest first.
pub(crate) fn recent_answers(path: &Path, since: u64) -> std::io::Result<Vec<Answer>> {
    let mut file = File::open(path)?;
    let mut pos = file.metadata()?.len();
    let stop_before = since.saturating_sub(ORDER_SLACK.as_millis() as u64);
    let mut carry: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    while pos > 0 {
        let n = CHUNK.min(pos);
        pos -= n;
        let mut buf = vec![0u8; n as usize];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut buf)?;
        buf.extend_from_slice(&carry);
        let mut lines: Vec<&[u8]> = buf.split(|b| *b == b'\n').collect();
        // Unless this is the file's start, the first piece may be the end of a longer line.
        carry = if pos > 0 && !lines.is_empty() {
            lines.remove(0).to_vec()
        } else {
            Vec::new()
        };
        let mut older = false;
        for line in lines {
            let Some(ev) = parse_done(line) else { continue };
            if ev.at_unix_ms < stop_before {
                older = true;
            } else if ev.at_unix_ms >= since {
                out.push(ev);
            }
        }
        if older {
            break;
        }
    }
    out.sort_by_key(|e| e.at_unix_ms);
    Ok(out)
}

fn parse_done(line: &[u8]) -> Option<Answer> {
    if !line.windows(DONE_TAG.len()).any(|w| w == DONE_TAG) {
        return None;
    }
    serde_json::from_slice::<Answer>(line)
        .ok()
        .filter(|a| a.event == DONE_EVENT)
}
