//! What went over the wire, kept for whoever asked (the TUI's inspector): every attempt's
//! request as sent (keys redacted, see [`crate::provider::preview`]), its status, the
//! response's status line, headers and body bytes as they came ([`RawResponse`], credentials
//! redacted), the stream events as they were decoded with their times, and how it ended.
//!
//! Optional and passed in: a [`Capture`] given in `RouterOptions::capture` is the only one;
//! without it (`serve`, `ask`) an attempt costs one `None` check at its start and one per
//! streamed piece, and its HTTP client has no tap. With it, each attempt gets an
//! [`AttemptTap`] that builds its [`AttemptWire`] (and a [`RawTap`] for its HTTP client,
//! [`AttemptTap::raw`]); at the attempt's end the record joins the capture's bounded memory,
//! from which the caller takes a request's attempts ([`Capture::take`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::{Deployment, Wire};
use crate::provider::http::{RawResponse, RawTap};
use crate::provider::outbound::Secrets;
use crate::provider::preview::{SentRequest, as_sent};
use crate::provider::{ChatRequest, ProviderError, StreamEvent};

/// Attempts kept in memory until taken (the oldest go first).
const KEEP_ATTEMPTS: usize = 256;
/// Events kept per attempt (later ones are counted, not kept).
pub const MAX_EVENTS: usize = 2000;
/// Bytes of a request body kept per attempt.
pub const MAX_BODY: usize = 64 * 1024;

/// What an in-process (`mock/`) attempt shows where an HTTP one shows `opened: 200`.
pub const IN_PROCESS_OPENED: &str = "mock deployment: no HTTP, answered in-process";

/// One attempt as it went over the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptWire {
    pub request_id: u64,
    /// 1-based within the request.
    pub attempt: u32,
    pub group: String,
    pub deployment: String,
    pub at_unix_ms: u64,
    pub request: SentRequest,
    /// A `mock/` deployment: answered in-process, no HTTP request was made (its status, if
    /// any, is the one it simulated).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_process: bool,
    /// The HTTP status: the error's, or 200 once a stream opened (`None`: no answer came, or
    /// an in-process answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `ok`, or the failure as the router classed it (`server (HTTP 503): …`).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// The response as it came: status line, headers, body bytes (`None`: no response came,
    /// or an in-process answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RawResponse>,
    /// What came back, decoded, in order, with milliseconds since the attempt started.
    pub events: Vec<WireEvent>,
    /// Events past [`MAX_EVENTS`], not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events_dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<u64>,
    pub total_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One piece received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEvent {
    pub ms: u64,
    /// `delta "text"`, `usage 12 in / 80 out`, `done stop`, `error …`.
    pub what: String,
}

/// Attempts captured, until taken. Shared by the router (which fills it) and its owner.
#[derive(Debug, Default)]
pub struct Capture {
    kept: Mutex<VecDeque<AttemptWire>>,
}

impl Capture {
    pub fn new() -> Capture {
        Capture::default()
    }

    /// Starts capturing one attempt of `request_id` at `d`, sending `call`.
    pub fn begin(
        &self,
        request_id: u64,
        attempt: u32,
        group: &str,
        d: &Deployment,
        call: &ChatRequest,
    ) -> AttemptTap {
        let mut request = as_sent(d, call);
        if request.body.len() > MAX_BODY {
            let cut = (0..=MAX_BODY)
                .rev()
                .find(|i| request.body.is_char_boundary(*i))
                .unwrap_or(0);
            let more = request.body.len() - cut;
            request.body.truncate(cut);
            request
                .body
                .push_str(&format!("\n… ({more} bytes more, not kept)"));
        }
        let in_process = d.wire == Wire::Mock;
        AttemptTap {
            start: Instant::now(),
            raw: (!in_process).then(RawTap::new),
            wire: AttemptWire {
                request_id,
                attempt,
                group: group.to_string(),
                deployment: d.id.clone(),
                at_unix_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |t| t.as_millis() as u64),
                request,
                in_process,
                ..AttemptWire::default()
            },
        }
    }

    fn keep(&self, wire: AttemptWire) {
        let mut kept = match self.kept.lock() {
            Ok(k) => k,
            Err(p) => p.into_inner(),
        };
        if kept.len() >= KEEP_ATTEMPTS {
            kept.pop_front();
        }
        kept.push_back(wire);
    }

    /// The attempts of `request_id` so far, removed from memory.
    pub fn take(&self, request_id: u64) -> Vec<AttemptWire> {
        let mut kept = match self.kept.lock() {
            Ok(k) => k,
            Err(p) => p.into_inner(),
        };
        let (mine, rest): (Vec<_>, Vec<_>) =
            kept.drain(..).partition(|w| w.request_id == request_id);
        kept.extend(rest);
        mine
    }

    /// The attempts of `request_id` so far, left in memory.
    pub fn peek(&self, request_id: u64) -> Vec<AttemptWire> {
        let kept = match self.kept.lock() {
            Ok(k) => k,
            Err(p) => p.into_inner(),
        };
        kept.iter()
            .filter(|w| w.request_id == request_id)
            .cloned()
            .collect()
    }
}

/// One attempt being captured.
#[derive(Debug)]
pub struct AttemptTap {
    start: Instant,
    /// What the attempt's HTTP client notes of the response (none for an in-process one).
    raw: Option<RawTap>,
    wire: AttemptWire,
}

impl AttemptTap {
    /// The tap to give this attempt's HTTP client ([`crate::provider::HttpClient::tapped`]).
    pub fn raw(&self) -> Option<&RawTap> {
        self.raw.as_ref()
    }

    /// The upstream answered with a success status: the stream is open. An in-process
    /// (`mock/`) deployment made no HTTP request and has no status: it says so instead.
    pub fn opened(&mut self) {
        if self.wire.in_process {
            self.push(IN_PROCESS_OPENED.to_string());
            return;
        }
        self.wire.status = Some(200);
        self.push("opened: 200".to_string());
    }

    /// A piece of the stream as it was received (`None`: the stream ended).
    pub fn received(&mut self, next: Option<&Result<StreamEvent, ProviderError>>) {
        let what = match next {
            None => "end of stream".to_string(),
            Some(Err(e)) => format!("error {e}"),
            Some(Ok(ev)) => {
                if self.wire.ttft_ms.is_none()
                    && matches!(
                        ev,
                        StreamEvent::Delta(_)
                            | StreamEvent::Reasoning(_)
                            | StreamEvent::ToolCall(_)
                    )
                {
                    self.wire.ttft_ms = Some(self.elapsed());
                }
                describe(ev)
            }
        };
        self.push(what);
    }

    fn elapsed(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn push(&mut self, what: String) {
        if self.wire.events.len() >= MAX_EVENTS {
            self.wire.events_dropped += 1;
            return;
        }
        let ms = self.elapsed();
        self.wire.events.push(WireEvent { ms, what });
    }

    /// The attempt at `d` ended: `Ok` when it answered, else its error. The record joins
    /// `capture`, with the response as received (`d`'s secrets scrubbed from it).
    pub fn end(mut self, capture: &Capture, d: &Deployment, result: Result<(), &ProviderError>) {
        self.wire.total_ms = self.elapsed();
        self.wire.response = self.raw.and_then(|r| r.take(Secrets::of(d)));
        match result {
            Ok(()) => self.wire.outcome = "ok".to_string(),
            Err(e) => {
                self.wire.status = e.status.or(self.wire.status);
                self.wire.outcome = e.to_string();
                self.wire.retry_after_ms = e.retry_after.map(|d| d.as_millis() as u64);
            }
        }
        capture.keep(self.wire);
    }
}

/// One event as a line.
fn describe(ev: &StreamEvent) -> String {
    match ev {
        StreamEvent::Delta(t) => format!("delta {t:?}"),
        StreamEvent::Reasoning(t) => format!("reasoning {t:?}"),
        StreamEvent::Usage(u) => format!(
            "usage {} in / {} out{}",
            u.input,
            u.output,
            if u.estimated { " (estimated)" } else { "" }
        ),
        StreamEvent::ToolCall(c) => format!(
            "tool_call #{} {}{:?}",
            c.index,
            c.name
                .as_deref()
                .map(|n| format!("{n} "))
                .unwrap_or_default(),
            c.arguments
        ),
        StreamEvent::Passthrough(_) => "passthrough (members llmux does not model)".to_string(),
        StreamEvent::Done { finish_reason } => {
            format!("done {}", finish_reason.as_deref().unwrap_or("-"))
        }
    }
}
