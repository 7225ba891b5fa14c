//! The conversation's wire records on disk: for each answer, what its request's attempts sent
//! and received ([`AttemptWire`]) and its routing events, one JSON line per answer in
//! `<session>.wire` next to the session's `<session>.jsonl`, private (0600) like it.
//!
//! Bounded: a record over [`MAX_PER_ANSWER`] bytes keeps fewer events and shorter bodies,
//! and a file that would grow past [`MAX_FILE`] is rewritten with its newest records only
//! (half the cap), so a long conversation costs a few megabytes at most. Read back by answer
//! id when the inspector opens; a torn or foreign line is skipped.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::router::capture::{AttemptWire, Capture};
use crate::store::file;

/// Most bytes one answer's record takes.
pub const MAX_PER_ANSWER: usize = 256 * 1024;
/// Most bytes a session's wire file takes.
pub const MAX_FILE: u64 = 8 * 1024 * 1024;
/// The extension of a session's wire file.
pub const WIRE_EXT: &str = "wire";
/// Events kept per attempt when a record is too big.
const SHRUNK_EVENTS: usize = 200;

/// One answer's wire record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireRecord {
    pub answer_id: u64,
    pub request_id: u64,
    /// The request's routing events, as the routing log shows them (with their UTC time).
    pub route: Vec<String>,
    pub attempts: Vec<AttemptWire>,
    /// Some of it was cut to fit the bounds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shrunk: bool,
}

/// The wire file of the session file `session`.
pub fn path_for(session: &Path) -> PathBuf {
    session.with_extension(WIRE_EXT)
}

/// The session file `from` was renamed `to`: its wire file follows (if it has one).
pub fn follow_rename(from: &Path, to: &Path) {
    let _ = std::fs::rename(path_for(from), path_for(to));
}

/// The session file `session` was deleted: its wire file goes too.
pub fn follow_delete(session: &Path) {
    let _ = std::fs::remove_file(path_for(session));
}

/// The record as one JSON line within [`MAX_PER_ANSWER`], cut down where it is larger.
pub fn line_of(record: &WireRecord) -> String {
    let mut r = record.clone();
    let mut line = serde_json::to_string(&r).unwrap_or_default();
    if line.len() <= MAX_PER_ANSWER {
        return line;
    }
    r.shrunk = true;
    let n = r.attempts.len().max(1);
    let body_cap = MAX_PER_ANSWER / (4 * n);
    for a in &mut r.attempts {
        cut(&mut a.request.body, body_cap);
        if let Some(response) = &mut a.response {
            let before = response.body.len();
            let at = floor_char_boundary(&response.body, body_cap);
            response.body.truncate(at);
            response.body_dropped += (before - at) as u64;
        }
        if a.events.len() > SHRUNK_EVENTS {
            // The start and the end say most: how it began, and how it ended.
            let dropped = a.events.len() - SHRUNK_EVENTS;
            let tail = a.events.split_off(a.events.len() - SHRUNK_EVENTS / 2);
            a.events.truncate(SHRUNK_EVENTS / 2);
            a.events.extend(tail);
            a.events_dropped += dropped as u64;
        }
    }
    line = serde_json::to_string(&r).unwrap_or_default();
    if line.len() > MAX_PER_ANSWER {
        for a in &mut r.attempts {
            a.events_dropped += a.events.len() as u64;
            a.events.clear();
            if let Some(response) = &mut a.response {
                response.body_dropped += response.body.len() as u64;
                response.body.clear();
            }
        }
        line = serde_json::to_string(&r).unwrap_or_default();
    }
    line
}

/// The largest char boundary of `text` at or below `max`.
fn floor_char_boundary(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    (0..=max)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let at = floor_char_boundary(text, max);
    let more = text.len() - at;
    text.truncate(at);
    text.push_str(&format!("\n… ({more} bytes more, not kept)"));
}

/// Appends `record` to the wire file at `path` (see the module docs for the bounds).
pub fn append(path: &Path, record: &WireRecord) -> std::io::Result<()> {
    let line = line_of(record);
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    if len + line.len() as u64 + 1 > MAX_FILE {
        keep_newest(path, MAX_FILE / 2)?;
    }
    let mut f = file::open_append(path)?;
    f.write_all(line.as_bytes())?;
    f.write_all(b"\n")
}

/// Rewrites the file with its newest lines that fit in `budget` bytes.
fn keep_newest(path: &Path, budget: u64) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut size = 0u64;
    for line in bytes.split(|b| *b == b'\n').rev() {
        if line.is_empty() {
            continue;
        }
        size += line.len() as u64 + 1;
        if size > budget {
            break;
        }
        kept.push(line);
    }
    let tmp = path.with_extension("wire.tmp");
    {
        let _ = std::fs::remove_file(&tmp);
        let mut f = file::open_append(&tmp)?;
        for line in kept.iter().rev() {
            f.write_all(line)?;
            f.write_all(b"\n")?;
        }
    }
    std::fs::rename(&tmp, path)
}

/// The record of `answer_id` in the wire file at `path` (the last one, if written twice);
/// `None` when there is none (or no file).
pub fn find(path: &Path, answer_id: u64) -> std::io::Result<Option<WireRecord>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let needle = format!("{{\"answer_id\":{answer_id},");
    let found = bytes
        .split(|b| *b == b'\n')
        .rev()
        .filter(|l| l.starts_with(needle.as_bytes()))
        .find_map(|l| serde_json::from_slice::<WireRecord>(l).ok());
    Ok(found)
}

/// Records kept in memory for the inspector (the latest answers').
const RECENT: usize = 16;

/// The runner's side: the router's capture, and the records of the latest answers.
#[derive(Debug, Default)]
pub struct WireKeeper {
    capture: Option<Arc<Capture>>,
    recent: VecDeque<WireRecord>,
}

impl WireKeeper {
    pub fn new(capture: Option<Arc<Capture>>) -> WireKeeper {
        WireKeeper {
            capture,
            recent: VecDeque::new(),
        }
    }

    /// Takes request `request_id`'s attempts from the capture and keeps them as answer
    /// `answer_id`'s record, in memory and in the wire file of `session_file` (when there is
    /// one).
    pub fn save(
        &mut self,
        session_file: Option<&Path>,
        answer_id: u64,
        request_id: u64,
        route: Vec<String>,
    ) -> Result<(), String> {
        let Some(capture) = &self.capture else {
            return Ok(());
        };
        let record = WireRecord {
            answer_id,
            request_id,
            route,
            attempts: capture.take(request_id),
            shrunk: false,
        };
        let written = match session_file {
            Some(p) => append(&path_for(p), &record).map_err(|e| {
                format!(
                    "cannot save the wire record to {}: {e}",
                    path_for(p).display()
                )
            }),
            None => Ok(()),
        };
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(record);
        written
    }

    /// Answer `answer_id`'s record from memory: kept, or (`request_id`) still being captured.
    pub fn recent(
        &self,
        answer_id: u64,
        request_id: Option<u64>,
        route: &[String],
    ) -> Option<WireRecord> {
        if let Some(r) = self.recent.iter().rev().find(|r| r.answer_id == answer_id) {
            let mut r = r.clone();
            // Routing events still arriving when it was saved (its `done`) are in the app's log.
            if route.len() > r.route.len() {
                r.route = route.to_vec();
            }
            return Some(r);
        }
        let (capture, request_id) = (self.capture.as_ref()?, request_id?);
        Some(WireRecord {
            answer_id,
            request_id,
            route: route.to_vec(),
            attempts: capture.peek(request_id),
            shrunk: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::capture::WireEvent;

    fn record(answer_id: u64, events: usize, body: usize) -> WireRecord {
        WireRecord {
            answer_id,
            request_id: answer_id + 100,
            route: vec!["#1 attempt 1 → a".into()],
            attempts: vec![AttemptWire {
                request: crate::provider::preview::SentRequest {
                    body: "x".repeat(body),
                    ..Default::default()
                },
                events: (0..events)
                    .map(|i| WireEvent {
                        ms: i as u64,
                        what: format!("delta {:?}", "word ".repeat(20)),
                    })
                    .collect(),
                ..Default::default()
            }],
            shrunk: false,
        }
    }

    #[test]
    fn records_are_bounded_per_answer_and_per_file_and_found_by_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("s.jsonl"));
        assert_eq!(path.extension().unwrap(), "wire");
        let big = record(1, 20_000, 1_000_000);
        let line = line_of(&big);
        assert!(line.len() <= MAX_PER_ANSWER, "{}", line.len());
        // Attempts with whole response bodies kept: cut to fit too, and counted.
        let mut raw = record(9, 10, 10);
        raw.attempts[0].response = Some(crate::provider::http::RawResponse {
            status_line: "HTTP/1.1 200 OK".into(),
            body: "data: é\n\n".repeat(crate::provider::http::tap::MAX_RAW_BODY / 10),
            ..Default::default()
        });
        raw.attempts = vec![raw.attempts[0].clone(); 6];
        let line = line_of(&raw);
        assert!(line.len() <= MAX_PER_ANSWER, "{}", line.len());
        let back: WireRecord = serde_json::from_str(&line).unwrap();
        let r = back.attempts[0].response.as_ref().unwrap();
        assert!(back.shrunk && r.body_dropped > 0 && r.body.starts_with("data: é"));
        append(&path, &big).unwrap();
        append(&path, &record(2, 3, 10)).unwrap();
        let one = find(&path, 1).unwrap().unwrap();
        assert!(one.shrunk && one.attempts[0].events_dropped > 0);
        assert_eq!(find(&path, 2).unwrap().unwrap().attempts[0].events.len(), 3);
        assert_eq!(find(&path, 3).unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Past the file cap, the oldest go.
        for id in 10..60 {
            append(&path, &big_but_fitting(id)).unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= MAX_FILE);
        assert_eq!(find(&path, 1).unwrap(), None, "the oldest were dropped");
        assert!(find(&path, 59).unwrap().is_some());
    }

    #[test]
    fn the_wire_file_follows_its_session_s_rename_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        append(&path_for(&a), &record(1, 1, 1)).unwrap();
        follow_rename(&a, &b);
        assert!(find(&path_for(&b), 1).unwrap().is_some());
        assert!(!path_for(&a).exists());
        follow_delete(&b);
        assert!(!path_for(&b).exists());
    }

    #[test]
    fn a_recent_record_takes_routing_events_that_came_after_its_save() {
        let mut keeper = WireKeeper::new(Some(Arc::new(Capture::new())));
        keeper.save(None, 3, 9, vec!["attempt".into()]).unwrap();
        let later = vec!["attempt".to_string(), "done".to_string()];
        let r = keeper.recent(3, Some(9), &later).unwrap();
        assert_eq!(r.route, later);
        assert_eq!(keeper.recent(3, Some(9), &[]).unwrap().route, ["attempt"]);
    }

    fn big_but_fitting(id: u64) -> WireRecord {
        record(id, 10, MAX_PER_ANSWER - 4096)
    }
}
