//! The chat routes, one handler for every API: OpenAI's chat completions, its legacy text
//! completions and Anthropic's Messages each implement [`ChatApi`] (how a request is read, how
//! an answer is written, whole or streamed) and [`serve`] does the rest the same way for all:
//! admission (the in-flight limit), the body within its limits, the parse, the mode check,
//! routing up to the first token, metrics, the `x-llmux-*` headers and errors in the API's
//! shape.
//!
//! A request enters as bytes and leaves as a [`ChatRequest`]; [`begin`] reads router events
//! until the first piece of text (then the answer streams, and the status is already known to
//! be 200) or the outcome (then a plain response or an error with its real status is sent).
//! The router runs inside the [`ChatStream`] this handler reads, in this connection's task;
//! `sse` writes a streamed answer. A [`Tracker`] records the request's outcome in the serve
//! metrics exactly once, as `cancelled` when the client went away first.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::body::read_body;
use super::error::{
    ATTEMPTS_HEADER, Api, ApiError, CACHE_HEADER, DEPLOYMENT_HEADER, OVERLOADED_MESSAGE,
    REQUEST_ID_HEADER, outcome_label,
};
use super::sse::{self, SseEncoder};
use super::{OVERLOADED_RETRY_AFTER_SECS, Shared};
use crate::provider::{ChatRequest, Passthrough};
use crate::router::{
    ChatEvent, ChatOutcome, ChatStream, RouteError, RouteErrorKind, RouteEventKind,
};

/// What differs between the chat APIs llmux serves; everything else is [`serve`]'s.
pub trait ChatApi {
    /// The API whose error shapes and metrics label the requests get.
    const API: Api;
    /// How a response id starts (`chatcmpl-`, `msg_`, `cmpl-`).
    const ID_PREFIX: &'static str;
    /// What a request says about writing its answer beyond the chat request.
    type Options: Send;
    /// Writes a streamed answer.
    type Encoder: SseEncoder;

    /// The request's body (JSON, read within the limits) as a chat request; a 400 otherwise.
    fn parse(body: &[u8]) -> Result<Parsed<Self::Options>, ApiError>;

    /// The encoder of a streamed answer; `prompt_tokens` as known when it opens.
    fn encoder(id: &str, model: &str, options: &Self::Options, prompt_tokens: u64)
    -> Self::Encoder;

    /// A whole answer as the API's JSON body, with what the answering upstream passed through.
    fn answer(
        outcome: &ChatOutcome,
        id: &str,
        model: &str,
        passed: Vec<Passthrough>,
    ) -> Result<Vec<u8>, ApiError>;
}

/// A chat request as an API's request reads.
pub struct Parsed<O> {
    /// The model group (or alias) asked for.
    pub model: String,
    pub request: ChatRequest,
    /// Whether the answer is to be streamed.
    pub stream: bool,
    pub options: O,
}

/// A chat request of API `A`, from its body to its answer or its error in `A`'s shape.
pub async fn serve<A: ChatApi>(state: Shared, headers: HeaderMap, body: Body) -> Response {
    match handle::<A>(state, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response_for(A::API),
    }
}

async fn handle<A: ChatApi>(
    state: Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let admission = Admission::take(&state)?;
    let bytes = read_body(&state, &headers, body).await?;
    let Parsed {
        model,
        mut request,
        stream,
        options,
    } = A::parse(&bytes).inspect_err(|_| state.metrics.rejected("bad_request"))?;
    request.stream = stream;
    check_mode(&state, &model, false)?;
    let mut tracker = Tracker::new(&state, A::API, &model, admission);
    let id = response_id(A::ID_PREFIX);
    let (result, passed) = match begin(&state, &headers, &model, request, &mut tracker).await {
        Begun::Streaming(started) if stream => {
            let encoder = A::encoder(&id, &model, &options, started.prompt_tokens);
            return Ok(sse::answer(started, encoder, tracker));
        }
        Begun::Streaming(started) => finish_plain(started).await,
        Begun::Done(result, passed) => (result, passed),
    };
    tracker.finish(&result);
    let outcome = result.map_err(ApiError::from)?;
    let mut response = if stream {
        // The answer came whole (no text): send it as a stream all the same.
        let encoder = A::encoder(&id, &model, &options, outcome.usage.input);
        sse::whole(encoder, passed, &outcome)
    } else {
        json_bytes_response(A::answer(&outcome, &id, &model, passed)?)
    };
    outcome_headers(&mut response, &outcome);
    Ok(response)
}

/// Room for a whole JSON answer of a few sentences with its usage.
pub const JSON_ANSWER_CAPACITY: usize = 1024;

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

    /// Flips to true when the shutdown grace period is over.
    pub fn cut(&self) -> tokio::sync::watch::Receiver<bool> {
        self.state.cut.clone()
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

/// Sends `request` to `model` and reads until the first text or the outcome. The caller's
/// W3C `traceparent`/`tracestate` headers go to the router: the request's trace continues it.
pub async fn begin(
    state: &Shared,
    headers: &HeaderMap,
    model: &str,
    request: ChatRequest,
    tracker: &mut Tracker,
) -> Begun {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let origin = crate::router::Origin {
        traceparent: text("traceparent"),
        tracestate: text("tracestate"),
    };
    let mut stream = state.router.chat_from(model, request, origin);
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
                sse::run_ahead(&mut stream).await;
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
    headers.insert(ATTEMPTS_HEADER, attempts_value(attempts));
    headers.insert(REQUEST_ID_HEADER, HeaderValue::from(request_id));
    if cached {
        headers.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
    }
}

/// `x-llmux-attempts`: a few attempts (nearly every request) without formatting and
/// allocating a value.
fn attempts_value(attempts: usize) -> HeaderValue {
    const FEW: [&str; 4] = ["0", "1", "2", "3"];
    match FEW.get(attempts) {
        Some(n) => HeaderValue::from_static(n),
        None => HeaderValue::from(attempts),
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
