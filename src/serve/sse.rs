//! Server-sent events: the one place that makes a `text/event-stream` response (chat answers
//! of every API, and the monitors' `/llmux/events`), and the writer of a streamed answer.
//!
//! A started answer enters as a [`Started`] with its API's [`SseEncoder`]; [`answer`] asks the
//! encoder for the frames of each router event and hands them to hyper as soon as they exist,
//! joining what already arrived into one write (never waiting for more). The shutdown grace
//! period's end cuts it with an in-band error.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use futures::FutureExt;

use serde::Serialize;

use super::OVERLOADED_RETRY_AFTER_SECS;
use super::chat::{Started, Tracker, ended_early, llmux_headers};
use super::error::ApiError;
use super::json;
use crate::provider::{Passthrough, ToolCallDelta};
use crate::router::{ChatEvent, ChatOutcome, ChatStream};

/// Frames already available are joined into one body chunk up to this size.
const MAX_BATCH_BYTES: usize = 64 * 1024;
/// What a batch of SSE frames starts with room for: a burst of a few dozen frames (a
/// 20-chunk answer is ~5 KiB), so it rarely grows.
const SSE_WRITE_CAPACITY: usize = 8 * 1024;
/// Scheduler rounds a batch may wait for pieces that already arrived upstream.
const MAX_BATCH_ROUNDS: usize = 64;
/// Yields in a row that bring nothing before a batch is written. One is not enough: the
/// upstream connection's task often needs two or three of ours to pass its next buffered
/// piece (measured: with three, a burst of 24 frames leaves in one write instead of 21).
const MAX_IDLE_ROUNDS: usize = 3;

/// How one API writes a streamed answer.
pub trait SseEncoder: Send + 'static {
    /// The frames before the first text.
    fn open(&mut self, out: &mut Vec<u8>);
    fn delta(&mut self, text: &str, out: &mut Vec<u8>);
    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>);
    fn tool_call(&mut self, call: &ToolCallDelta, out: &mut Vec<u8>);
    /// What the upstream passed through, before the events of the same chunk (an API that
    /// does not speak the upstream's wire leaves it out).
    #[allow(clippy::boxed_local)] // An encoder that keeps it keeps the box.
    fn passthrough(&mut self, _p: Box<Passthrough>, _out: &mut Vec<u8>) {}
    /// The answer started over on another deployment (`mid_stream_failover: restart`).
    fn restart(&mut self, out: &mut Vec<u8>);
    fn finish(&mut self, outcome: &ChatOutcome, out: &mut Vec<u8>);
    /// The request failed after text was sent: an in-band error.
    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>);
}

/// The frames before the first text, with what was passed through before it: the pieces of
/// chunks without text before the opening (their members ride on it), the one that came with
/// the first text after it.
pub fn open_with<E: SseEncoder>(encoder: &mut E, before: Vec<Passthrough>, out: &mut Vec<u8>) {
    let mut opened = false;
    for p in before {
        if p.carries && !opened {
            encoder.open(out);
            opened = true;
        }
        encoder.passthrough(Box::new(p), out);
    }
    if !opened {
        encoder.open(out);
    }
}

struct BodyState<E> {
    stream: ChatStream,
    /// Flips to true when the shutdown grace period is over.
    cut: tokio::sync::watch::Receiver<bool>,
    encoder: E,
    tracker: Tracker,
    before: Vec<Passthrough>,
    first: Option<ChatEvent>,
    ended: bool,
}

/// A `text/event-stream` response over the rest of a started answer.
pub fn answer<E: SseEncoder>(started: Started, encoder: E, tracker: Tracker) -> Response {
    let request_id = started.stream.request_id;
    let deployment = started.deployment.clone();
    let attempts = started.attempts as usize;
    // Content before any attempt: the answer is replayed from the response cache.
    let cached = started.attempts == 0;
    let state = BodyState {
        stream: started.stream,
        cut: tracker.cut(),
        encoder,
        tracker,
        before: started.before,
        first: Some(started.first),
        ended: false,
    };
    let body = futures::stream::unfold(state, |mut s| async move {
        if s.ended {
            return None;
        }
        let mut out = Vec::with_capacity(SSE_WRITE_CAPACITY);
        if let Some(first) = s.first.take() {
            // `begin` already let the burst in: take it without yielding, so hyper writes it
            // with the head.
            open_with(&mut s.encoder, std::mem::take(&mut s.before), &mut out);
            encode(&mut s, first, &mut out);
            drain_queued(&mut s, &mut out);
            return Some((Ok::<Bytes, Infallible>(Bytes::from(out)), s));
        }
        while out.is_empty() && !s.ended {
            let ev = tokio::select! {
                biased;
                ev = s.stream.next_event() => Some(ev),
                _ = s.cut.wait_for(|cut| *cut) => None,
            };
            match ev {
                Some(ev) => step(&mut s, ev, &mut out),
                None => cut_short(&mut s, &mut out),
            }
        }
        take_ready(&mut s, &mut out).await;
        Some((Ok::<Bytes, Infallible>(Bytes::from(out)), s))
    });
    let mut response = response(Body::from_stream(body));
    llmux_headers(&mut response, &deployment, attempts, request_id, cached);
    response
}

/// Yield rounds taken in turn with the upstream connection, which hands its body over one
/// piece per turn of its own task: each round passes one more piece of what already arrived.
/// When a few rounds in a row bring nothing, the burst is over (no timer: nothing waits for
/// pieces still to come).
#[derive(Default)]
struct Turns {
    rounds: usize,
    idle: usize,
}

impl Turns {
    fn go_on(&self) -> bool {
        self.rounds < MAX_BATCH_ROUNDS && self.idle < MAX_IDLE_ROUNDS
    }

    async fn take(&mut self) {
        self.rounds += 1;
        tokio::task::yield_now().await;
    }

    fn brought(&mut self, any: bool) {
        self.idle = if any { 0 } else { self.idle + 1 };
    }
}

/// Before the response head is written: lets what the upstream already sent after the first
/// text reach the stream, so the head and the first frames leave in one write.
pub async fn run_ahead(stream: &mut ChatStream) {
    let mut turns = Turns::default();
    while !stream.is_done() && turns.go_on() {
        turns.take().await;
        turns.brought(stream.advance());
    }
}

/// Takes what else is ready now into the same write: never waits for more, but does not spend
/// a syscall per delta when the upstream sent a burst.
async fn take_ready<E: SseEncoder>(s: &mut BodyState<E>, out: &mut Vec<u8>) {
    let mut turns = Turns::default();
    while !s.ended && out.len() < MAX_BATCH_BYTES && turns.go_on() {
        turns.take().await;
        turns.brought(drain_queued(s, out));
    }
}

/// Encodes the events the stream has right now, without waiting; true when there were any.
fn drain_queued<E: SseEncoder>(s: &mut BodyState<E>, out: &mut Vec<u8>) -> bool {
    let mut any = false;
    while !s.ended && out.len() < MAX_BATCH_BYTES {
        match s.stream.next_event().now_or_never() {
            Some(ev) => {
                any = true;
                step(s, ev, out);
            }
            None => break,
        }
    }
    any
}

/// The shutdown grace period ended with this answer still streaming: it ends with an in-band
/// error rather than a bare close, so the client knows it was cut (counted as cancelled).
fn cut_short<E: SseEncoder>(s: &mut BodyState<E>, out: &mut Vec<u8>) {
    let e = ApiError::overloaded(
        "the server is shutting down and its grace period for answers ended: this answer was cut short; send the request again",
        OVERLOADED_RETRY_AFTER_SECS,
    );
    s.encoder.fail(&e, out);
    s.ended = true;
}

/// One event (or the end of the events) into frames.
fn step<E: SseEncoder>(s: &mut BodyState<E>, ev: Option<ChatEvent>, out: &mut Vec<u8>) {
    match ev {
        Some(ev) => encode(s, ev, out),
        None => {
            let e = ended_early(s.stream.request_id);
            s.tracker.finish(&Err(e.clone()));
            s.encoder.fail(&ApiError::from(e), out);
            s.ended = true;
        }
    }
}

fn encode<E: SseEncoder>(s: &mut BodyState<E>, ev: ChatEvent, out: &mut Vec<u8>) {
    match ev {
        ChatEvent::Route(_) => {}
        ChatEvent::Delta(t) => s.encoder.delta(&t, out),
        ChatEvent::Reasoning(t) => s.encoder.reasoning(&t, out),
        ChatEvent::ToolCall(c) => s.encoder.tool_call(&c, out),
        ChatEvent::Passthrough(p) => s.encoder.passthrough(p, out),
        ChatEvent::Usage(_) => {}
        ChatEvent::Restart => s.encoder.restart(out),
        ChatEvent::Finished(result) => {
            s.tracker.finish(&result);
            match result.as_ref() {
                Ok(outcome) => s.encoder.finish(outcome, out),
                Err(e) => s.encoder.fail(&ApiError::from(e.clone()), out),
            }
            s.ended = true;
        }
    }
}

/// A `text/event-stream` response of `body`: not cached, and passed through buffering reverse
/// proxies (nginx) frame by frame.
pub fn response(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// The tool calls of `outcome` that did not stream (an answer that came whole), one piece
/// each; `started` says which call indexes already went out.
pub fn unstreamed_calls(
    outcome: &ChatOutcome,
    started: impl Fn(u32) -> bool,
) -> Vec<ToolCallDelta> {
    (0u32..)
        .zip(&outcome.tool_calls)
        .filter(|(i, _)| !started(*i))
        .map(|(index, c)| ToolCallDelta {
            index,
            id: Some(c.id.clone()),
            name: Some(c.name.clone()),
            arguments: c.arguments.clone(),
        })
        .collect()
}

/// A whole answer's frames (an answer that came in one piece, asked as a stream): the opening
/// with what was passed through, then the end.
pub fn whole<E: SseEncoder>(
    mut encoder: E,
    passed: Vec<Passthrough>,
    outcome: &ChatOutcome,
) -> Response {
    let mut out = Vec::new();
    open_with(&mut encoder, passed, &mut out);
    encoder.finish(outcome, &mut out);
    response(Body::from(out))
}

/// Appends one SSE frame: an optional `event:` line, then `data: ` and what `data` writes.
pub fn frame(out: &mut Vec<u8>, event: Option<&str>, data: impl FnOnce(&mut Vec<u8>)) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"data: ");
    data(out);
    out.extend_from_slice(b"\n\n");
}

/// Appends one SSE frame of `value` as JSON.
pub fn json_frame<T: Serialize + ?Sized>(out: &mut Vec<u8>, event: Option<&str>, value: &T) {
    frame(out, event, |out| json::write(out, value));
}
