//! Retry decisions, in one place: which failures are retried (LiteLLM's
//! `should_retry_this_error`), how many times (`num_retries`, `retry_policy`,
//! `model_group_retry_policy`), and how long to wait (exponential backoff with jitter,
//! Retry-After honoured on every attempt, not just the first — LiteLLM #20722).

use std::time::Duration;

use rand::RngExt;

use super::policy;
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

/// How many retries one turn of a group (or of one of its `order` tiers) has, fixed at its
/// first failure as LiteLLM's `async_function_with_retries` fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub retries: u32,
    /// The group's retry policy named the failure's type: it is retried that many times
    /// whatever [`retried`] says.
    pub from_policy: bool,
}

/// The budget after `error`, the turn's first failure in `group`: its retry policy's entry
/// for the error's type (`model_group_retry_policy`, else `retry_policy`), else `num_retries`.
pub fn budget(settings: &RouterSettings, group: &str, error: &ProviderError) -> Budget {
    match policy::policy_retries(settings.retry_policy_of(group), error) {
        Some(retries) => Budget {
            retries,
            from_policy: true,
        },
        None => Budget {
            retries: settings.num_retries,
            from_policy: false,
        },
    }
}

/// Whether `error` may be retried within its group of `group_size` deployments (LiteLLM's
/// `should_retry_this_error`, less its test for a healthy deployment left, which the caller
/// makes): not a status no retry fixes (400, 404, 422, context window, content policy, …),
/// except a 401 or 403 where the group has other deployments to try.
pub fn retried(error: &ProviderError, group_size: usize) -> bool {
    let status = policy::status(error);
    match error.class {
        ErrorClass::NotFound | ErrorClass::ContextWindow | ErrorClass::ContentPolicy => false,
        ErrorClass::Auth => group_size > 1,
        _ if matches!(status, 401 | 403) => group_size > 1,
        _ => policy::retryable_status(status),
    }
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
    fn policies_override_num_retries_for_the_types_they_name() {
        let mut s = RouterSettings::default();
        let e503 = ProviderError::from_http(503, "x", None);
        let e401 = ProviderError::from_http(401, "x", None);
        assert_eq!(
            budget(&s, "g", &e503),
            Budget {
                retries: 2,
                from_policy: false
            }
        );
        s.retry_policy.authentication = Some(1);
        s.model_group_retry_policy.insert(
            "g".into(),
            crate::config::RetryPolicy {
                service_unavailable: Some(5),
                ..Default::default()
            },
        );
        assert_eq!(budget(&s, "g", &e503).retries, 5);
        assert!(
            !budget(&s, "g", &e401).from_policy,
            "a group's own policy replaces retry_policy"
        );
        assert_eq!(budget(&s, "h", &e401).retries, 1);
    }

    #[test]
    fn auth_is_retried_only_where_the_group_has_others() {
        let e = |s| ProviderError::from_http(s, "x", None);
        assert!(!retried(&e(401), 1) && retried(&e(401), 2) && retried(&e(403), 2));
        assert!(!retried(&e(400), 2) && !retried(&e(404), 2) && !retried(&e(422), 2));
        assert!(retried(&e(503), 1) && retried(&e(429), 1) && retried(&e(409), 1));
        assert!(retried(&ProviderError::network("refused"), 1));
    }
}
