//! The part of a chat request both APIs share: admission (the in-flight limit), reading the
//! body (JSON only, within its size and time limits), running the request through the router up to its first token,
//! and turning the rest of the answer into SSE frames.
//!
//! A request enters as bytes and a [`ChatRequest`]; [`begin`] reads router events until the
//! first piece of text (then the answer streams, and the status is already known to be 200)
//! or the outcome (then a plain response or an error with its real status is sent). The
//! router runs inside the [`ChatStream`] this handler reads, in this connection's task. For
//! streams, [`sse_response`] asks an API's [`SseEncoder`] for the frames of each event and
//! hands them to hyper as soon as they exist, joining what already arrived into one write
//! (never waiting for more). A [`Tracker`] records the request's outcome in the serve metrics
//! exactly once, as `cancelled` when the client went away first.

use std::convert::Infallible;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures::{FutureExt, StreamExt};

use super::error::{
    ATTEMPTS_HEADER, Api, ApiError, CACHE_HEADER, DEPLOYMENT_HEADER, Kind, OVERLOADED_MESSAGE,
    REQUEST_ID_HEADER, outcome_label,
};
use super::framing::ChunkOverCap;
use super::{OVERLOADED_RETRY_AFTER_SECS, Shared};
use crate::provider::{ChatRequest, Passthrough, ToolCallDelta};
use crate::router::{
    ChatEvent, ChatOutcome, ChatStream, RouteError, RouteErrorKind, RouteEventKind,
};

/// Frames already available are joined into one body chunk up to this size.
const MAX_BATCH_BYTES: usize = 64 * 1024;
/// What a batch of SSE frames starts with room for: a burst of a few dozen frames, so it
/// rarely grows.
const SSE_WRITE_CAPACITY: usize = 4 * 1024;
/// Room for a whole JSON answer of a few sentences with its usage.
pub const JSON_ANSWER_CAPACITY: usize = 1024;
/// Scheduler rounds a batch may wait for pieces that already arrived upstream.
const MAX_BATCH_ROUNDS: usize = 64;
/// Yields in a row that bring nothing before a batch is written. One is not enough: the
/// upstream connection's task often needs two or three of ours to pass its next buffered
/// piece (measured: with three, a burst of 24 frames leaves in one write instead of 21).
const MAX_IDLE_ROUNDS: usize = 3;

/// One admitted chat request; dropping it frees its in-flight slot.
pub struct Admission {
    state: Shared,
}

impl Admission {
    /// Takes an in-flight slot, or refuses with 503 and Retry-After when none is free or the
    /// server is shutting down.
    pub fn take(state: &Shared) -> Result<Admission, ApiError> {
        if state.is_shutting_down() {
            state.metrics.rejected("shutting_down");
            return Err(ApiError::overloaded(
                "the server is shutting down",
                OVERLOADED_RETRY_AFTER_SECS,
            ));
        }
        let before = state.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= state.max_in_flight {
            state.in_flight.fetch_sub(1, Ordering::AcqRel);
            state.metrics.rejected("overloaded");
            return Err(ApiError::overloaded(
                OVERLOADED_MESSAGE,
                OVERLOADED_RETRY_AFTER_SECS,
            ));
        }
        Ok(Admission {
            state: state.clone(),
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reads the request body: JSON only (415 otherwise), within the configured size (413) and
/// time (408) limits.
pub async fn read_body(state: &Shared, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    require_json(state, headers)?;
    let limit = state.max_body_bytes;
    let too_large = || {
        state.metrics.rejected("body_too_large");
        ApiError::new(
            Kind::TooLarge,
            format!("the request body is larger than the {limit}-byte limit"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut buf = BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
        let mut frames = body.into_data_stream();
        while let Some(frame) = frames.next().await {
            let frame = frame.map_err(|e| {
                let e = e.into_inner();
                if e.is::<ChunkOverCap>() {
                    // Announced, not sent: refused before the client spends the time.
                    return too_large();
                }
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            })?;
            if buf.len() + frame.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&frame);
        }
        Ok(buf.freeze())
    };
    // A client trickling its body would hold an in-flight slot for as long as it likes.
    let deadline = state.body_read_timeout;
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or_else(|_| {
            state.metrics.rejected("body_timeout");
            Err(ApiError::new(
                Kind::Timeout,
                format!(
                    "the request body did not arrive within {}s",
                    deadline.as_secs_f64()
                ),
            ))
        })
}

/// The longest piece of a refused `Content-Type` quoted back.
const MAX_QUOTED_CONTENT_TYPE: usize = 64;

/// 415 unless the body is declared as JSON. Besides telling a client what to fix, this keeps
/// a web page from posting to a local server without a CORS preflight: browsers send
/// `text/plain` and form bodies cross-origin without asking first, never `application/json`.
fn require_json(state: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = value
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if essence.is_some_and(|e| e.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    state.metrics.rejected("unsupported_media_type");
    let got = match value {
        Some(v) => format!(
            "`{}`",
            v.chars().take(MAX_QUOTED_CONTENT_TYPE).collect::<String>()
        ),
        None => "none".to_string(),
    };
    Err(ApiError::new(
        Kind::UnsupportedMediaType,
        format!("send the request body as JSON with `Content-Type: application/json` (got {got})"),
    ))
}

/// Parses JSON, turning serde's message into a 400.
pub fn parse_json<'a, T: serde::Deserialize<'a>>(
    state: &Shared,
    bytes: &'a [u8],
) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        state.metrics.rejected("bad_request");
        ApiError::bad_request(format!("invalid request body: {e}"))
    })
}

/// Records the request's outcome once; a request dropped before that counts as cancelled.
pub struct Tracker {
    state: Shared,
    api: Api,
    /// The requested group after alias resolution ("" when unknown).
    requested: String,
    /// The group and deployment of the latest attempt.
    group: String,
    deployment: String,
    done: bool,
    _admission: Admission,
}

impl Tracker {
    pub fn new(state: &Shared, api: Api, requested: &str, admission: Admission) -> Tracker {
        // Only configured names become label values, so clients cannot grow the label set.
        let group = state
            .router
            .config()
            .resolve_group(requested)
            .unwrap_or("")
            .to_string();
        Tracker {
            state: state.clone(),
            api,
            requested: group.clone(),
            group,
            deployment: String::new(),
            done: false,
            _admission: admission,
        }
    }

    fn started(&mut self, group: &str, deployment: &str) {
        self.group = group.to_string();
        self.deployment = deployment.to_string();
    }

    pub fn finish(&mut self, result: &Result<ChatOutcome, RouteError>) {
        self.done = true;
        match result {
            Ok(o) => self.state.metrics.request_succeeded(
                self.api,
                &o.group,
                &o.deployment,
                o.ttft,
                o.total,
            ),
            Err(e) => {
                self.state
                    .metrics
                    .request(self.api, &self.requested, "", outcome_label(e));
            }
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.done {
            self.state
                .metrics
                .request(self.api, &self.group, &self.deployment, "cancelled");
        }
    }
}

/// Where a request stands once its first token or its outcome is known.
pub enum Begun {
    /// Text started arriving; the rest follows on `stream`.
    Streaming(Started),
    /// The request ended before any text: its outcome, and what the answering attempt's
    /// upstream sent that llmux passes back ([`Passthrough`]).
    Done(Result<ChatOutcome, RouteError>, Vec<Passthrough>),
}

/// A request whose answer has started.
pub struct Started {
    pub stream: ChatStream,
    /// What the current attempt's upstream passed through before the first content.
    pub before: Vec<Passthrough>,
    /// The first content event (text, reasoning or a piece of a tool call).
    pub first: ChatEvent,
    pub deployment: String,
    pub attempts: u32,
    /// The prompt's tokens: as the answering upstream reported them before its first token
    /// (Anthropic does), else the router's estimate.
    pub prompt_tokens: u64,
}

/// Sends `request` to `model` and reads until the first text or the outcome.
pub async fn begin(
    state: &Shared,
    model: &str,
    request: ChatRequest,
    tracker: &mut Tracker,
) -> Begun {
    let mut stream = state.router.chat(model, request);
    let mut deployment = String::new();
    let mut attempts = 0u32;
    let mut estimate = 0u64;
    let mut reported: Option<u64> = None;
    let mut before = Vec::new();
    loop {
        match stream.next_event().await {
            None => return Begun::Done(Err(ended_early(stream.request_id)), before),
            Some(ChatEvent::Route(ev)) => match &ev.kind {
                RouteEventKind::Request {
                    prompt_tokens: p, ..
                } => estimate = *p,
                RouteEventKind::Attempt => {
                    attempts += 1;
                    deployment = ev.deployment.clone().unwrap_or_default();
                    tracker.started(&ev.group, &deployment);
                    // What an earlier attempt said is not this one's.
                    reported = None;
                    before.clear();
                }
                _ => {}
            },
            Some(ChatEvent::Usage(u)) => {
                if !u.estimated {
                    reported = Some(u.input);
                }
            }
            Some(ChatEvent::Passthrough(p)) => before.push(*p),
            Some(
                first @ (ChatEvent::Delta(_) | ChatEvent::Reasoning(_) | ChatEvent::ToolCall(_)),
            ) => {
                run_ahead(&mut stream).await;
                return Begun::Streaming(Started {
                    stream,
                    before,
                    first,
                    deployment,
                    attempts,
                    prompt_tokens: reported.unwrap_or(estimate),
                });
            }
            Some(ChatEvent::Restart) => {}
            Some(ChatEvent::Finished(result)) => return Begun::Done(*result, before),
        }
    }
}

/// Reads a started answer to its outcome for a plain (not streamed) response: the text is in
/// the outcome; what the answering attempt's upstream passed through is kept beside it.
pub async fn finish_plain(started: Started) -> (Result<ChatOutcome, RouteError>, Vec<Passthrough>) {
    let Started {
        mut stream,
        mut before,
        ..
    } = started;
    while let Some(ev) = stream.next_event().await {
        match ev {
            ChatEvent::Passthrough(p) => before.push(*p),
            ChatEvent::Route(ev) if matches!(ev.kind, RouteEventKind::Attempt) => before.clear(),
            ChatEvent::Finished(result) => return (*result, before),
            _ => {}
        }
    }
    (Err(ended_early(stream.request_id)), before)
}

/// Refuses a request for the other kind of model, by `model_info.mode`: embeddings of a group
/// whose deployments all say another mode, chat with a group whose deployments are all
/// embedding models. A deployment without a mode may be asked either; an unknown group is
/// left to the router (its 404).
pub fn check_mode(state: &Shared, model: &str, embedding: bool) -> Result<(), ApiError> {
    let config = state.router.config();
    let Some(group) = config.resolve_group(model) else {
        return Ok(());
    };
    let modes: Vec<Option<&str>> = config
        .group_deployments(group)
        .map(|d| d.mode.as_deref())
        .collect();
    let is_embedding = |m: &Option<&str>| *m == Some(crate::config::EMBEDDING_MODE);
    let wrong = if embedding {
        modes.iter().all(|m| m.is_some() && !is_embedding(m))
    } else {
        modes.iter().all(is_embedding)
    };
    if !wrong || modes.is_empty() {
        return Ok(());
    }
    state.metrics.rejected("bad_request");
    Err(ApiError::bad_request(if embedding {
        format!(
            "model group '{group}' has no embedding model (its model_info.mode is not \
             'embedding'); send embeddings to a group of embedding models"
        )
    } else {
        format!(
            "model group '{group}' is a group of embedding models (model_info.mode: \
             embedding); send its requests to POST /v1/embeddings"
        )
    }))
}

/// A response id in an API's format (`chatcmpl-…`, `msg_…`): random, so unique across
/// instances and restarts, unlike the router's request id (which the `x-llmux-request-id`
/// header carries).
pub fn response_id(prefix: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    /// Base-62 digits that hold a `u64`.
    const PER_WORD: usize = 11;
    let mut id = String::with_capacity(prefix.len() + 2 * PER_WORD);
    id.push_str(prefix);
    let mut rng = rand::rng();
    for _ in 0..2 {
        let mut word: u64 = rand::RngExt::random(&mut rng);
        for _ in 0..PER_WORD {
            id.push(char::from(DIGITS[(word % 62) as usize]));
            word /= 62;
        }
    }
    id
}

/// The outcome of a request whose task ended without one (it should not happen).
pub fn ended_early(request_id: u64) -> RouteError {
    RouteError {
        request_id,
        kind: RouteErrorKind::AllFailed,
        message: "the request ended without an outcome".to_string(),
        attempts: Vec::new(),
        retry_in: None,
        partial_text: String::new(),
    }
}

/// Adds `x-llmux-deployment`, `x-llmux-attempts`, `x-llmux-request-id` and, for an answer
/// from the response cache, `x-llmux-cache: hit`.
pub fn llmux_headers(
    response: &mut Response,
    deployment: &str,
    attempts: usize,
    request_id: u64,
    cached: bool,
) {
    let headers = response.headers_mut();
    if !deployment.is_empty()
        && let Ok(v) = HeaderValue::from_str(deployment)
    {
        headers.insert(DEPLOYMENT_HEADER, v);
    }
    headers.insert(ATTEMPTS_HEADER, HeaderValue::from(attempts));
    headers.insert(REQUEST_ID_HEADER, HeaderValue::from(request_id));
    if cached {
        headers.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
    }
}

/// [`llmux_headers`] for a finished answer.
pub fn outcome_headers(response: &mut Response, outcome: &ChatOutcome) {
    llmux_headers(
        response,
        &outcome.deployment,
        outcome.attempts.len(),
        outcome.request_id,
        outcome.cached,
    );
}

/// How one API writes a streamed answer.
pub trait SseEncoder: Send + 'static {
    /// The frames before the first text.
    fn open(&mut self, out: &mut BytesMut);
    fn delta(&mut self, text: &str, out: &mut BytesMut);
    fn reasoning(&mut self, text: &str, out: &mut BytesMut);
    fn tool_call(&mut self, call: &ToolCallDelta, out: &mut BytesMut);
    /// What the upstream passed through, before the events of the same chunk (an API that
    /// does not speak the upstream's wire leaves it out).
    #[allow(clippy::boxed_local)] // An encoder that keeps it keeps the box.
    fn passthrough(&mut self, _p: Box<Passthrough>, _out: &mut BytesMut) {}
    /// The answer started over on another deployment (`mid_stream_failover: restart`).
    fn restart(&mut self, out: &mut BytesMut);
    fn finish(&mut self, outcome: &ChatOutcome, out: &mut BytesMut);
    /// The request failed after text was sent: an in-band error.
    fn fail(&mut self, error: &ApiError, out: &mut BytesMut);
}

/// The frames before the first text, with what was passed through before it: the pieces of
/// chunks without text before the opening (their members ride on it), the one that came with
/// the first text after it.
pub fn open_with<E: SseEncoder>(encoder: &mut E, before: Vec<Passthrough>, out: &mut BytesMut) {
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
pub fn sse_response<E: SseEncoder>(started: Started, encoder: E, tracker: Tracker) -> Response {
    let request_id = started.stream.request_id;
    let deployment = started.deployment.clone();
    let attempts = started.attempts as usize;
    // Content before any attempt: the answer is replayed from the response cache.
    let cached = started.attempts == 0;
    let state = BodyState {
        stream: started.stream,
        cut: tracker.state.cut.clone(),
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
        let mut out = BytesMut::with_capacity(SSE_WRITE_CAPACITY);
        if let Some(first) = s.first.take() {
            // `begin` already let the burst in: take it without yielding, so hyper writes it
            // with the head.
            open_with(&mut s.encoder, std::mem::take(&mut s.before), &mut out);
            encode(&mut s, first, &mut out);
            drain_queued(&mut s, &mut out);
            return Some((Ok::<Bytes, Infallible>(out.freeze()), s));
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
        Some((Ok::<Bytes, Infallible>(out.freeze()), s))
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell buffering reverse proxies (nginx) to pass frames through as they come.
    headers.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
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
async fn run_ahead(stream: &mut ChatStream) {
    let mut turns = Turns::default();
    while !stream.is_done() && turns.go_on() {
        turns.take().await;
        turns.brought(stream.advance());
    }
}

/// Takes what else is ready now into the same write: never waits for more, but does not spend
/// a syscall per delta when the upstream sent a burst.
async fn take_ready<E: SseEncoder>(s: &mut BodyState<E>, out: &mut BytesMut) {
    let mut turns = Turns::default();
    while !s.ended && out.len() < MAX_BATCH_BYTES && turns.go_on() {
        turns.take().await;
        turns.brought(drain_queued(s, out));
    }
}

/// Encodes the events the stream has right now, without waiting; true when there were any.
fn drain_queued<E: SseEncoder>(s: &mut BodyState<E>, out: &mut BytesMut) -> bool {
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
fn cut_short<E: SseEncoder>(s: &mut BodyState<E>, out: &mut BytesMut) {
    let e = ApiError::overloaded(
        "the server is shutting down and its grace period for answers ended: this answer was cut short; send the request again",
        OVERLOADED_RETRY_AFTER_SECS,
    );
    s.encoder.fail(&e, out);
    s.ended = true;
}

/// One event (or the end of the events) into frames.
fn step<E: SseEncoder>(s: &mut BodyState<E>, ev: Option<ChatEvent>, out: &mut BytesMut) {
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

fn encode<E: SseEncoder>(s: &mut BodyState<E>, ev: ChatEvent, out: &mut BytesMut) {
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

/// Appends one SSE frame: an optional `event:` line, then `data: JSON`.
pub fn frame(out: &mut BytesMut, event: Option<&str>, data: &[u8]) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

/// `value` as an `application/json` response. Serialized into a `Vec` sized for a typical
/// answer: serde's many small writes cost less there than through the `BytesMut` of axum's
/// `Json`, and it does not grow three times on the way.
pub fn json_response<T: serde::Serialize>(value: &T) -> Response {
    let mut bytes = Vec::with_capacity(JSON_ANSWER_CAPACITY);
    if serde_json::to_writer(&mut bytes, value).is_err() {
        // Typed answers always serialize; this is only what axum's `Json` would do.
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    json_bytes_response(bytes)
}

/// An `application/json` response of JSON already written.
pub fn json_bytes_response(bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `text` as a JSON string literal, quotes included.
pub fn json_str(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// Seconds since the Unix epoch, for `created`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
