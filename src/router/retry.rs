//! Retry decisions, in one place: which failures are retried, how many times (`num_retries`,
//! `retry_policy`), and how long to wait (exponential backoff with jitter, Retry-After
//! honoured on every attempt, not just the first — LiteLLM #20722).

use std::time::Duration;

use rand::RngExt;

use crate::config::RouterSettings;
use crate::provider::{ErrorClass, ProviderError};

/// LiteLLM's `INITIAL_RETRY_DELAY`.
pub const INITIAL_RETRY_DELAY: Duration = Duration::from_millis(500);
/// LiteLLM's `MAX_RETRY_DELAY`.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(8);
/// Up to this share of the backoff is taken off at random, so clients do not retry in step.
pub const JITTER: f64 = 0.25;
/// A Retry-After longer than this is not waited out in-request: the router falls back (or
/// fails with the time to wait) instead of hanging.
pub const MAX_RETRY_AFTER_WAIT: Duration = Duration::from_secs(60);

/// How many retries a failure of `class` gets within one group.
pub fn retries_for(settings: &RouterSettings, class: ErrorClass) -> u32 {
    let p = &settings.retry_policy;
    let from_policy = match class {
        ErrorClass::BadRequest => p.bad_request,
        ErrorClass::Auth => p.authentication,
        ErrorClass::Timeout => p.timeout,
        ErrorClass::RateLimit => p.rate_limit,
        ErrorClass::ContentPolicy => p.content_policy,
        ErrorClass::Server | ErrorClass::Network | ErrorClass::Protocol => p.internal_server,
        ErrorClass::NotFound | ErrorClass::ContextWindow => None,
    };
    match from_policy {
        Some(n) => n,
        // Without a policy, failures that a retry cannot fix go straight to fallbacks.
        None if !retryable_by_default(class) => 0,
        None => settings.num_retries,
    }
}

/// Auth and bad-request errors, missing models, oversized prompts and refused content are not
/// retried unless `retry_policy` says so.
pub fn retryable_by_default(class: ErrorClass) -> bool {
    !matches!(
        class,
        ErrorClass::Auth
            | ErrorClass::BadRequest
            | ErrorClass::NotFound
            | ErrorClass::ContextWindow
            | ErrorClass::ContentPolicy
    )
}

/// The wait before retry number `retry` (1-based) after `error`.
///
/// When the retry will go to another deployment, there is no reason to wait (the failed one
/// is the one that asked for patience). When it goes back to the same one, the wait is the
/// larger of the backoff and the upstream's Retry-After, and at least `retry_after`.
pub fn delay_before_retry(
    settings: &RouterSettings,
    retry: u32,
    error: &ProviderError,
    same_deployment: bool,
    rng: &mut impl rand::Rng,
) -> Duration {
    if !same_deployment {
        return settings.retry_after;
    }
    let exp = INITIAL_RETRY_DELAY.as_secs_f64() * 2f64.powi(retry.saturating_sub(1).min(16) as i32);
    let capped = exp.min(MAX_RETRY_DELAY.as_secs_f64());
    let backoff = Duration::from_secs_f64(capped * (1.0 - JITTER * rng.random::<f64>()));
    let asked = error.retry_after.unwrap_or_default();
    backoff.max(asked).max(settings.retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn retry_after_wins_over_backoff_on_the_same_deployment() {
        let s = RouterSettings::default();
        let mut rng = SmallRng::seed_from_u64(1);
        let e = ProviderError::new(ErrorClass::RateLimit, "slow")
            .with_retry_after(Some(Duration::from_secs(3)));
        assert_eq!(
            delay_before_retry(&s, 1, &e, true, &mut rng),
            Duration::from_secs(3)
        );
        assert_eq!(
            delay_before_retry(&s, 1, &e, false, &mut rng),
            Duration::ZERO
        );
        let plain = ProviderError::new(ErrorClass::Server, "x");
        let d = delay_before_retry(&s, 5, &plain, true, &mut rng);
        assert!(d <= MAX_RETRY_DELAY && d >= MAX_RETRY_DELAY.mul_f64(1.0 - JITTER));
    }

    #[test]
    fn policy_overrides_and_defaults() {
        let mut s = RouterSettings::default();
        assert_eq!(retries_for(&s, ErrorClass::Server), 2);
        assert_eq!(retries_for(&s, ErrorClass::Auth), 0);
        s.retry_policy.authentication = Some(1);
        s.retry_policy.rate_limit = Some(5);
        assert_eq!(retries_for(&s, ErrorClass::Auth), 1);
        assert_eq!(retries_for(&s, ErrorClass::RateLimit), 5);
    }
}
