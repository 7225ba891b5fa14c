//! Per-deployment health the router decides on: cooldowns, successes and failures within the
//! last minute, the requests and tokens used against `rpm` / `tpm` (sliding one-minute
//! windows, [`MinuteWindow`]s).
//!
//! Whether a failure cools its deployment down is LiteLLM's rule (`cooldown`); this book
//! keeps the counts it needs and applies the verdict. A new cooldown extends a running one,
//! never shortens it (LiteLLM #40130 is the other way round).
//!
//! With `router_settings.redis_*` the book also has a [`SharedState`]: this instance's own
//! records stay here and stay authoritative for it, and what the fleet did is merged in
//! (cooldowns set by other instances, fleet-wide rpm/tpm counts). Without Redis, or while it is
//! away, the book decides on local state alone.

// Keys are deployment ids from the config: foldhash, not SipHash (looked up per request).
use foldhash::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::cooldown::{CooldownRules, Minute, Verdict};
use super::minute_window::MinuteWindow;
use super::shared::SharedState;
use crate::metrics::Usd;
use crate::provider::ProviderError;

/// The window for the failure rate, `allowed_fails`, `rpm` and `tpm`.
pub const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct DeploymentHealth {
    cooldown_until: Option<Instant>,
    cooldown_reason: String,
    successes: MinuteWindow,
    /// Every failure, for the failure rate.
    failures: MinuteWindow,
    /// The failures counted against `allowed_fails` since the last cooldown.
    counted: MinuteWindow,
    requests: MinuteWindow,
    tokens: MinuteWindow,
}

impl DeploymentHealth {
    fn expire(&mut self, now: Instant) {
        self.successes.expire(now);
        self.failures.expire(now);
        self.counted.expire(now);
        self.requests.expire(now);
        self.tokens.expire(now);
        if self.cooldown_until.is_some_and(|u| u <= now) {
            self.cooldown_until = None;
        }
    }
}

/// What a deployment looks like right now, for the picker and the metrics pane.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthView {
    pub cooling_for: Option<Duration>,
    pub cooldown_reason: Option<String>,
    pub failures_last_minute: u32,
    pub requests_last_minute: u32,
    pub tokens_last_minute: u64,
}

/// Why a deployment cannot be picked now.
#[derive(Debug, Clone, PartialEq)]
pub enum Blocked {
    Cooling {
        left: Duration,
    },
    RpmLimit {
        used: u32,
        limit: u32,
        free_in: Duration,
    },
    TpmLimit {
        used: u64,
        limit: u64,
        free_in: Duration,
    },
}

impl Blocked {
    /// How long until this deployment can be picked again.
    pub fn free_in(&self) -> Duration {
        match self {
            Blocked::Cooling { left } => *left,
            Blocked::RpmLimit { free_in, .. } | Blocked::TpmLimit { free_in, .. } => *free_in,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Blocked::Cooling { left } => {
                format!("cooling down, {:.0}s left", left.as_secs_f64().ceil())
            }
            Blocked::RpmLimit { used, limit, .. } => format!("at its rpm limit, {used}/{limit}"),
            Blocked::TpmLimit { used, limit, .. } => format!("at its tpm limit, {used}/{limit}"),
        }
    }
}

/// The cooldown decision for one failure.
#[derive(Debug, Clone, PartialEq)]
pub struct CooldownDecision {
    pub duration: Duration,
    pub reason: String,
}

/// Health of every deployment, shared by all requests of one router.
#[derive(Debug, Default)]
pub struct HealthBook {
    local: LocalBook,
    /// The fleet's state through Redis, when configured.
    shared: Option<SharedState>,
}

/// This instance's own records, also held by the shared-state worker, which applies the
/// cooldowns other instances report and reads the running ones to resync Redis.
#[derive(Debug, Default, Clone)]
pub(crate) struct LocalBook {
    inner: Arc<Mutex<HashMap<String, DeploymentHealth>>>,
}

impl LocalBook {
    fn with<R>(&self, id: &str, f: impl FnOnce(&mut DeploymentHealth) -> R) -> R {
        let mut map = match self.inner.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(map.entry(id.to_string()).or_default())
    }

    /// Applies a cooldown another instance reported; like a local one it only ever extends.
    /// Returns how long the deployment now cools, when this changed anything.
    pub(crate) fn extend_cooldown(
        &self,
        id: &str,
        left: Duration,
        reason: &str,
        now: Instant,
    ) -> Option<Duration> {
        self.with(id, |h| {
            h.expire(now);
            let until = now + left;
            if left.is_zero() || h.cooldown_until.is_some_and(|u| u >= until) {
                return None;
            }
            h.cooldown_until = Some(until);
            h.cooldown_reason = reason.to_string();
            Some(left)
        })
    }

    /// Every deployment's requests and tokens of the last minute, as (age, count) parts, for
    /// writing them back into a shared store that lost them.
    pub(crate) fn recent_usage(&self, now: Instant) -> Vec<RecentUsage> {
        let mut map = match self.inner.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.iter_mut()
            .filter_map(|(id, h)| {
                h.expire(now);
                let usage = RecentUsage {
                    id: id.clone(),
                    requests: h.requests.parts(now).collect(),
                    tokens: h.tokens.parts(now).collect(),
                };
                (!usage.requests.is_empty() || !usage.tokens.is_empty()).then_some(usage)
            })
            .collect()
    }

    /// Every running cooldown: deployment, time left, reason.
    pub(crate) fn running_cooldowns(&self, now: Instant) -> Vec<(String, Duration, String)> {
        let mut map = match self.inner.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.iter_mut()
            .filter_map(|(id, h)| {
                h.expire(now);
                let until = h.cooldown_until?;
                Some((id.clone(), until - now, h.cooldown_reason.clone()))
            })
            .collect()
    }
}

/// One deployment's use of the last minute ([`LocalBook::recent_usage`]): (time since, count).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecentUsage {
    pub(crate) id: String,
    pub(crate) requests: Vec<(Duration, u64)>,
    pub(crate) tokens: Vec<(Duration, u64)>,
}

impl HealthBook {
    fn with<R>(&self, id: &str, f: impl FnOnce(&mut DeploymentHealth) -> R) -> R {
        self.local.with(id, f)
    }

    /// This instance's records, for the shared-state worker.
    pub(crate) fn local(&self) -> LocalBook {
        self.local.clone()
    }

    /// Merges the fleet's state from now on.
    pub(crate) fn set_shared(&mut self, shared: SharedState) {
        self.shared = Some(shared);
    }

    pub(crate) fn shared(&self) -> Option<&SharedState> {
        self.shared.as_ref()
    }

    /// Claims a request slot fleet-wide for the picked deployment, after [`Self::blocked`] let
    /// it through locally. `Some` when another instance took the last slot: pick again. Never
    /// waits longer than one bounded Redis call; without Redis it answers at once.
    pub(crate) async fn admit(
        &self,
        id: &str,
        rpm: Option<u32>,
        tpm: Option<u64>,
        now: Instant,
    ) -> Option<Blocked> {
        match &self.shared {
            Some(shared) => shared.admit(id, rpm, tpm, now).await,
            None => None,
        }
    }

    /// Adds a successful attempt's cost to the fleet's ledger (the local one is the metrics').
    pub(crate) fn record_cost(&self, id: &str, cost: Usd) {
        if let Some(shared) = &self.shared {
            shared.record_cost(id, cost);
        }
    }

    /// Whether the deployment can take a request now, given its limits.
    pub fn blocked(
        &self,
        id: &str,
        rpm: Option<u32>,
        tpm: Option<u64>,
        now: Instant,
    ) -> Option<Blocked> {
        let local = self.with(id, |h| {
            h.expire(now);
            if let Some(until) = h.cooldown_until {
                return Some(Blocked::Cooling { left: until - now });
            }
            let free_in = |window: &MinuteWindow| {
                window
                    .frees_at()
                    .map(|t| t.saturating_duration_since(now))
                    .unwrap_or_default()
            };
            if let Some(limit) = rpm {
                let used = requests_of(&h.requests);
                if used >= limit {
                    return Some(Blocked::RpmLimit {
                        used,
                        limit,
                        free_in: free_in(&h.requests),
                    });
                }
            }
            if let Some(limit) = tpm
                && h.tokens.total() >= limit
            {
                return Some(Blocked::TpmLimit {
                    used: h.tokens.total(),
                    limit,
                    free_in: free_in(&h.tokens),
                });
            }
            None
        });
        local.or_else(|| self.shared.as_ref()?.blocked(id, rpm, tpm, now))
    }

    /// Counts a request against `rpm` (at the moment it is sent).
    pub fn record_request(&self, id: &str, now: Instant) {
        self.with(id, |h| {
            h.expire(now);
            h.requests.add(now, 1);
        })
    }

    /// Records how an attempt ended: the tokens it used against `tpm` (`None`: it produced
    /// nothing), and whether it answered (a success for the failure rate).
    pub fn record_end(&self, id: &str, tokens: Option<u64>, succeeded: bool, now: Instant) {
        self.with(id, |h| {
            h.expire(now);
            if let Some(tokens) = tokens {
                h.tokens.add(now, tokens);
            }
            if succeeded {
                h.successes.add(now, 1);
            }
        });
        if let (Some(shared), Some(tokens)) = (&self.shared, tokens) {
            shared.record_tokens(id, tokens);
        }
    }

    /// Used tokens and requests in the current minute, for usage-based routing: this
    /// instance's, or the fleet's last seen counts when those are higher.
    pub fn usage(&self, id: &str, now: Instant) -> (u32, u64) {
        let (requests, tokens) = self.with(id, |h| {
            h.expire(now);
            (requests_of(&h.requests), h.tokens.total())
        });
        match &self.shared {
            Some(shared) => {
                let (fleet_requests, fleet_tokens) = shared.usage(id, now);
                (requests.max(fleet_requests), tokens.max(fleet_tokens))
            }
            None => (requests, tokens),
        }
    }

    /// Records a failure and cools the deployment down if LiteLLM's rules say so (`cooldown`).
    pub fn record_failure(
        &self,
        id: &str,
        error: &ProviderError,
        rules: CooldownRules,
        now: Instant,
    ) -> Option<CooldownDecision> {
        let duration = rules.duration(error);
        let decision = self.with(id, |h| {
            h.expire(now);
            h.failures.add(now, 1);
            let duration = duration?;
            let minute = Minute {
                successes: h.successes.total(),
                failures: h.failures.total(),
            };
            let reason = match rules.verdict(error, minute) {
                Verdict::Keep => return None,
                Verdict::Cool(reason) => reason,
                Verdict::Count { limit } => {
                    h.counted.add(now, 1);
                    let n = h.counted.total();
                    if n <= u64::from(limit) {
                        return None;
                    }
                    format!(
                        "{n} failure{} in a minute (allowed_fails {limit})",
                        if n == 1 { "" } else { "s" }
                    )
                }
            };
            let until = now + duration;
            // A new cooldown extends a running one, never shortens it (LiteLLM #40130).
            let until = h.cooldown_until.map_or(until, |u| u.max(until));
            h.cooldown_until = Some(until);
            h.cooldown_reason = reason.clone();
            // The count starts over once the cooldown ends, as LiteLLM's (whose counter
            // lives as long as a cooldown) does.
            h.counted = MinuteWindow::default();
            Some(CooldownDecision {
                duration: until - now,
                reason,
            })
        });
        if let (Some(shared), Some(d)) = (&self.shared, &decision) {
            shared.record_cooldown(id, d.duration, &d.reason);
        }
        decision
    }

    /// The deployment's state now (request and token counts as in [`Self::usage`]).
    pub fn view(&self, id: &str, now: Instant) -> HealthView {
        let mut view = self.with(id, |h| {
            h.expire(now);
            HealthView {
                cooling_for: h.cooldown_until.map(|u| u - now),
                cooldown_reason: h.cooldown_until.map(|_| h.cooldown_reason.clone()),
                failures_last_minute: u32::try_from(h.failures.total()).unwrap_or(u32::MAX),
                requests_last_minute: requests_of(&h.requests),
                tokens_last_minute: h.tokens.total(),
            }
        });
        if let Some(shared) = &self.shared {
            let (requests, tokens) = shared.usage(id, now);
            view.requests_last_minute = view.requests_last_minute.max(requests);
            view.tokens_last_minute = view.tokens_last_minute.max(tokens);
        }
        view
    }
}

/// A request count as the limits and views take it.
fn requests_of(window: &MinuteWindow) -> u32 {
    u32::try_from(window.total()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouterSettings;

    fn rules(settings: &RouterSettings, group_size: usize) -> CooldownRules<'_> {
        CooldownRules {
            settings,
            deployment_cooldown: None,
            group_size,
            has_fallbacks: false,
        }
    }

    fn http(status: u16) -> ProviderError {
        ProviderError::from_http(status, "x", None)
    }

    #[test]
    fn a_pair_cools_at_its_fifth_straight_failure_and_successes_hold_it_off() {
        let s = RouterSettings::default();
        let book = HealthBook::default();
        let t = Instant::now();
        for _ in 0..4 {
            assert!(
                book.record_failure("a", &http(503), rules(&s, 2), t)
                    .is_none()
            );
        }
        let d = book
            .record_failure("a", &http(503), rules(&s, 2), t)
            .expect("5 of 5 failed");
        assert_eq!(d.duration, s.cooldown_time);
        assert!(matches!(
            book.blocked("a", None, None, t),
            Some(Blocked::Cooling { .. })
        ));
        assert!(book.blocked("a", None, None, t + s.cooldown_time).is_none());

        for _ in 0..5 {
            book.record_end("b", None, true, t);
        }
        for _ in 0..5 {
            assert!(
                book.record_failure("b", &http(503), rules(&s, 2), t)
                    .is_none(),
                "5 of 10 is not over half"
            );
        }
        assert!(
            book.record_failure("b", &http(503), rules(&s, 2), t)
                .is_some()
        );
    }

    #[test]
    fn allowed_fails_are_exceeded_not_reached_and_start_over_after_a_cooldown() {
        let s = RouterSettings {
            allowed_fails: 2,
            allowed_fails_set: true,
            ..RouterSettings::default()
        };
        let book = HealthBook::default();
        let t = Instant::now();
        assert!(
            book.record_failure("a", &http(500), rules(&s, 2), t)
                .is_none()
        );
        assert!(
            book.record_failure("a", &http(500), rules(&s, 2), t)
                .is_none()
        );
        let d = book
            .record_failure("a", &http(500), rules(&s, 2), t)
            .expect("the third of allowed 2 cools");
        assert!(d.reason.contains("allowed_fails 2"), "{}", d.reason);
        let after = t + s.cooldown_time;
        assert!(
            book.record_failure("a", &http(500), rules(&s, 2), after)
                .is_none(),
            "counted afresh after the cooldown"
        );
        assert!(
            book.record_failure("a", &http(400), rules(&s, 2), after)
                .is_none()
                && book.view("a", after).failures_last_minute == 5,
            "a bad request counts toward the rate, never toward a cooldown"
        );
    }

    #[test]
    fn cooldowns_only_extend() {
        let s = RouterSettings::default();
        let book = HealthBook::default();
        let t = Instant::now();
        let long = http(429).with_retry_after(Some(Duration::from_secs(30)));
        book.record_failure("a", &long, rules(&s, 2), t);
        let short = book.record_failure("a", &http(401), rules(&s, 2), t + Duration::from_secs(1));
        assert_eq!(short.map(|d| d.duration), Some(Duration::from_secs(29)));
    }

    #[test]
    fn rpm_window_slides() {
        let book = HealthBook::default();
        let t = Instant::now();
        book.record_request("a", t);
        book.record_request("a", t + Duration::from_secs(10));
        assert!(matches!(
            book.blocked("a", Some(2), None, t + Duration::from_secs(20)),
            Some(Blocked::RpmLimit { used: 2, .. })
        ));
        assert!(
            book.blocked("a", Some(2), None, t + Duration::from_secs(61))
                .is_none()
        );
    }
}
