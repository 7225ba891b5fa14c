//! One request's walk through its group and fallbacks. Runs inside its `ChatStream`, polled by
//! the reader; when the caller drops the stream this future is dropped mid-way and the guards
//! here record the cancellation.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::Inner;
use super::event::*;
use super::retry::{MAX_RETRY_AFTER_WAIT, delay_before_retry, retries_for};
use super::select::{Candidate, lowest_order_tier, pick, prefer_whole_takers};
use super::stream::Outbox;
use crate::config::{Deployment, MidStreamFailover};
use crate::metrics::Usd;
use crate::provider::{self, ChatRequest, ErrorClass, ProviderError, Usage};

/// What the next deployment is told when it continues a broken answer.
pub const CONTINUE_PROMPT: &str = "Your previous answer was cut off. Continue it exactly where it stopped, without repeating anything.";

/// Tokens of a typical request, to compare prices across deployments.
const PRICE_PROBE_TOKENS: u64 = 1000;

pub(super) async fn run(
    inner: Arc<Inner>,
    id: u64,
    requested: String,
    request: ChatRequest,
    out: Arc<Outbox>,
) {
    let mut req = RequestRun {
        inner,
        id,
        out,
        started: Instant::now(),
        attempt_no: 0,
        attempts: Vec::new(),
        answer: String::new(),
        reasoning: String::new(),
        usage: Usage::default(),
        cost: Some(Usd::ZERO),
        ttft: None,
        continued: false,
        done_group: String::new(),
        requested_group: String::new(),
        finished: false,
        cache_key: None,
    };
    let result = req.route(&requested, request).await;
    req.store_in_cache(&result).await;
    req.finish(result).await;
}

/// How a group's turn ended when it did not answer.
#[derive(Debug)]
pub(super) struct GroupFailure {
    class: Option<ErrorClass>,
    message: String,
    retry_in: Option<Duration>,
    /// Nothing of this group could be called (cooling or at limits).
    unavailable: bool,
    /// Stop here: no fallbacks (`mid_stream_failover: off`).
    stop: bool,
    /// Every deployment of the group is over a budget (`budget`).
    budget: bool,
}

pub(super) enum AttemptEnd {
    Success(Box<ChatOutcome>),
    Failed {
        error: ProviderError,
        after_tokens: bool,
    },
}

pub(super) struct RequestRun {
    pub(super) inner: Arc<Inner>,
    pub(super) id: u64,
    /// Where the caller's events go (its `ChatStream` reads them).
    pub(super) out: Arc<Outbox>,
    pub(super) started: Instant,
    pub(super) attempt_no: u32,
    pub(super) attempts: Vec<AttemptRecord>,
    /// The answer so far, across attempts (kept on `continue`, cleared on `restart`).
    pub(super) answer: String,
    pub(super) reasoning: String,
    /// Usage and cost over every attempt that produced tokens; cost is `None` once any of
    /// them had no known price.
    pub(super) usage: Usage,
    pub(super) cost: Option<Usd>,
    pub(super) ttft: Option<Duration>,
    pub(super) continued: bool,
    pub(super) done_group: String,
    /// The group the request resolved to, before any fallback.
    pub(super) requested_group: String,
    pub(super) finished: bool,
    /// Where the answer goes in the response cache (set when the cache is on).
    pub(super) cache_key: Option<crate::cache::CacheKey>,
}

impl Drop for RequestRun {
    fn drop(&mut self) {
        if !self.finished {
            let ev = self.event(&self.done_group.clone(), None, RouteEventKind::Cancelled);
            self.publish(&Arc::new(ev));
        }
    }
}

impl RequestRun {
    pub(super) fn event(
        &self,
        group: &str,
        deployment: Option<&str>,
        kind: RouteEventKind,
    ) -> RouteEvent {
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        RouteEvent {
            request_id: self.id,
            group: group.to_string(),
            deployment: deployment.map(str::to_string),
            attempt: if deployment.is_some() {
                self.attempt_no
            } else {
                0
            },
            at_unix_ms,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            kind,
        }
    }

    /// To subscribers and the request log (not to the caller).
    pub(super) fn publish(&self, ev: &Arc<RouteEvent>) {
        self.inner.sink.publish(Arc::clone(ev));
    }

    pub(super) async fn emit(&self, group: &str, deployment: Option<&str>, kind: RouteEventKind) {
        let ev = Arc::new(self.event(group, deployment, kind));
        self.publish(&ev);
        self.out.send(ChatEvent::Route(ev)).await;
    }

    async fn route(
        &mut self,
        requested: &str,
        request: ChatRequest,
    ) -> Result<ChatOutcome, RouteError> {
        let inner = self.inner.clone();
        let config = &inner.config;
        let Some(first) = config.resolve_group(requested).map(str::to_string) else {
            let known = config.groups.join(", ");
            return Err(self.error(
                RouteErrorKind::UnknownModel,
                format!("no model group or alias named '{requested}'; known groups: {known}"),
                None,
            ));
        };
        self.done_group = first.clone();
        self.requested_group = first.clone();
        let prompt_tokens = provider::estimate_prompt_tokens(&request.messages);
        self.emit(
            &first,
            None,
            RouteEventKind::Request {
                requested: requested.to_string(),
                prompt_tokens,
                tags: request.tags.clone(),
            },
        )
        .await;
        if let Some(outcome) = self.answer_from_cache(&first, &request).await {
            return Ok(outcome);
        }
        self.check_app_budget().await?;

        let settings = &config.router;
        let mut queue: VecDeque<String> = VecDeque::from([first]);
        let mut visited: HashSet<String> = HashSet::new();
        let mut failures: Vec<(String, GroupFailure)> = Vec::new();
        let mut hops = 0usize;
        while let Some(group) = queue.pop_front() {
            if !visited.insert(group.clone()) {
                continue;
            }
            if let Some((from, failure)) = failures.last() {
                if hops >= settings.max_fallbacks {
                    break;
                }
                hops += 1;
                let reason = fallback_reason(failure);
                let from = from.clone();
                self.emit(
                    &group,
                    None,
                    RouteEventKind::Fallback {
                        from,
                        to: group.clone(),
                        reason,
                    },
                )
                .await;
            }
            self.done_group = group.clone();
            match self.try_group(&group, &request, prompt_tokens).await {
                Ok(outcome) => return Ok(outcome),
                Err(failure) => {
                    if failure.stop {
                        failures.push((group, failure));
                        break;
                    }
                    let next = fallbacks_for(settings, &group, &failure);
                    for g in next.into_iter().rev() {
                        if !visited.contains(&g) {
                            queue.push_front(g);
                        }
                    }
                    failures.push((group, failure));
                }
            }
        }
        Err(self.final_error(&failures))
    }

    fn error(
        &self,
        kind: RouteErrorKind,
        message: String,
        retry_in: Option<Duration>,
    ) -> RouteError {
        RouteError {
            request_id: self.id,
            kind,
            message,
            attempts: self.attempts.clone(),
            retry_in,
            partial_text: self.answer.clone(),
        }
    }

    fn final_error(&self, failures: &[(String, GroupFailure)]) -> RouteError {
        let all_unavailable = !failures.is_empty() && failures.iter().all(|(_, f)| f.unavailable);
        let retry_in = failures.iter().filter_map(|(_, f)| f.retry_in).min();
        let last_class = failures.last().and_then(|(_, f)| f.class);
        let all_budget = !failures.is_empty() && failures.iter().all(|(_, f)| f.budget);
        let kind = if all_budget {
            RouteErrorKind::OverBudget
        } else if all_unavailable {
            RouteErrorKind::Unavailable
        } else if matches!(last_class, Some(ErrorClass::Auth | ErrorClass::BadRequest)) {
            RouteErrorKind::Rejected
        } else {
            RouteErrorKind::AllFailed
        };
        let mut parts: Vec<String> = self
            .attempts
            .iter()
            .filter(|a| a.outcome == AttemptOutcome::Failed)
            .map(|a| {
                let status = a.status.map(|s| format!(" {s}")).unwrap_or_default();
                let class = a.class.map(|c| c.name()).unwrap_or("error");
                format!(
                    "{} ({}): {class}{status}: {}",
                    a.deployment,
                    a.group,
                    a.error.as_deref().unwrap_or("")
                )
            })
            .collect();
        parts.extend(
            failures
                .iter()
                .filter(|(_, f)| f.unavailable)
                .map(|(g, f)| format!("{g}: {}", f.message)),
        );
        let message = format!("every route failed — {}", parts.join("; "));
        self.error(kind, message, retry_in)
    }

    /// Tries one group: picks, calls, retries within it. Returns the outcome or why the
    /// group gave up.
    async fn try_group(
        &mut self,
        group: &str,
        request: &ChatRequest,
        prompt_tokens: u64,
    ) -> Result<ChatOutcome, GroupFailure> {
        let inner = self.inner.clone();
        let settings = &inner.config.router;
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
                class: Some(ErrorClass::ContextWindow),
                message: reason,
                retry_in: None,
                unavailable: true,
                stop: false,
                budget: false,
            });
        }
        let fits = prefer_whole_takers(fits, request);
        let mut retries_used = 0u32;
        let mut last_failed: Option<String> = None;
        loop {
            let now = Instant::now();
            let mut soonest: Option<Duration> = None;
            let mut blocked_why: Vec<String> = Vec::new();
            let mut candidates: Vec<Candidate> = Vec::with_capacity(fits.len());
            let mut over_budget = 0usize;
            for d in &fits {
                // Over its own or its provider's budget: skipped like a cooling deployment.
                if let Some(over) = inner.budgets.over_deployment(d) {
                    soonest = Some(soonest.map_or(over.resets_in, |s| s.min(over.resets_in)));
                    blocked_why.push(over.describe());
                    over_budget += 1;
                    continue;
                }
                match inner.health.blocked(&d.id, d.rpm, d.tpm, now) {
                    Some(b) => {
                        soonest = Some(soonest.map_or(b.free_in(), |s| s.min(b.free_in())));
                        blocked_why.push(format!("{} {}", d.id, b.describe()));
                    }
                    None => candidates.push(self.candidate(d, now)),
                }
            }
            if candidates.len() > 1
                && let Some(failed) = &last_failed
                && candidates.iter().any(|c| &c.deployment.id != failed)
            {
                candidates.retain(|c| &c.deployment.id != failed);
            }
            if candidates.is_empty() {
                let reason = format!(
                    "every deployment is unavailable ({})",
                    blocked_why.join(", ")
                );
                let retry_in_ms = soonest.map(|d| d.as_millis() as u64);
                self.emit(
                    group,
                    None,
                    RouteEventKind::Unavailable {
                        reason: reason.clone(),
                        retry_in_ms,
                    },
                )
                .await;
                return Err(GroupFailure {
                    class: None,
                    message: reason,
                    retry_in: soonest,
                    unavailable: true,
                    stop: false,
                    budget: over_budget == fits.len(),
                });
            }
            let tier = lowest_order_tier(&candidates);
            let chosen = {
                let mut rng = match inner.rng.lock() {
                    Ok(r) => r,
                    Err(p) => p.into_inner(),
                };
                tier[pick(settings.strategy, &tier, &mut *rng)].deployment
            };
            // With shared state the slot is claimed fleet-wide; when another instance took the
            // last one the deployment now shows as blocked: pick again.
            if inner
                .health
                .admit(&chosen.id, chosen.rpm, chosen.tpm, Instant::now())
                .await
                .is_some()
            {
                continue;
            }
            match self.attempt(group, chosen, members.len(), request).await {
                AttemptEnd::Success(outcome) => return Ok(*outcome),
                AttemptEnd::Failed {
                    error,
                    after_tokens,
                } => {
                    if after_tokens {
                        let mode = inner.config.app.mid_stream_failover;
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
                            MidStreamFailover::Off => {
                                return Err(GroupFailure {
                                    class: Some(error.class),
                                    message: error.message.clone(),
                                    retry_in: None,
                                    unavailable: false,
                                    stop: true,
                                    budget: false,
                                });
                            }
                            MidStreamFailover::Restart => {
                                self.answer.clear();
                                self.reasoning.clear();
                                self.out.send(ChatEvent::Restart).await;
                            }
                            MidStreamFailover::Continue => self.continued = true,
                        }
                    }
                    if retries_used >= retries_for(settings, error.class) {
                        return Err(GroupFailure {
                            class: Some(error.class),
                            message: error.message.clone(),
                            retry_in: None,
                            unavailable: false,
                            stop: false,
                            budget: false,
                        });
                    }
                    retries_used += 1;
                    let now = Instant::now();
                    let others = fits.iter().any(|d| {
                        d.id != chosen.id
                            && inner.health.blocked(&d.id, d.rpm, d.tpm, now).is_none()
                    });
                    let chosen_blocked = inner
                        .health
                        .blocked(&chosen.id, chosen.rpm, chosen.tpm, now);
                    if !others && let Some(blocked) = chosen_blocked {
                        // No deployment is left to retry on (the failure just cooled the
                        // only one): go to the fallbacks now, as LiteLLM does, instead of
                        // announcing a retry that cannot happen.
                        return Err(GroupFailure {
                            class: Some(error.class),
                            message: format!("{} ({})", error.message, blocked.describe()),
                            retry_in: Some(blocked.free_in()),
                            unavailable: false,
                            stop: false,
                            budget: false,
                        });
                    }
                    let same = !others;
                    let delay = {
                        let mut rng = match inner.rng.lock() {
                            Ok(r) => r,
                            Err(p) => p.into_inner(),
                        };
                        delay_before_retry(settings, retries_used, &error, same, &mut *rng)
                    };
                    if delay > MAX_RETRY_AFTER_WAIT {
                        return Err(GroupFailure {
                            class: Some(error.class),
                            message: format!(
                                "{} (asked to wait {:.0}s)",
                                error.message,
                                delay.as_secs_f64()
                            ),
                            retry_in: Some(delay),
                            unavailable: false,
                            stop: false,
                            budget: false,
                        });
                    }
                    self.emit(
                        group,
                        Some(&chosen.id),
                        RouteEventKind::Retry {
                            delay_ms: delay.as_millis() as u64,
                        },
                    )
                    .await;
                    tokio::time::sleep(delay).await;
                    last_failed = Some(chosen.id.clone());
                }
            }
        }
    }

    fn candidate<'a>(&self, d: &'a Deployment, now: Instant) -> Candidate<'a> {
        let (rpm_used, tpm_used) = self.inner.health.usage(&d.id, now);
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
            ttft_avg: self.inner.metrics.ttft_average(&d.id),
            unit_price: self
                .inner
                .prices
                .get(&d.id)
                .copied()
                .flatten()
                .map(|p| p.cost(&probe).pico()),
        }
    }

    async fn finish(&mut self, result: Result<ChatOutcome, RouteError>) {
        if let Err(e) = &result {
            let group = self.done_group.clone();
            self.emit(
                &group,
                None,
                RouteEventKind::Failed {
                    message: e.message.clone(),
                },
            )
            .await;
        }
        self.finished = true;
        self.out.send(ChatEvent::finished(result)).await;
    }
}

fn fallback_reason(f: &GroupFailure) -> FallbackReason {
    match f.class {
        Some(ErrorClass::ContextWindow) => FallbackReason::ContextWindow,
        Some(ErrorClass::ContentPolicy) => FallbackReason::ContentPolicy,
        _ if f.budget => FallbackReason::Budget,
        _ if f.unavailable => FallbackReason::Unavailable,
        _ => FallbackReason::Failed,
    }
}

/// The groups to try after `group` failed: the typed list for context-window and
/// content-policy failures when one is set, else `fallbacks`, else `default_fallbacks`.
fn fallbacks_for(
    settings: &crate::config::RouterSettings,
    group: &str,
    f: &GroupFailure,
) -> Vec<String> {
    let typed = match f.class {
        Some(ErrorClass::ContextWindow) => settings.context_window_fallbacks.get(group),
        Some(ErrorClass::ContentPolicy) => settings.content_policy_fallbacks.get(group),
        _ => None,
    };
    typed
        .filter(|l| !l.is_empty())
        .or_else(|| settings.fallbacks.get(group))
        .cloned()
        .unwrap_or_else(|| settings.default_fallbacks.clone())
}
