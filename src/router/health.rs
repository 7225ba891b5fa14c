//! Per-deployment health the router decides on: cooldowns, failures within the last minute,
//! and the requests and tokens used against `rpm` / `tpm` (sliding one-minute windows,
//! [`MinuteWindow`]s).
//!
//! Cooldown rules, LiteLLM's with the fixes its users asked for:
//! - a 429 cools a deployment down at once when its group has others to route to; a group's
//!   only deployment is not cooled by a 429 (the router waits out Retry-After instead);
//! - 401, 404 and timeouts cool down at once, even a group's only deployment;
//! - other server-side failures (5xx, network, protocol) cool down once `allowed_fails` of
//!   them fall within a minute; bad requests never do (retrying will not fix the caller);
//! - the duration is the deployment's `cooldown_time`, else the upstream's Retry-After, else
//!   the router's `cooldown_time`; a new cooldown extends a running one, never shortens it.
//!
//! With `router_settings.redis_*` the book also has a [`SharedState`]: this instance's own
//! records stay here and stay authoritative for it, and what the fleet did is merged in
//! (cooldowns set by other instances, fleet-wide rpm/tpm counts). Without Redis, or while it is
//! away, the book decides on local state alone.

use std::collections::VecDeque;

// Keys are deployment ids from the config: foldhash, not SipHash (looked up per request).
use foldhash::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::minute_window::MinuteWindow;
use super::shared::SharedState;
use crate::metrics::Usd;
use crate::provider::{ErrorClass, ProviderError};

/// The window for `allowed_fails`, `rpm` and `tpm`.
pub const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct DeploymentHealth {
    cooldown_until: Option<Instant>,
    cooldown_reason: String,
    failures: VecDeque<Instant>,
    requests: MinuteWindow,
    tokens: MinuteWindow,
}

impl DeploymentHealth {
    fn expire(&mut self, now: Instant) {
        let cutoff = now.checked_sub(MINUTE);
        let Some(cutoff) = cutoff else { return };
        while self.failures.front().is_some_and(|t| *t <= cutoff) {
            self.failures.pop_front();
        }
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
                format!("cooling down ({:.0}s left)", left.as_secs_f64().ceil())
            }
            Blocked::RpmLimit { used, limit, .. } => format!("at its rpm limit ({used}/{limit})"),
            Blocked::TpmLimit { used, limit, .. } => format!("at its tpm limit ({used}/{limit})"),
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

/// Settings the cooldown rules need for one deployment.
#[derive(Debug, Clone, Copy)]
pub struct CooldownRules {
    pub allowed_fails: u32,
    pub router_cooldown: Duration,
    /// The deployment's own `cooldown_time` (zero disables cooldowns for it).
    pub deployment_cooldown: Option<Duration>,
    /// Deployments in the group, counting this one.
    pub group_size: usize,
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

    /// Counts tokens against `tpm`.
    pub fn record_tokens(&self, id: &str, tokens: u64, now: Instant) {
        self.with(id, |h| {
            h.expire(now);
            h.tokens.add(now, tokens);
        });
        if let Some(shared) = &self.shared {
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

    /// Records a failure and cools the deployment down if the rules say so.
    pub fn record_failure(
        &self,
        id: &str,
        error: &ProviderError,
        rules: CooldownRules,
        now: Instant,
    ) -> Option<CooldownDecision> {
        let decision = self.with(id, |h| {
            h.expire(now);
            let counts = !matches!(
                error.class,
                ErrorClass::BadRequest | ErrorClass::ContextWindow | ErrorClass::ContentPolicy
            );
            if counts {
                h.failures.push_back(now);
            }
            let immediate = match error.class {
                ErrorClass::RateLimit => {
                    (rules.group_size > 1).then(|| "rate limited (429)".to_string())
                }
                ErrorClass::Auth => Some("authentication failed".to_string()),
                ErrorClass::NotFound => Some("model or endpoint not found (404)".to_string()),
                ErrorClass::Timeout => Some("timed out".to_string()),
                _ => None,
            };
            let reason = immediate.or_else(|| {
                (counts
                    && rules.allowed_fails > 0
                    && h.failures.len() as u32 >= rules.allowed_fails)
                    .then(|| format!("{} failures in a minute", h.failures.len()))
            })?;
            let duration = match rules.deployment_cooldown {
                Some(d) => d,
                None => error.retry_after.unwrap_or(rules.router_cooldown),
            };
            if duration.is_zero() {
                return None;
            }
            let until = now + duration;
            // A new cooldown extends a running one, never shortens it (LiteLLM #40130).
            let until = h.cooldown_until.map_or(until, |u| u.max(until));
            h.cooldown_until = Some(until);
            h.cooldown_reason = reason.clone();
            h.failures.clear();
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
                failures_last_minute: h.failures.len() as u32,
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

    fn rules(group_size: usize) -> CooldownRules {
        CooldownRules {
            allowed_fails: 3,
            router_cooldown: Duration::from_secs(5),
            deployment_cooldown: None,
            group_size,
        }
    }

    fn err(class: ErrorClass) -> ProviderError {
        ProviderError::new(class, "x")
    }

    #[test]
    fn server_errors_cool_down_after_allowed_fails() {
        let book = HealthBook::default();
        let t = Instant::now();
        assert!(
            book.record_failure("a", &err(ErrorClass::Server), rules(2), t)
                .is_none()
        );
        assert!(
            book.record_failure("a", &err(ErrorClass::Server), rules(2), t)
                .is_none()
        );
        let d = book
            .record_failure("a", &err(ErrorClass::Server), rules(2), t)
            .expect("third failure cools");
        assert_eq!(d.duration, Duration::from_secs(5));
        assert!(matches!(
            book.blocked("a", None, None, t),
            Some(Blocked::Cooling { .. })
        ));
        assert!(
            book.blocked("a", None, None, t + Duration::from_secs(5))
                .is_none()
        );
    }

    #[test]
    fn rate_limit_spares_a_groups_only_deployment() {
        let book = HealthBook::default();
        let t = Instant::now();
        let e = err(ErrorClass::RateLimit).with_retry_after(Some(Duration::from_secs(7)));
        assert!(book.record_failure("solo", &e, rules(1), t).is_none());
        let d = book
            .record_failure("pair", &e, rules(2), t)
            .expect("cools with others around");
        assert_eq!(
            d.duration,
            Duration::from_secs(7),
            "Retry-After sets the cooldown"
        );
    }

    #[test]
    fn bad_requests_never_cool_and_cooldowns_only_extend() {
        let book = HealthBook::default();
        let t = Instant::now();
        for _ in 0..10 {
            assert!(
                book.record_failure("a", &err(ErrorClass::BadRequest), rules(2), t)
                    .is_none()
            );
        }
        let long = err(ErrorClass::RateLimit).with_retry_after(Some(Duration::from_secs(30)));
        book.record_failure("a", &long, rules(2), t);
        let short = book.record_failure(
            "a",
            &err(ErrorClass::Auth),
            rules(2),
            t + Duration::from_secs(1),
        );
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
