//! Health pings (`llmux check --ping`, `serve`'s `GET /health?ping=true`): the smallest request
//! (one short user message, `max_tokens: 1`) sent straight to one deployment, as LiteLLM's
//! `/health` does, to tell whether it answers.
//!
//! A [`Deployment`] and the HTTP client enter [`ping`], which calls [`provider::open`]
//! directly and reads the first event of the answer within a deadline; a [`PingResult`] (state,
//! latency, HTTP status, scrubbed error) leaves. Pings bypass routing, retries, fallbacks, the
//! response cache, the metrics, cooldowns and the request log: checking a deployment never
//! changes how the router treats it. [`crate::router::Router::ping_all`] pings every
//! deployment at once.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use crate::config::Deployment;
use crate::provider::{self, ChatRequest, ErrorClass, HttpClient, Message, ProviderError};

/// How long a ping may take unless the caller says otherwise.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);
/// What a ping asks: short, so the answer costs next to nothing.
const PING_PROMPT: &str = "ping";
/// Output tokens a ping asks for.
const PING_MAX_TOKENS: u32 = 1;

/// What a ping found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PingState {
    /// The deployment answered.
    Reachable,
    /// 401 / 403: the key is wrong, missing or lacks access.
    AuthFailed,
    /// 404: the model or the endpoint does not exist.
    NotFound,
    /// 429: up, but out of quota or rate limit right now.
    RateLimited,
    /// No answer within the deadline.
    Timeout,
    /// Anything else: connection refused, a server error, a bad request, a broken stream, or a
    /// deployment that cannot be called at all (missing key variable).
    Error,
}

impl PingState {
    /// As `check --ping` prints it.
    pub fn label(self) -> &'static str {
        match self {
            PingState::Reachable => "reachable",
            PingState::AuthFailed => "auth failed",
            PingState::NotFound => "not found",
            PingState::RateLimited => "rate limited",
            PingState::Timeout => "timeout",
            PingState::Error => "error",
        }
    }

    fn of(class: ErrorClass) -> PingState {
        match class {
            ErrorClass::Auth => PingState::AuthFailed,
            ErrorClass::NotFound => PingState::NotFound,
            ErrorClass::RateLimit => PingState::RateLimited,
            ErrorClass::Timeout => PingState::Timeout,
            _ => PingState::Error,
        }
    }
}

/// One deployment's ping. Holds no secret: `error` is scrubbed of the deployment's key.
#[derive(Debug, Clone, PartialEq)]
pub struct PingResult {
    /// The deployment id.
    pub deployment: String,
    /// Its model group.
    pub group: String,
    /// `litellm_params.model` as configured (`openai/gpt-4o`).
    pub model: String,
    /// The base URL it was called at; empty for the provider's default.
    pub api_base: String,
    pub state: PingState,
    /// From sending the request to the answer's first event (or the failure).
    pub latency: Duration,
    /// The HTTP status of a failure, when there was one.
    pub status: Option<u16>,
    /// What went wrong; `None` when reachable.
    pub error: Option<String>,
}

impl PingResult {
    pub fn reachable(&self) -> bool {
        self.state == PingState::Reachable
    }
}

/// Sends the smallest request to `d` and reads its first event, within `timeout`.
pub async fn ping(http: &HttpClient, d: &Deployment, timeout: Duration) -> PingResult {
    let result = |state, latency, status, error| PingResult {
        deployment: d.id.clone(),
        group: d.group.clone(),
        model: d.litellm_model.clone(),
        api_base: d.api_base.clone(),
        state,
        latency,
        status,
        error,
    };
    if let Some(why) = &d.unavailable {
        return result(
            PingState::Error,
            Duration::ZERO,
            None,
            Some(format!("not called: {why}")),
        );
    }
    let mut request = ChatRequest::new(vec![Message::user(PING_PROMPT)]);
    request.max_tokens = Some(PING_MAX_TOKENS);
    request.no_cache = true;
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, answer(http, d, &request)).await;
    let latency = started.elapsed();
    match outcome {
        Ok(Ok(())) => result(PingState::Reachable, latency, None, None),
        Ok(Err(e)) => {
            let message = match &d.api_key {
                Some(key) => key.scrub(&e.message),
                None => e.message.clone(),
            };
            let error = match e.status {
                Some(s) => format!("{} (HTTP {s}): {message}", e.class),
                None => format!("{}: {message}", e.class),
            };
            result(PingState::of(e.class), latency, e.status, Some(error))
        }
        Err(_) => result(
            PingState::Timeout,
            latency,
            None,
            Some(format!(
                "no answer within {:.1}s (raise it with --timeout)",
                timeout.as_secs_f64()
            )),
        ),
    }
}

/// Pings every deployment of `deployments` at once; the results in the same order.
pub async fn ping_all(
    http: &HttpClient,
    deployments: &[Deployment],
    timeout: Duration,
) -> Vec<PingResult> {
    futures::future::join_all(deployments.iter().map(|d| ping(http, d, timeout))).await
}

/// Opens the request and reads its first event: the upstream accepted the request and began
/// a well-formed answer. The rest is not waited for (`max_tokens` is 1 on real providers, but
/// a `mock/` deployment answers at its own pace).
async fn answer(
    http: &HttpClient,
    d: &Deployment,
    request: &ChatRequest,
) -> Result<(), ProviderError> {
    let mut stream = provider::open(http, d, request).await?;
    match stream.next().await {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e),
        None => Err(ProviderError::protocol("the answer ended before any event")),
    }
}
