//! Spend survives restarts: at start the budgets are replayed from the request log's `Done`
//! events of the last period (the longest of any budget), newest part of the file only.
//!
//! The log is read backwards in chunks from its end and reading stops at the first chunk that
//! holds only answers older than that, so a months-long log costs no more than its last
//! period. A line that does not parse (a torn write) is skipped. Cached answers cost nothing
//! and are skipped; an answer with an unknown price adds nothing.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use super::Budgets;
use crate::router::{RouteEvent, RouteEventKind};
use crate::store::RequestLog;

/// Bytes read from the end of the log at a time.
const CHUNK: u64 = 64 * 1024;
/// Events are written in batches, so slightly out of order: read this much further back.
const ORDER_SLACK: Duration = Duration::from_secs(60);
/// How a `Done` event's tag looks in the log, to skip other lines without parsing them.
const DONE_TAG: &[u8] = br#""event":"done""#;

/// Replays the spend of the last period from `log` into `budgets`.
pub(crate) fn seed(budgets: &Budgets, log: Option<&RequestLog>) {
    let (Some(log), Some(longest)) = (log, budgets.longest_period()) else {
        return;
    };
    log.sync();
    let now = budgets.clock.now_ms();
    let since = now.saturating_sub(longest.as_millis() as u64);
    // A log that cannot be read costs the seed, never the start.
    let Ok(events) = recent_answers(log.path(), since) else {
        return;
    };
    for ev in events {
        if let (
            Some(id),
            RouteEventKind::Done {
                cost_usd: Some(cost),
                cached: false,
                ..
            },
        ) = (&ev.deployment, &ev.kind)
        {
            budgets.replay(id, *cost, ev.at_unix_ms);
        }
    }
    // Thresholds already crossed are said again by the first spend of this run.
    for w in budgets.windows().iter_mut() {
        w.warned = 0;
    }
}

/// The `Done` events at or after `since` (Unix ms), oldest first.
pub(crate) fn recent_answers(path: &Path, since: u64) -> std::io::Result<Vec<RouteEvent>> {
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

fn parse_done(line: &[u8]) -> Option<RouteEvent> {
    if !line.windows(DONE_TAG.len()).any(|w| w == DONE_TAG) {
        return None;
    }
    serde_json::from_slice(line).ok()
}
