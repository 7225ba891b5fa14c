//! Retry decisions, in one place: which failures are retried (LiteLLM's
//! `should_retry_this_error`), how many times (`num_retries`, `retry_policy`,
//! `model_group_retry_policy`), and how long to wait (exponential backoff with jitter,
//! Retry-After honoured on every attempt, not just the first — LiteLLM #20722).
//!
//! [`decide`] is the whole rule: a tier's turn (`group`) calls it after every failed attempt,
//! with the failure, what of the tier is left and the rules, and does what it says (sleep and
//! pick again, or end the tier, the group or the request with a [`GiveUp`] reason). It does
//! no IO; its only input from outside is the randomness of the backoff's jitter.

use std::time::Duration;

use rand::RngExt;

use super::policy;
use crate::config::{MidStreamFailover, RouterSettings};
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

/// A failed attempt, as [`decide`] reads it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'d, 'e> {
    /// The deployment that failed.
    pub deployment: &'d str,
    pub error: &'e ProviderError,
    /// The answer had shown tokens when it broke.
    pub after_tokens: bool,
    /// The answer outgrew `llmux.max_answer_bytes` (the attempt was cut there).
    pub over_cap: bool,
}

/// What of the tier can be called, read just after the failure (it may have cooled the
/// failed deployment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// Another deployment of the tier can be called now.
    Others,
    /// Only the failed deployment can be called.
    OnlyFailed,
    /// Nothing: the failed deployment, the only one left, is kept from calls for `what` until
    /// `free_in` (`None`: not by waiting).
    Nothing {
        what: String,
        free_in: Option<Duration>,
    },
}

/// The rules a failure is judged by.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub settings: &'a RouterSettings,
    /// The group whose tier failed (its `model_group_retry_policy`).
    pub group: &'a str,
    /// Deployments in the whole group (a 401 or 403 is retried only where there are others).
    pub group_size: usize,
    /// `llmux.mid_stream_failover`.
    pub mid_stream: MidStreamFailover,
}

/// A tier's retries so far; [`decide`] keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierRetries {
    /// Fixed at the tier's first failure.
    pub budget: Option<Budget>,
    /// Retries granted so far.
    pub used: u32,
}

/// What to do after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Wait `delay`, then pick again within the tier, leaving `exclude` (the deployment that
    /// failed) out of the pick while another one can be called.
    Retry { delay: Duration, exclude: &'a str },
    /// Stop retrying for `reason`; `scope` says what else ends with the tier.
    GiveUp { reason: GiveUp, scope: Scope },
}

/// Why a tier stopped retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUp {
    /// The stream broke after tokens were shown and `mid_stream_failover` is `off`.
    MidStreamOff,
    /// The answer outgrew `llmux.max_answer_bytes`: another deployment would only grow it
    /// again.
    OverCap,
    /// No retry fixes this failure here (its status, or a 401/403 in a lone deployment's group)
    /// and no retry policy names its type.
    NotRetryable,
    /// The tier's `retries` (fixed at its first failure) are spent.
    RetriesSpent { retries: u32 },
    /// Nothing of the tier is left to retry on: the failure kept its last callable deployment
    /// from calls for `what`, until `free_in`.
    NothingLeft {
        what: String,
        free_in: Option<Duration>,
    },
    /// The retry would have to wait `wait`, over [`MAX_RETRY_AFTER_WAIT`].
    WaitTooLong { wait: Duration },
}

/// How far a give-up reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This tier: the group's next `order` tier takes over.
    Tier,
    /// The whole group, on to its fallbacks: context-window and content-policy failures have
    /// fallback lists of their own, and LiteLLM does not walk the tiers for them.
    Group,
    /// The whole request: no other tier, no fallback (`mid_stream_failover: off`, an answer
    /// over `llmux.max_answer_bytes`).
    Request,
}

/// Retry or give up after `failure` in a tier whose retries so far are `tier` (updated) and
/// of which `left` can be called now. A retry goes to another deployment at once, or back to
/// the same one after [`delay_before_retry`]; `rng` is drawn from only for that backoff.
pub fn decide<'d>(
    failure: Failure<'d, '_>,
    tier: &mut TierRetries,
    left: &Left,
    policy: &Policy<'_>,
    rng: &mut impl rand::Rng,
) -> Decision<'d> {
    let error = failure.error;
    let scope = match error.class {
        ErrorClass::ContextWindow | ErrorClass::ContentPolicy => Scope::Group,
        _ => Scope::Tier,
    };
    let give_up = |reason| Decision::GiveUp { reason, scope };
    if failure.over_cap {
        return Decision::GiveUp {
            reason: GiveUp::OverCap,
            scope: Scope::Request,
        };
    }
    if failure.after_tokens && policy.mid_stream == MidStreamFailover::Off {
        return Decision::GiveUp {
            reason: GiveUp::MidStreamOff,
            scope: Scope::Request,
        };
    }
    let budget = *tier
        .budget
        .get_or_insert_with(|| budget(policy.settings, policy.group, error));
    if !budget.from_policy && !retried(error, policy.group_size) {
        return give_up(GiveUp::NotRetryable);
    }
    if tier.used >= budget.retries {
        return give_up(GiveUp::RetriesSpent {
            retries: budget.retries,
        });
    }
    tier.used += 1;
    let same_deployment = match left {
        Left::Others => false,
        Left::OnlyFailed => true,
        // The failure cooled the only one: move on now, as LiteLLM does, instead of
        // announcing a retry that cannot happen.
        Left::Nothing { what, free_in } => {
            return give_up(GiveUp::NothingLeft {
                what: what.clone(),
                free_in: *free_in,
            });
        }
    };
    let delay = delay_before_retry(policy.settings, tier.used, error, same_deployment, rng);
    if delay > MAX_RETRY_AFTER_WAIT {
        return give_up(GiveUp::WaitTooLong { wait: delay });
    }
    Decision::Retry {
        delay,
        exclude: failure.deployment,
    }
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

#[cfg(test)]
mod decide_tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const FAILED: &str = "a";

    fn http(status: u16) -> ProviderError {
        ProviderError::from_http(status, "x", None)
    }

    /// `error` from the deployment [`FAILED`], before any token.
    fn on(error: &ProviderError) -> Failure<'static, '_> {
        Failure {
            deployment: FAILED,
            error,
            after_tokens: false,
            over_cap: false,
        }
    }

    fn policy(settings: &RouterSettings, group_size: usize) -> Policy<'_> {
        Policy {
            settings,
            group: "g",
            group_size,
            mid_stream: MidStreamFailover::Continue,
        }
    }

    /// The decision after `error`, the tier's first failure, with `left` of the tier callable.
    fn first<'e>(error: &'e ProviderError, left: &Left, policy: &Policy<'_>) -> Decision<'e> {
        let mut tier = TierRetries::default();
        decide(
            on(error),
            &mut tier,
            left,
            policy,
            &mut SmallRng::seed_from_u64(7),
        )
    }

    fn gave_up(reason: GiveUp, scope: Scope) -> Decision<'static> {
        Decision::GiveUp { reason, scope }
    }

    #[test]
    fn a_retryable_failure_goes_to_another_deployment_at_once() {
        let s = RouterSettings::default();
        let e = http(503).with_retry_after(Some(Duration::from_secs(30)));
        assert_eq!(
            first(&e, &Left::Others, &policy(&s, 2)),
            Decision::Retry {
                delay: Duration::ZERO,
                exclude: FAILED
            },
            "the one that asked for patience is not the one asked next"
        );
    }

    #[test]
    fn a_retry_on_the_same_deployment_waits_its_backoff_or_its_hint() {
        let s = RouterSettings::default();
        let e = http(503);
        let Decision::Retry { delay, exclude } = first(&e, &Left::OnlyFailed, &policy(&s, 1))
        else {
            panic!("a lone deployment's 503 is retried");
        };
        assert_eq!(exclude, FAILED);
        assert!(delay <= INITIAL_RETRY_DELAY && delay >= INITIAL_RETRY_DELAY.mul_f64(1.0 - JITTER));
        let hinted = http(429).with_retry_after(Some(Duration::from_secs(60)));
        assert_eq!(
            first(&hinted, &Left::OnlyFailed, &policy(&s, 1)),
            Decision::Retry {
                delay: Duration::from_secs(60),
                exclude: FAILED
            },
            "a hint of exactly the limit is waited out"
        );
    }

    #[test]
    fn gives_up_the_request_when_a_stream_breaks_after_tokens_with_failover_off() {
        let s = RouterSettings::default();
        let e = http(503);
        let mut p = policy(&s, 2);
        let broke = Failure {
            after_tokens: true,
            ..on(&e)
        };
        let mut rng = SmallRng::seed_from_u64(7);
        p.mid_stream = MidStreamFailover::Off;
        let mut tier = TierRetries::default();
        assert_eq!(
            decide(broke, &mut tier, &Left::Others, &p, &mut rng),
            gave_up(GiveUp::MidStreamOff, Scope::Request)
        );
        for mode in [MidStreamFailover::Continue, MidStreamFailover::Restart] {
            p.mid_stream = mode;
            let mut tier = TierRetries::default();
            assert!(matches!(
                decide(broke, &mut tier, &Left::Others, &p, &mut rng),
                Decision::Retry { .. }
            ));
        }
    }

    #[test]
    fn gives_up_the_request_when_the_answer_outgrew_its_cap() {
        let s = RouterSettings::default();
        let e = ProviderError::protocol("the answer outgrew the 10-byte limit");
        let cut = Failure {
            after_tokens: true,
            over_cap: true,
            ..on(&e)
        };
        let mut tier = TierRetries::default();
        assert_eq!(
            decide(
                cut,
                &mut tier,
                &Left::Others,
                &policy(&s, 2),
                &mut SmallRng::seed_from_u64(7)
            ),
            gave_up(GiveUp::OverCap, Scope::Request)
        );
    }

    #[test]
    fn gives_up_the_tier_on_a_status_no_retry_fixes() {
        let s = RouterSettings::default();
        for status in [400, 404, 422] {
            assert_eq!(
                first(&http(status), &Left::Others, &policy(&s, 2)),
                gave_up(GiveUp::NotRetryable, Scope::Tier),
                "{status}"
            );
        }
        for status in [401, 403] {
            assert_eq!(
                first(&http(status), &Left::OnlyFailed, &policy(&s, 1)),
                gave_up(GiveUp::NotRetryable, Scope::Tier),
                "a lone deployment's {status}"
            );
            assert!(matches!(
                first(&http(status), &Left::Others, &policy(&s, 2)),
                Decision::Retry { .. }
            ));
        }
    }

    #[test]
    fn gives_up_the_group_on_context_window_and_content_policy_failures() {
        let s = RouterSettings::default();
        let too_long = ProviderError::new(ErrorClass::ContextWindow, "maximum context length");
        let refused = ProviderError::new(ErrorClass::ContentPolicy, "content_policy_violation");
        for e in [&too_long, &refused] {
            assert_eq!(
                first(e, &Left::Others, &policy(&s, 2)),
                gave_up(GiveUp::NotRetryable, Scope::Group),
                "{e:?}"
            );
        }
    }

    #[test]
    fn gives_up_the_tier_when_its_retries_are_spent() {
        let mut s = RouterSettings {
            num_retries: 2,
            ..RouterSettings::default()
        };
        let p = policy(&s, 1);
        let e = http(503);
        let failure = on(&e);
        let mut tier = TierRetries::default();
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..2 {
            assert!(matches!(
                decide(failure, &mut tier, &Left::OnlyFailed, &p, &mut rng),
                Decision::Retry { .. }
            ));
        }
        assert_eq!(
            decide(failure, &mut tier, &Left::OnlyFailed, &p, &mut rng),
            gave_up(GiveUp::RetriesSpent { retries: 2 }, Scope::Tier)
        );
        s.num_retries = 0;
        assert_eq!(
            first(&e, &Left::Others, &policy(&s, 2)),
            gave_up(GiveUp::RetriesSpent { retries: 0 }, Scope::Tier)
        );
    }

    #[test]
    fn the_budget_is_fixed_at_the_tiers_first_failure() {
        let mut s = RouterSettings {
            num_retries: 1,
            ..RouterSettings::default()
        };
        s.retry_policy.rate_limit = Some(3);
        let p = policy(&s, 2);
        let (e503, e429) = (http(503), http(429));
        let mut tier = TierRetries::default();
        let mut rng = SmallRng::seed_from_u64(7);
        assert!(matches!(
            decide(on(&e503), &mut tier, &Left::Others, &p, &mut rng),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide(on(&e429), &mut tier, &Left::Others, &p, &mut rng),
            gave_up(GiveUp::RetriesSpent { retries: 1 }, Scope::Tier),
            "a later 429 does not bring the rate-limit policy's 3 retries"
        );
    }

    #[test]
    fn a_retry_policy_retries_what_no_retry_would_fix() {
        let mut s = RouterSettings::default();
        s.retry_policy.bad_request = Some(1);
        let p = policy(&s, 2);
        let e = http(400);
        let mut tier = TierRetries::default();
        let mut rng = SmallRng::seed_from_u64(7);
        let failure = on(&e);
        assert!(matches!(
            decide(failure, &mut tier, &Left::Others, &p, &mut rng),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide(failure, &mut tier, &Left::Others, &p, &mut rng),
            gave_up(GiveUp::RetriesSpent { retries: 1 }, Scope::Tier)
        );
    }

    #[test]
    fn gives_up_the_tier_when_the_failure_blocked_the_last_deployment() {
        let s = RouterSettings::default();
        let left = Left::Nothing {
            what: "cooling down, 5s left".into(),
            free_in: Some(Duration::from_secs(5)),
        };
        assert_eq!(
            first(&http(429), &left, &policy(&s, 1)),
            gave_up(
                GiveUp::NothingLeft {
                    what: "cooling down, 5s left".into(),
                    free_in: Some(Duration::from_secs(5)),
                },
                Scope::Tier
            )
        );
    }

    #[test]
    fn gives_up_the_tier_rather_than_wait_over_a_minute_for_the_same_deployment() {
        let s = RouterSettings::default();
        let e = http(429).with_retry_after(Some(Duration::from_secs(120)));
        assert_eq!(
            first(&e, &Left::OnlyFailed, &policy(&s, 1)),
            gave_up(
                GiveUp::WaitTooLong {
                    wait: Duration::from_secs(120)
                },
                Scope::Tier
            )
        );
        assert!(
            matches!(
                first(&e, &Left::Others, &policy(&s, 2)),
                Decision::Retry { .. }
            ),
            "another deployment is asked at once"
        );
    }
}
