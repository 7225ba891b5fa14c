//! What the request log's last period paid for, for the budgets to replay at start
//! (`router::EventLog::spend_since`): every `Spent` (an attempt that streamed tokens and then
//! failed or was cancelled: billed to its deployment, whether or not its request went on to
//! answer) and every `Done`, less what its request's `Spent`s already counted (a `Done`
//! carries its whole request's cost; the answering deployment paid only its own part), as the
//! router charged them live and as `llmux stats` counts them.
//!
//! The log is read backwards in chunks from its end and reading stops at the first chunk that
//! holds only answers older than that, so a months-long log costs no more than its last
//! period. A line that does not parse (a torn write) is skipped. Cached answers cost nothing
//! and are skipped, and so is an answer with an unknown price.

use std::collections::HashMap;
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
/// How the tags of the lines the replay reads look in the log, to skip other lines without
/// parsing them.
const TAGS: [&[u8]; 2] = [br#""event":"done""#, br#""event":"spent""#];
/// The `event` of a `Done` line.
const DONE_EVENT: &str = "done";
/// The `event` of a `Spent` line.
const SPENT_EVENT: &str = "spent";

/// What the replay needs of a `done` or `spent` line; every other field is skipped unparsed
/// (reading the whole `RouteEvent`, with its flattened kind, was most of the seed's time).
#[derive(Debug, Deserialize)]
struct Answer {
    event: String,
    request_id: u64,
    #[serde(default)]
    deployment: Option<String>,
    at_unix_ms: u64,
    #[serde(default)]
    cost_usd: Option<Usd>,
    #[serde(default)]
    cached: bool,
}

/// What was paid at or after `since` (Unix ms) in the log at `path`, by deployment, oldest
/// first.
pub(crate) fn paid_since(path: &Path, since: u64) -> std::io::Result<Vec<PastSpend>> {
    // What each request's cut attempts were billed, to take off its `Done`. Request ids go on
    // from the log's last one at each start, so they name one request in the log.
    let mut spent_before: HashMap<u64, Usd> = HashMap::new();
    let mut out = Vec::new();
    for a in recent_answers(path, since)? {
        let (Some(deployment), Some(cost), false) = (a.deployment, a.cost_usd, a.cached) else {
            continue;
        };
        let cost = if a.event == SPENT_EVENT {
            *spent_before.entry(a.request_id).or_default() += cost;
            cost
        } else {
            cost.saturating_sub(spent_before.remove(&a.request_id).unwrap_or_default())
        };
        // Read from a little before the period, for the `Spent`s of its first `Done`s.
        if a.at_unix_ms >= since {
            out.push(PastSpend {
                deployment,
                at_unix_ms: a.at_unix_ms,
                cost,
            });
        }
    }
    out.sort_by_key(|p| p.at_unix_ms);
    Ok(out)
}

/// The `done` and `spent` events from a little before `since` (Unix ms) on, in the order
/// they were written (a request's `Spent`s before its `Done`).
fn recent_answers(path: &Path, since: u64) -> std::io::Result<Vec<Answer>> {
    let mut file = File::open(path)?;
    let mut pos = file.metadata()?.len();
    let stop_before = since.saturating_sub(ORDER_SLACK.as_millis() as u64);
    let mut carry: Vec<u8> = Vec::new();
    // The chunks' events, last chunk first.
    let mut chunks: Vec<Vec<Answer>> = Vec::new();
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
        let mut chunk = Vec::new();
        for line in lines {
            let Some(ev) = parse_paid(line) else { continue };
            if ev.at_unix_ms < stop_before {
                older = true;
            } else {
                chunk.push(ev);
            }
        }
        chunks.push(chunk);
        if older {
            break;
        }
    }
    Ok(chunks.into_iter().rev().flatten().collect())
}

fn parse_paid(line: &[u8]) -> Option<Answer> {
    if !TAGS
        .iter()
        .any(|tag| line.windows(tag.len()).any(|w| w == *tag))
    {
        return None;
    }
    serde_json::from_slice::<Answer>(line)
        .ok()
        .filter(|a| a.event == DONE_EVENT || a.event == SPENT_EVENT)
}
