//! Failures as each API shows them. A handler builds an [`ApiError`] (from a bad request, a
//! refused key, a limit, or a [`RouteError`]) and renders it for the API that was called:
//! OpenAI's `{"error": {"message", "type", "param", "code"}}` or Anthropic's
//! `{"type": "error", "error": {"type", "message"}}`, with the matching status, Retry-After
//! where waiting helps, and `x-llmux-attempts`. Route failures also list every attempt.

use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::provider::ErrorClass;
use crate::router::{AttemptOutcome, AttemptRecord, RouteError, RouteErrorKind};

// The headers are `HeaderName`s rather than strings: a string is parsed again at every insert.
/// Header: the deployment that answered.
pub const DEPLOYMENT_HEADER: HeaderName = HeaderName::from_static("x-llmux-deployment");
/// Header: how many attempts the request took.
pub const ATTEMPTS_HEADER: HeaderName = HeaderName::from_static("x-llmux-attempts");
/// Header: the router's request id (as in the request log and the event stream).
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-llmux-request-id");
/// Header: `hit` when the answer came from the response cache (no upstream call was made).
pub const CACHE_HEADER: HeaderName = HeaderName::from_static("x-llmux-cache");
/// What a request over the in-flight limit is told.
pub const OVERLOADED_MESSAGE: &str =
    "the server is at its limit of in-flight requests (--max-in-flight); retry shortly";

/// Which API's shapes to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Anthropic,
}

impl Api {
    pub fn label(self) -> &'static str {
        match self {
            Api::OpenAi => "openai",
            Api::Anthropic => "anthropic",
        }
    }
}

/// The API a path belongs to (for errors raised before a handler runs).
pub fn api_of_path(path: &str) -> Api {
    if path.starts_with("/v1/messages") {
        Api::Anthropic
    } else {
        Api::OpenAi
    }
}

/// What went wrong, independent of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    Unauthorized,
    /// No such model group (or other named thing).
    NotFound,
    /// No such route: the path (or method) is not one llmux serves.
    NoRoute,
    TooLarge,
    /// The body was not sent as JSON (`Content-Type`).
    UnsupportedMediaType,
    /// The body did not arrive in time.
    Timeout,
    /// The prompt is longer than every deployment's context window.
    ContextLength,
    RateLimited,
    /// A budget is used up (`llmux.budget`, or every route's provider/deployment budget).
    BudgetExceeded,
    Overloaded,
    Upstream,
}

impl Kind {
    fn status(self) -> StatusCode {
        match self {
            Kind::BadRequest | Kind::ContextLength => StatusCode::BAD_REQUEST,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::NotFound | Kind::NoRoute => StatusCode::NOT_FOUND,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::Timeout => StatusCode::REQUEST_TIMEOUT,
            Kind::RateLimited | Kind::BudgetExceeded => StatusCode::TOO_MANY_REQUESTS,
            Kind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Upstream => StatusCode::BAD_GATEWAY,
        }
    }

    fn openai_type(self) -> &'static str {
        match self {
            Kind::BadRequest
            | Kind::ContextLength
            | Kind::NotFound
            | Kind::NoRoute
            | Kind::TooLarge
            | Kind::UnsupportedMediaType
            | Kind::Timeout => "invalid_request_error",
            Kind::Unauthorized => "authentication_error",
            Kind::RateLimited => "rate_limit_error",
            // LiteLLM's name for it; the 429 still reads as a rate limit to OpenAI's SDKs.
            Kind::BudgetExceeded => "budget_exceeded",
            Kind::Overloaded | Kind::Upstream => "server_error",
        }
    }

    fn anthropic_type(self) -> &'static str {
        match self {
            Kind::BadRequest | Kind::ContextLength | Kind::UnsupportedMediaType | Kind::Timeout => {
                "invalid_request_error"
            }
            Kind::Unauthorized => "authentication_error",
            Kind::NotFound | Kind::NoRoute => "not_found_error",
            Kind::TooLarge => "request_too_large",
            Kind::RateLimited | Kind::BudgetExceeded => "rate_limit_error",
            Kind::Overloaded => "overloaded_error",
            Kind::Upstream => "api_error",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Kind::BadRequest => "bad_request",
            // What OpenAI's SDKs and agents look for to trim a conversation.
            Kind::ContextLength => "context_length_exceeded",
            Kind::Unauthorized => "invalid_api_key",
            Kind::NotFound => "model_not_found",
            Kind::NoRoute => "no_such_route",
            Kind::TooLarge => "request_too_large",
            Kind::UnsupportedMediaType => "unsupported_media_type",
            Kind::Timeout => "request_timeout",
            Kind::RateLimited => "rate_limited",
            Kind::BudgetExceeded => "budget_exceeded",
            Kind::Overloaded => "overloaded",
            Kind::Upstream => "all_routes_failed",
        }
    }
}

/// An error body in an API's shape. Members in alphabetical order, as the `serde_json` maps
/// it was once written from printed them.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ErrorBody<'a> {
    /// `{"error": {"attempts", "code", "message", "param", "type"}}`
    OpenAi { error: OpenAiError<'a> },
    /// `{"error": {"attempts", "message", "type"}, "type": "error"}`
    Anthropic {
        error: AnthropicError<'a>,
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

#[derive(Serialize)]
pub struct OpenAiError<'a> {
    #[serde(skip_serializing_if = "Attempts::is_empty")]
    attempts: Attempts<'a>,
    code: &'static str,
    message: &'a str,
    /// Always `null`: llmux does not say which parameter was wrong.
    param: Option<&'static str>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
pub struct AnthropicError<'a> {
    #[serde(skip_serializing_if = "Attempts::is_empty")]
    attempts: Attempts<'a>,
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A route failure's attempts, each as [`AttemptJson`].
struct Attempts<'a>(&'a [AttemptRecord]);

impl Attempts<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Attempts<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(AttemptJson::from))
    }
}

/// An [`AttemptRecord`], its members in alphabetical order.
#[derive(Serialize)]
struct AttemptJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<ErrorClass>,
    deployment: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    group: &'a str,
    ms: u64,
    outcome: AttemptOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
}

impl<'a> From<&'a AttemptRecord> for AttemptJson<'a> {
    fn from(a: &'a AttemptRecord) -> AttemptJson<'a> {
        AttemptJson {
            class: a.class,
            deployment: &a.deployment,
            error: a.error.as_deref(),
            group: &a.group,
            ms: a.ms,
            outcome: a.outcome,
            status: a.status,
        }
    }
}

/// One failure, ready to render.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: Kind,
    pub message: String,
    /// Seconds for Retry-After.
    pub retry_after: Option<u64>,
    pub attempts: Vec<AttemptRecord>,
    pub request_id: Option<u64>,
}

impl ApiError {
    pub fn new(kind: Kind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            retry_after: None,
            attempts: Vec::new(),
            request_id: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(Kind::BadRequest, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(Kind::Unauthorized, message)
    }

    pub fn overloaded(message: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(Kind::Overloaded, message)
        }
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The JSON error body in `api`'s shape.
    pub fn body(&self, api: Api) -> ErrorBody<'_> {
        let attempts = Attempts(&self.attempts);
        match api {
            Api::OpenAi => ErrorBody::OpenAi {
                error: OpenAiError {
                    attempts,
                    code: self.kind.code(),
                    message: &self.message,
                    param: None,
                    kind: self.kind.openai_type(),
                },
            },
            Api::Anthropic => ErrorBody::Anthropic {
                error: AnthropicError {
                    attempts,
                    message: &self.message,
                    kind: self.kind.anthropic_type(),
                },
                kind: "error",
            },
        }
    }

    /// The full response: status, body, Retry-After and the llmux headers.
    pub fn into_response_for(self, api: Api) -> Response {
        let mut response = (self.status(), axum::Json(self.body(api))).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        headers.insert(ATTEMPTS_HEADER, HeaderValue::from(self.attempts.len()));
        if let Some(id) = self.request_id {
            headers.insert(REQUEST_ID_HEADER, HeaderValue::from(id));
        }
        response
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> ApiError {
        let last_class = e.attempts.iter().rev().find_map(|a| a.class);
        let (kind, retry_after) = match e.kind {
            RouteErrorKind::UnknownModel => (Kind::NotFound, None),
            // Unavailable with nothing to wait for: no deployment is cooling or at a limit,
            // the prompt fits none of them. Retrying cannot help, so it is not a 429.
            RouteErrorKind::Unavailable if e.retry_in.is_none() => (Kind::ContextLength, None),
            RouteErrorKind::Unavailable => (Kind::RateLimited, Some(retry_after_secs(e.retry_in))),
            RouteErrorKind::OverBudget => {
                (Kind::BudgetExceeded, Some(retry_after_secs(e.retry_in)))
            }
            // The caller's request was refused upstream; a failure of our own credentials
            // upstream is not the caller's 401.
            RouteErrorKind::Rejected => match last_class {
                Some(ErrorClass::Auth) => (Kind::Upstream, None),
                _ => (Kind::BadRequest, None),
            },
            RouteErrorKind::AllFailed => match last_class {
                Some(ErrorClass::ContextWindow) => (Kind::ContextLength, None),
                _ => (
                    Kind::Upstream,
                    e.retry_in.map(|d| retry_after_secs(Some(d))),
                ),
            },
        };
        ApiError {
            kind,
            message: e.message,
            retry_after,
            attempts: e.attempts,
            request_id: Some(e.request_id),
        }
    }
}

/// Whole seconds to wait, rounded up, at least one.
fn retry_after_secs(d: Option<std::time::Duration>) -> u64 {
    d.map_or(1, |d| d.as_secs_f64().ceil() as u64).max(1)
}

/// The routes llmux serves, for the message of a request to any other.
const ROUTES: &str = "POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings, \
     POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, GET /v1/models/{id}, \
     GET /health, GET /metrics";

/// The longest piece of an unknown path quoted back.
const MAX_QUOTED_PATH: usize = 200;

/// The fallback route: 404 "no such route" in the shape of the API the path looks like.
pub async fn not_found(method: Method, uri: Uri) -> Response {
    let path: String = uri.path().chars().take(MAX_QUOTED_PATH).collect();
    ApiError::new(
        Kind::NoRoute,
        format!("no such route: {method} {path} (llmux serves {ROUTES})"),
    )
    .into_response_for(api_of_path(uri.path()))
}

/// The label `llmux_requests_total` uses for a route error.
pub fn outcome_label(e: &RouteError) -> &'static str {
    match e.kind {
        RouteErrorKind::UnknownModel => "unknown_model",
        RouteErrorKind::Unavailable => "unavailable",
        RouteErrorKind::AllFailed => "failed",
        RouteErrorKind::Rejected => "rejected",
        RouteErrorKind::OverBudget => "over_budget",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn body(e: &ApiError, api: Api) -> serde_json::Value {
        serde_json::to_value(e.body(api)).unwrap()
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Some(Duration::from_millis(1200))), 2);
        assert_eq!(retry_after_secs(Some(Duration::ZERO)), 1);
        assert_eq!(retry_after_secs(None), 1);
    }

    #[test]
    fn unavailable_with_nothing_to_wait_for_is_a_400_not_a_429() {
        let route = |retry_in| RouteError {
            request_id: 1,
            kind: RouteErrorKind::Unavailable,
            message: "the prompt exceeds max_input_tokens of every deployment".into(),
            attempts: Vec::new(),
            retry_in,
            partial_text: String::new(),
        };
        let fits_nowhere = ApiError::from(route(None));
        assert_eq!(fits_nowhere.status(), StatusCode::BAD_REQUEST);
        assert_eq!(fits_nowhere.retry_after, None);
        assert_eq!(
            body(&fits_nowhere, Api::OpenAi)["error"]["code"],
            "context_length_exceeded"
        );
        let cooling = ApiError::from(route(Some(Duration::from_millis(1500))));
        assert_eq!(cooling.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(cooling.retry_after, Some(2));
    }

    #[test]
    fn shapes_differ_by_api() {
        let e = ApiError::new(Kind::NotFound, "no such model");
        assert_eq!(
            body(&e, Api::OpenAi)["error"]["type"],
            "invalid_request_error"
        );
        assert_eq!(body(&e, Api::Anthropic)["type"], "error");
        assert_eq!(body(&e, Api::Anthropic)["error"]["type"], "not_found_error");
    }
}
