//! One group's turn within a request: its `order` tiers one after another, each a run of
//! picks and retries among the tier's deployments that can be called now.
//!
//! As in LiteLLM 1.108 (`async_function_with_fallbacks_common_utils`' order fallbacks), a tier
//! that fails hands over to the next one up, even with `num_retries: 0`, and each tier has
//! retries of its own; unlike LiteLLM, a deployment without `order` is the last tier rather
//! than never called. Within a tier (`retry`): a failure is retried on the tier's other
//! deployments first, and on the same one only when none other can be called; a deployment
//! cooling down, at its limits, over budget, or missing its key variable is never picked.

use std::sync::{MutexGuard, PoisonError};
use std::time::Duration;

use rand::rngs::SmallRng;

use tokio::time::Instant;

use super::budget::Over;
use super::event::*;
use super::health::Blocked;
use super::request::{AttemptEnd, FailureKind, GroupFailure, RequestRun};
use super::retry::{self, Decision, Failure, GiveUp, Left, Policy, Scope, TierRetries};
use super::select::{Candidate, pick, prefer_whole_takers};
use crate::config::{Deployment, MidStreamFailover, Strategy};
use crate::provider::{ChatRequest, ErrorClass, ProviderError, Usage};

/// Tokens of a typical request, to compare prices across deployments.
const PRICE_PROBE_TOKENS: u64 = 1000;

/// A deployment's `order` tier: lower first, a deployment without `order` last.
type Tier = (bool, Option<u32>);

fn tier_of(d: &Deployment) -> Tier {
    (d.order.is_none(), d.order)
}

/// How a tier's run ended without an answer.
enum TierEnd {
    /// None of its deployments could be called.
    Skipped,
    /// Its deployments failed; `Scope` says whether the group's next tier takes over.
    GaveUp(GroupFailure, Scope),
}

/// Why a deployment cannot be called now.
enum Why {
    Blocked(Blocked),
    OverBudget(Over),
    /// Its key (or base URL) names an environment variable that is not set.
    MissingKey(String),
}

impl RequestRun {
    /// Tries one group: its tiers in turn, picking, calling and retrying within each. Returns
    /// the outcome or why the group gave up.
    pub(super) async fn try_group(
        &mut self,
        group: &str,
        request: &ChatRequest,
        prompt_tokens: u64,
    ) -> Result<ChatOutcome, GroupFailure> {
        let inner = self.inner.clone();
        let members: Vec<&Deployment> = inner.config.group_deployments(group).collect();
        let fits: Vec<&Deployment> = members
            .iter()
            .copied()
            .filter(|d| {
                inner
                    .max_input
                    .get(&d.id)
                    .copied()
                    .flatten()
                    .is_none_or(|max| prompt_tokens <= max)
            })
            .collect();
        if fits.is_empty() {
            let reason = format!(
                "the prompt (~{prompt_tokens} tokens) exceeds max_input_tokens of every deployment"
            );
            self.emit(
                group,
                None,
                RouteEventKind::Unavailable {
                    reason: reason.clone(),
                    retry_in_ms: None,
                },
            )
            .await;
            return Err(GroupFailure {
                kind: FailureKind::Unavailable,
                class: Some(ErrorClass::ContextWindow),
                ..GroupFailure::new(reason)
            });
        }
        let fits = prefer_whole_takers(fits, request);
        let mut tiers: Vec<Tier> = fits.iter().map(|d| tier_of(d)).collect();
        tiers.sort_unstable();
        tiers.dedup();
        let mut failed: Option<GroupFailure> = None;
        for tier in tiers {
            match self
                .try_tier(group, tier, &fits, members.len(), request, failed.is_some())
                .await
            {
                Ok(outcome) => return Ok(outcome),
                // Nothing of this tier can be called now: on to the next.
                Err(TierEnd::Skipped) => {}
                Err(TierEnd::GaveUp(f, Scope::Tier)) => failed = Some(f),
                Err(TierEnd::GaveUp(f, Scope::Group | Scope::Request)) => return Err(f),
            }
        }
        match failed {
            Some(f) => Err(f),
            None => Err(self.unavailable(group, &fits, Instant::now()).await),
        }
    }

    /// One tier's run: picks among its deployments that can be called, calls, and retries
    /// while [`retry::decide`] says so (LiteLLM's `async_function_with_retries`). `Skipped`
    /// when none of them could be called at all; `handover` when a lower tier failed before it
    /// (announced as a retry).
    async fn try_tier(
        &mut self,
        group: &str,
        tier: Tier,
        fits: &[&Deployment],
        group_size: usize,
        request: &ChatRequest,
        mut handover: bool,
    ) -> Result<ChatOutcome, TierEnd> {
        let inner = self.inner.clone();
        let policy = Policy {
            settings: &inner.config.router,
            group,
            group_size,
            mid_stream: inner.config.app.mid_stream_failover,
        };
        let members: Vec<&Deployment> = fits
            .iter()
            .copied()
            .filter(|d| tier_of(d) == tier)
            .collect();
        let mut retries = TierRetries::default();
        let mut exclude: Option<&str> = None;
        loop {
            // Only ever the first pick (or one after a slot was lost to another instance): a
            // retry is announced only when a deployment is left for it.
            let Some(chosen) = self.pick_one(&members, exclude).await else {
                return Err(TierEnd::Skipped);
            };
            if handover {
                handover = false;
                self.emit(group, None, RouteEventKind::Retry { delay_ms: 0 })
                    .await;
            }
            let (error, after_tokens) = match self.attempt(group, chosen, group_size, request).await
            {
                AttemptEnd::Success(outcome) => return Ok(*outcome),
                AttemptEnd::Failed {
                    error,
                    after_tokens,
                } => (error, after_tokens),
            };
            if after_tokens && !self.over_cap {
                self.mid_stream(group, chosen).await;
            }
            let left = self.left(&members, chosen, Instant::now());
            let failure = Failure {
                deployment: &chosen.id,
                error: &error,
                after_tokens,
                over_cap: self.over_cap,
            };
            let decision = retry::decide(failure, &mut retries, &left, &policy, &mut *self.rng());
            match decision {
                Decision::Retry { delay, exclude: e } => {
                    self.emit(
                        group,
                        Some(&chosen.id),
                        RouteEventKind::Retry {
                            delay_ms: delay.as_millis() as u64,
                        },
                    )
                    .await;
                    tokio::time::sleep(delay).await;
                    exclude = Some(e);
                }
                Decision::GiveUp { reason, scope } => {
                    return Err(TierEnd::GaveUp(gave_up(&error, reason), scope));
                }
            }
        }
    }

    /// A deployment of `members` picked by strategy among those that can be called now, its
    /// call admitted against its limits; `exclude` is left out while another can be called.
    /// `None` when none can be called.
    async fn pick_one<'d>(
        &self,
        members: &[&'d Deployment],
        exclude: Option<&str>,
    ) -> Option<&'d Deployment> {
        let settings = &self.inner.config.router;
        loop {
            let now = Instant::now();
            let mut candidates: Vec<Candidate> = members
                .iter()
                .filter(|d| self.why_not(d, now).is_none())
                .map(|d| self.candidate(d, now))
                .collect();
            if candidates.len() > 1
                && let Some(failed) = exclude
            {
                candidates.retain(|c| c.deployment.id != failed);
            }
            if candidates.is_empty() {
                return None;
            }
            let chosen = candidates[pick(
                settings.strategy,
                &settings.routing_args,
                &candidates,
                &mut *self.rng(),
            )]
            .deployment;
            // With shared state the slot is claimed fleet-wide; when another instance took the
            // last one the deployment now shows as blocked: pick again.
            if self
                .inner
                .health
                .admit(&chosen.id, chosen.rpm, chosen.tpm, Instant::now())
                .await
                .is_none()
            {
                return Some(chosen);
            }
        }
    }

    /// The router's randomness (a panic elsewhere while holding it leaves it usable).
    fn rng(&self) -> MutexGuard<'_, SmallRng> {
        self.inner
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What of the tier's `members` can be called now, after `failed` failed.
    fn left(&self, members: &[&Deployment], failed: &Deployment, now: Instant) -> Left {
        if members
            .iter()
            .any(|d| d.id != failed.id && self.why_not(d, now).is_none())
        {
            return Left::Others;
        }
        match self.why_not(failed, now) {
            None => Left::OnlyFailed,
            Some(why) => {
                let (what, free_in) = describe(&why);
                Left::Nothing { what, free_in }
            }
        }
    }

    /// After a stream broke with tokens shown: announces what `mid_stream_failover` does with
    /// them, and starts the answer over for `restart` (with `off` the request stops:
    /// [`retry::decide`] says so).
    async fn mid_stream(&mut self, group: &str, chosen: &Deployment) {
        let mode = self.inner.config.app.mid_stream_failover;
        self.emit(
            group,
            Some(&chosen.id),
            RouteEventKind::MidStream {
                mode: mode.into(),
                kept_chars: self.answer.chars().count(),
            },
        )
        .await;
        match mode {
            MidStreamFailover::Off => {}
            MidStreamFailover::Restart => {
                self.answer.clear();
                self.reasoning.clear();
                self.out.send(ChatEvent::Restart).await;
            }
            MidStreamFailover::Continue => self.continued = true,
        }
    }

    /// Why `d` cannot be called now, if it cannot: over its own or its provider's budget,
    /// missing its key variable, cooling down, or at its limits.
    fn why_not(&self, d: &Deployment, now: Instant) -> Option<Why> {
        if let Some(missing) = &d.unavailable {
            return Some(Why::MissingKey(missing.clone()));
        }
        if let Some(over) = self.inner.budgets.over_deployment(d) {
            return Some(Why::OverBudget(over));
        }
        self.inner
            .health
            .blocked(&d.id, d.rpm, d.tpm, now)
            .map(Why::Blocked)
    }

    /// The failure of a group none of whose deployments can be called now, announced.
    async fn unavailable(&self, group: &str, fits: &[&Deployment], now: Instant) -> GroupFailure {
        let mut soonest: Option<Duration> = None;
        let mut why: Vec<String> = Vec::new();
        let (mut over_budget, mut missing_keys) = (0usize, 0usize);
        for d in fits {
            let Some(w) = self.why_not(d, now) else {
                continue;
            };
            match &w {
                Why::OverBudget(_) => over_budget += 1,
                Why::MissingKey(_) => missing_keys += 1,
                Why::Blocked(_) => {}
            }
            let (what, free_in) = describe(&w);
            if let Some(f) = free_in {
                soonest = Some(soonest.map_or(f, |s| s.min(f)));
            }
            why.push(match w {
                Why::Blocked(_) => format!("{} {what}", d.id),
                Why::OverBudget(_) | Why::MissingKey(_) => what,
            });
        }
        let reason = format!("every deployment is unavailable ({})", why.join(", "));
        self.emit(
            group,
            None,
            RouteEventKind::Unavailable {
                reason: reason.clone(),
                retry_in_ms: soonest.map(|d| d.as_millis() as u64),
            },
        )
        .await;
        let kind = if missing_keys == fits.len() {
            // Only missing keys: nothing will change by waiting, the config must.
            FailureKind::Misconfigured
        } else if over_budget == fits.len() {
            FailureKind::OverBudget
        } else {
            FailureKind::Unavailable
        };
        GroupFailure {
            kind,
            retry_in: soonest,
            ..GroupFailure::new(reason)
        }
    }

    fn candidate<'a>(&self, d: &'a Deployment, now: Instant) -> Candidate<'a> {
        let settings = &self.inner.config.router;
        let (rpm_used, tpm_used) = self.inner.health.usage(&d.id, now);
        let ttft = (settings.strategy == Strategy::LatencyBased)
            .then(|| {
                self.inner
                    .metrics
                    .ttft_rank(&d.id, &settings.routing_args, now.into_std())
            })
            .flatten();
        let probe = Usage {
            input: PRICE_PROBE_TOKENS,
            output: PRICE_PROBE_TOKENS,
            ..Usage::default()
        };
        Candidate {
            deployment: d,
            in_flight: self.inner.metrics.in_flight(&d.id),
            rpm_used,
            tpm_used,
            ttft_avg: ttft,
            unit_price: self
                .inner
                .prices
                .get(&d.id)
                .copied()
                .flatten()
                .map(|p| p.cost(&probe)),
        }
    }
}

/// What keeps a deployment from being called, and when that ends (`None`: not by waiting).
fn describe(why: &Why) -> (String, Option<Duration>) {
    match why {
        Why::Blocked(b) => (b.describe(), Some(b.free_in())),
        Why::OverBudget(over) => (over.describe(), Some(over.resets_in)),
        Why::MissingKey(missing) => (missing.clone(), None),
    }
}

/// The failure of a tier that gave up on `error` for `reason`.
fn gave_up(error: &ProviderError, reason: GiveUp) -> GroupFailure {
    let failed = GroupFailure::failed(error);
    match reason {
        GiveUp::MidStreamOff | GiveUp::OverCap => GroupFailure {
            kind: FailureKind::Stopped,
            ..failed
        },
        GiveUp::NotRetryable | GiveUp::RetriesSpent { .. } => failed,
        GiveUp::NothingLeft { what, free_in } => GroupFailure {
            retry_in: free_in,
            ..failed.with_message(format!("{} ({what})", error.message))
        },
        GiveUp::WaitTooLong { wait } => GroupFailure {
            retry_in: Some(wait),
            ..failed.with_message(format!(
                "{} (asked to wait {:.0}s)",
                error.message,
                wait.as_secs_f64()
            ))
        },
    }
}

impl GroupFailure {
    /// A group's turn that failed with no attempt, for `message`.
    pub(super) fn new(message: impl Into<String>) -> GroupFailure {
        GroupFailure {
            kind: FailureKind::Failed,
            class: None,
            message: message.into(),
            retry_in: None,
        }
    }

    /// A group's turn that ended on `error`.
    pub(super) fn failed(error: &ProviderError) -> GroupFailure {
        GroupFailure {
            class: Some(error.class),
            ..GroupFailure::new(error.message.clone())
        }
    }

    fn with_message(mut self, message: String) -> GroupFailure {
        self.message = message;
        self
    }
}
