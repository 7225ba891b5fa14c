//! When a failure cools a deployment down, and for how long: LiteLLM's rules
//! (`router_utils/cooldown_handlers.py`, read at 1.108.14 and 1.110.2), as pure functions of
//! the failure, the settings and the deployment's record this minute. `health` keeps the
//! records and applies the verdict.
//!
//! - No cooldown at all with `disable_cooldowns`, for a cooldown time of zero, for a failure
//!   that never reached an HTTP answer (`APIConnectionError`), or for a 4xx other than 401,
//!   402, 404, 408 and 429 (`_is_cooldown_required`): the caller's bad request is not the
//!   deployment's fault.
//! - With neither `allowed_fails` nor `allowed_fails_policy` written, the failure rate decides
//!   (`_should_cooldown_deployment`): a 429 in a group of several; every request failing with
//!   1000 or more this minute; over half failing with 5 or more this minute in a group of
//!   several; or a status no retry can fix (401, 402, 404), even for a group's only deployment.
//! - Once either is written, failures are counted instead, and the deployment cools when they
//!   exceed `allowed_fails` (or its type's entry in `allowed_fails_policy`) within the
//!   minute. A group's only deployment with no `fallbacks` of its own is exempt unless the
//!   policy names the failure's type. (1.108 took `allowed_fails: 3`, its default, as not
//!   written; 1.110 and llmux take what is written.)
//! - The cooldown lasts the deployment's `cooldown_time`, else what the upstream's Retry-After
//!   asked, else the router's `cooldown_time`.

use std::time::Duration;

use super::policy::{self, retryable_status};
use crate::config::RouterSettings;
use crate::provider::{ErrorClass, ProviderError};

/// LiteLLM's `DEFAULT_FAILURE_THRESHOLD_PERCENT`: the failure rate over which a deployment of
/// a group of several cools.
pub const FAILURE_THRESHOLD: f64 = 0.5;
/// LiteLLM's `DEFAULT_FAILURE_THRESHOLD_MINIMUM_REQUESTS`: requests in the minute before the
/// rate counts.
pub const FAILURE_THRESHOLD_MINIMUM_REQUESTS: u64 = 5;
/// LiteLLM's `SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD`: requests in the minute, all failed,
/// that cool even a group's only deployment.
pub const ALL_FAILED_MINIMUM_REQUESTS: u64 = 1000;

/// What the rules need to know about the failing deployment and its group.
#[derive(Debug, Clone, Copy)]
pub struct CooldownRules<'a> {
    pub settings: &'a RouterSettings,
    /// The deployment's own `cooldown_time`.
    pub deployment_cooldown: Option<Duration>,
    /// Deployments in the group, counting this one.
    pub group_size: usize,
    /// The group has a `fallbacks` entry of its own.
    pub has_fallbacks: bool,
}

/// The deployment's requests this minute, the failure being judged counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    pub successes: u64,
    pub failures: u64,
}

/// What one failure does to its deployment.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing.
    Keep,
    /// Cool it down now, for this reason.
    Cool(String),
    /// Count it against `allowed_fails`; cool down once the count exceeds `limit`.
    Count { limit: u32 },
}

impl CooldownRules<'_> {
    /// How long a cooldown for `error` would last; `None` when no cooldown can follow it.
    pub fn duration(&self, error: &ProviderError) -> Option<Duration> {
        if self.settings.disable_cooldowns || error.class == ErrorClass::Network {
            return None;
        }
        let status = policy::status(error);
        if (400..500).contains(&status) && !matches!(status, 401 | 402 | 404 | 408 | 429) {
            return None;
        }
        let duration = self
            .deployment_cooldown
            .or(error.retry_after)
            .unwrap_or(self.settings.cooldown_time);
        (!duration.is_zero()).then_some(duration)
    }

    /// The verdict on `error` (one [`Self::duration`] allows), given the minute so far.
    pub fn verdict(&self, error: &ProviderError, minute: Minute) -> Verdict {
        let status = policy::status(error);
        let single = self.group_size <= 1;
        let from_policy = self
            .settings
            .allowed_fails_policy
            .as_ref()
            .and_then(|p| policy::allowed_fails(p, error));
        if single && status == 402 && from_policy.is_none() {
            return Verdict::Keep;
        }
        if self.settings.counts_allowed_fails() {
            if single && !self.has_fallbacks && from_policy.is_none() {
                return Verdict::Keep;
            }
            return Verdict::Count {
                limit: from_policy.unwrap_or(self.settings.allowed_fails),
            };
        }
        let total = minute.successes + minute.failures;
        let rate = if total == 0 {
            0.0
        } else {
            minute.failures as f64 / total as f64
        };
        if status == 429 && !single {
            Verdict::Cool("rate limited (429)".to_string())
        } else if minute.successes == 0 && total >= ALL_FAILED_MINIMUM_REQUESTS {
            Verdict::Cool(format!("all {total} requests failed in the last minute"))
        } else if rate > FAILURE_THRESHOLD && total >= FAILURE_THRESHOLD_MINIMUM_REQUESTS && !single
        {
            Verdict::Cool(format!(
                "{} of {total} requests failed in the last minute",
                minute.failures
            ))
        } else if !retryable_status(status) {
            Verdict::Cool(match status {
                401 => "authentication failed (401)".to_string(),
                402 => "payment required (402)".to_string(),
                404 => "model or endpoint not found (404)".to_string(),
                s => format!("HTTP {s}"),
            })
        } else {
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AllowedFailsPolicy;

    fn http(status: u16) -> ProviderError {
        ProviderError::from_http(status, "x", None)
    }

    fn rules(settings: &RouterSettings, group_size: usize) -> CooldownRules<'_> {
        CooldownRules {
            settings,
            deployment_cooldown: None,
            group_size,
            has_fallbacks: false,
        }
    }

    fn failed(failures: u64) -> Minute {
        Minute {
            successes: 0,
            failures,
        }
    }

    #[test]
    fn bad_requests_and_broken_connections_never_cool() {
        let s = RouterSettings::default();
        for e in [
            http(400),
            http(403),
            http(422),
            ProviderError::network("refused"),
        ] {
            assert_eq!(rules(&s, 2).duration(&e), None, "{e}");
        }
        assert_eq!(
            rules(&s, 2).duration(&http(503)),
            Some(s.cooldown_time),
            "the router's cooldown_time by default"
        );
        let asked = http(429).with_retry_after(Some(Duration::from_secs(7)));
        assert_eq!(rules(&s, 2).duration(&asked), Some(Duration::from_secs(7)));
        let off = RouterSettings {
            disable_cooldowns: true,
            ..RouterSettings::default()
        };
        assert_eq!(rules(&off, 2).duration(&http(429)), None);
    }

    #[test]
    fn the_failure_rate_rule_spares_a_lone_deployment_but_not_its_401() {
        let s = RouterSettings::default();
        assert_eq!(rules(&s, 1).verdict(&http(503), failed(999)), Verdict::Keep);
        assert_eq!(rules(&s, 1).verdict(&http(429), failed(3)), Verdict::Keep);
        assert!(matches!(
            rules(&s, 1).verdict(&http(503), failed(1000)),
            Verdict::Cool(_)
        ));
        assert!(matches!(
            rules(&s, 1).verdict(&http(401), failed(1)),
            Verdict::Cool(_)
        ));
        assert!(matches!(
            rules(&s, 2).verdict(&http(429), failed(1)),
            Verdict::Cool(_)
        ));
        assert_eq!(rules(&s, 2).verdict(&http(503), failed(4)), Verdict::Keep);
        assert!(matches!(
            rules(&s, 2).verdict(&http(503), failed(5)),
            Verdict::Cool(_)
        ));
        let half = Minute {
            successes: 3,
            failures: 3,
        };
        assert_eq!(rules(&s, 2).verdict(&http(503), half), Verdict::Keep);
    }

    #[test]
    fn written_allowed_fails_count_except_for_a_lone_deployment_without_fallbacks() {
        let s = RouterSettings {
            allowed_fails: 1,
            allowed_fails_set: true,
            ..RouterSettings::default()
        };
        assert_eq!(
            rules(&s, 2).verdict(&http(429), failed(1)),
            Verdict::Count { limit: 1 }
        );
        assert_eq!(rules(&s, 1).verdict(&http(503), failed(1)), Verdict::Keep);
        let with_fallbacks = CooldownRules {
            has_fallbacks: true,
            ..rules(&s, 1)
        };
        assert_eq!(
            with_fallbacks.verdict(&http(503), failed(1)),
            Verdict::Count { limit: 1 }
        );
        let policy = RouterSettings {
            allowed_fails_policy: Some(AllowedFailsPolicy {
                internal_server: Some(4),
                ..AllowedFailsPolicy::default()
            }),
            ..RouterSettings::default()
        };
        assert_eq!(
            rules(&policy, 1).verdict(&http(500), failed(1)),
            Verdict::Count { limit: 4 },
            "a policy naming the type counts even for a lone deployment"
        );
        assert_eq!(
            rules(&policy, 2).verdict(&http(503), failed(1)),
            Verdict::Count { limit: 3 },
            "types the policy does not name fall back to allowed_fails"
        );
    }
}
