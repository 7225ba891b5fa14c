//! How a failure reads in LiteLLM's terms, for the rules written in them: the exception type
//! its status maps to (what `retry_policy`, `model_group_retry_policy` and
//! `allowed_fails_policy` are keyed on) and the HTTP status LiteLLM would see (what its retry
//! and cooldown rules test). Pure functions of a [`ProviderError`].

use crate::config::{AllowedFailsPolicy, RetryPolicy};
use crate::provider::{ErrorClass, ProviderError};

/// The LiteLLM exception a failure is raised as (for an OpenAI-compatible upstream; LiteLLM's
/// `exception_type` maps each status to one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    /// 400, and the context-window errors it subclasses.
    BadRequest,
    ContentPolicy,
    /// 401.
    Authentication,
    /// 408, 504, and deadlines of ours.
    Timeout,
    /// 429.
    RateLimit,
    /// 500, and failures with no status (a refused connection, a broken stream).
    InternalServer,
    /// 502.
    BadGateway,
    /// 503.
    ServiceUnavailable,
    /// 404.
    NotFound,
    /// Any other status (403, 422, 529, …): LiteLLM's generic `APIError`.
    Other,
}

/// The exception type LiteLLM raises for `error`.
pub fn exception(error: &ProviderError) -> Exception {
    match (error.class, error.status) {
        (ErrorClass::ContentPolicy, _) => Exception::ContentPolicy,
        (ErrorClass::ContextWindow, _) | (ErrorClass::BadRequest, None) | (_, Some(400)) => {
            Exception::BadRequest
        }
        (ErrorClass::Timeout, _) | (_, Some(504)) => Exception::Timeout,
        (ErrorClass::RateLimit, _) => Exception::RateLimit,
        (ErrorClass::NotFound, _) => Exception::NotFound,
        (ErrorClass::Auth, None) | (_, Some(401)) => Exception::Authentication,
        (_, Some(502)) => Exception::BadGateway,
        (_, Some(503)) => Exception::ServiceUnavailable,
        (_, Some(500) | None) => Exception::InternalServer,
        _ => Exception::Other,
    }
}

/// The status LiteLLM's rules test: the upstream's, else the one LiteLLM gives the exception
/// it raises (a deadline of ours is its `Timeout`, 408; a broken connection or stream an
/// internal error, 500).
pub fn status(error: &ProviderError) -> u16 {
    error.status.unwrap_or(match error.class {
        ErrorClass::RateLimit => 429,
        ErrorClass::Timeout => 408,
        ErrorClass::Auth => 401,
        ErrorClass::NotFound => 404,
        ErrorClass::BadRequest | ErrorClass::ContextWindow | ErrorClass::ContentPolicy => 400,
        ErrorClass::Server | ErrorClass::Network | ErrorClass::Protocol => 500,
    })
}

/// LiteLLM's `should_retry(status)` (the OpenAI SDK's rule): 408, 409, 429 and 5xx.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// The retries `policy` grants `error`, if it names its type (LiteLLM's
/// `get_num_retries_from_retry_policy`: a 404 first, then the exception's type and the types
/// it subclasses, then `DefaultRetries`).
pub fn policy_retries(policy: &RetryPolicy, error: &ProviderError) -> Option<u32> {
    let by_type = match exception(error) {
        Exception::NotFound => policy.not_found,
        Exception::ContentPolicy => policy.content_policy.or(policy.bad_request),
        Exception::BadRequest => policy.bad_request,
        Exception::Authentication => policy.authentication,
        Exception::Timeout => policy.timeout,
        Exception::RateLimit => policy.rate_limit,
        Exception::InternalServer => policy.internal_server,
        Exception::ServiceUnavailable => policy.service_unavailable,
        Exception::BadGateway | Exception::Other => None,
    };
    by_type.or(policy.default)
}

/// The failures `policy` allows `error`'s type, if it names it (LiteLLM's
/// `get_allowed_fails_from_policy`).
pub fn allowed_fails(policy: &AllowedFailsPolicy, error: &ProviderError) -> Option<u32> {
    match exception(error) {
        Exception::Authentication => policy.authentication,
        Exception::Timeout => policy.timeout,
        Exception::RateLimit => policy.rate_limit,
        Exception::ContentPolicy => policy.content_policy.or(policy.bad_request),
        Exception::BadRequest => policy.bad_request,
        Exception::InternalServer => policy.internal_server,
        Exception::ServiceUnavailable => policy.service_unavailable,
        Exception::BadGateway => policy.bad_gateway,
        Exception::NotFound => policy.not_found,
        Exception::Other => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> ProviderError {
        ProviderError::from_http(status, "x", None)
    }

    #[test]
    fn statuses_read_as_litellms_exceptions() {
        assert_eq!(exception(&http(400)), Exception::BadRequest);
        assert_eq!(exception(&http(401)), Exception::Authentication);
        assert_eq!(exception(&http(403)), Exception::Other);
        assert_eq!(exception(&http(404)), Exception::NotFound);
        assert_eq!(exception(&http(408)), Exception::Timeout);
        assert_eq!(exception(&http(429)), Exception::RateLimit);
        assert_eq!(exception(&http(500)), Exception::InternalServer);
        assert_eq!(exception(&http(502)), Exception::BadGateway);
        assert_eq!(exception(&http(503)), Exception::ServiceUnavailable);
        assert_eq!(exception(&http(504)), Exception::Timeout);
        assert_eq!(exception(&http(529)), Exception::Other);
        assert_eq!(
            exception(&ProviderError::from_http(
                400,
                "maximum context length",
                None
            )),
            Exception::BadRequest
        );
        assert_eq!(
            exception(&ProviderError::network("refused")),
            Exception::InternalServer
        );
        assert_eq!(status(&ProviderError::timeout("slow")), 408);
        assert!(retryable_status(409) && !retryable_status(403) && retryable_status(529));
    }

    #[test]
    fn retry_policy_prefers_the_type_then_its_parent_then_the_default() {
        let policy = RetryPolicy {
            bad_request: Some(1),
            default: Some(7),
            ..RetryPolicy::default()
        };
        let refused = ProviderError::from_http(400, "content_policy_violation", None);
        assert_eq!(policy_retries(&policy, &refused), Some(1));
        assert_eq!(policy_retries(&policy, &http(503)), Some(7));
        assert_eq!(policy_retries(&RetryPolicy::default(), &http(503)), None);
    }
}
