//! The paid answers of the request log's last period, for the budgets to replay at start
//! (`router::EventLog::spend_since`).
//!
//! The log is read backwards in chunks from its end and reading stops at the first chunk that
//! holds only answers older than that, so a months-long log costs no more than its last
//! period. A line that does not parse (a torn write) is skipped. Cached answers cost nothing
//! and are skipped, and so is an answer with an unknown price.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::metrics::Usd;
use crate::router::PastSpend;

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
struct Answer {
    event: String,
    #[serde(default)]
    deployment: Option<String>,
    at_unix_ms: u64,
    #[serde(default)]
    cost_usd: Option<Usd>,
    #[serde(default)]
    cached: bool,
}

/// The paid answers at or after `since` (Unix ms) in the log at `path`, oldest first.
pub(crate) fn paid_since(path: &Path, since: u64) -> std::io::Result<Vec<PastSpend>> {
    Ok(recent_answers(path, since)?
        .into_iter()
        .filter_map(|a| match (a.deployment, a.cost_usd, a.cached) {
            (Some(deployment), Some(cost), false) => Some(PastSpend {
                deployment,
                at_unix_ms: a.at_unix_ms,
                cost,
            }),
            _ => None,
        })
        .collect())
}

/// The `done` events at or after `since` (Unix ms), oldest first.
fn recent_answers(path: &Path, since: u64) -> std::io::Result<Vec<Answer>> {
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
