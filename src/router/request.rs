//! One request's walk through its group and fallbacks. Runs inside its `ChatStream`, polled by
//! the reader; when the caller drops the stream this future is dropped mid-way and the guards
//! here record the cancellation.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::Inner;
use super::event::*;
use super::stream::Outbox;
use crate::config::RequestDefaults;
use crate::metrics::Usd;
use crate::provider::{self, ChatRequest, ErrorClass, ProviderError, Usage};

/// What the next deployment is told when it continues a broken answer.
pub const CONTINUE_PROMPT: &str = "Your previous answer was cut off. Continue it exactly where it stopped, without repeating anything.";

pub(super) async fn run(
    inner: Arc<Inner>,
    id: u64,
    requested: String,
    request: ChatRequest,
    origin: super::Origin,
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
        live: None,
        cache_key: None,
        over_cap: false,
    };
    let request = with_defaults(&req.inner.config.router.request_defaults, request);
    req.inner.sink.start(&super::RequestStart {
        request_id: id,
        requested: &requested,
        request: &request,
        origin: &origin,
    });
    let result = req.route(&requested, request).await;
    req.store_in_cache(&result).await;
    req.finish(result).await;
}

/// How a group's turn ended when it did not answer.
#[derive(Debug)]
pub(super) struct GroupFailure {
    pub(super) kind: FailureKind,
    pub(super) class: Option<ErrorClass>,
    pub(super) message: String,
    pub(super) retry_in: Option<Duration>,
}

/// What kind of end a group's turn came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FailureKind {
    /// Its deployments were called and failed (or cannot be retried).
    Failed,
    /// Stop here, no fallbacks: a stream broke after tokens with `mid_stream_failover: off`,
    /// or the answer outgrew `llmux.max_answer_bytes`.
    Stopped,
    /// Nothing of this group could be called now (cooling, at limits, the prompt too long).
    Unavailable,
    /// Every deployment of the group is over a budget (`budget`).
    OverBudget,
    /// Nothing of this group can be called as configured (its key variables are unset).
    Misconfigured,
}

impl FailureKind {
    /// Nothing of the group could be called now, for whatever reason waiting may lift.
    pub(super) fn unavailable(self) -> bool {
        matches!(self, FailureKind::Unavailable | FailureKind::OverBudget)
    }
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
    /// The attempt under way (its spend is counted if the request is dropped mid-call).
    pub(super) live: Option<super::attempt::LiveAttempt>,
    /// Where the answer goes in the response cache (set when the cache is on).
    pub(super) cache_key: Option<crate::cache::CacheKey>,
    /// The answer outgrew `llmux.max_answer_bytes`: the request stops (no retry, no fallback).
    pub(super) over_cap: bool,
}

impl Drop for RequestRun {
    fn drop(&mut self) {
        if !self.finished {
            self.cancelled_spend();
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
                format!(
                    "no model group or alias named '{}'; known groups: {known}",
                    shown_name(requested)
                ),
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
                    if failure.kind == FailureKind::Stopped {
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

    /// The request's error; the answer so far moves into it (the request ends here).
    fn error(
        &mut self,
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
            partial_text: std::mem::take(&mut self.answer),
        }
    }

    fn final_error(&mut self, failures: &[(String, GroupFailure)]) -> RouteError {
        let all_unavailable =
            !failures.is_empty() && failures.iter().all(|(_, f)| f.kind.unavailable());
        let retry_in = failures.iter().filter_map(|(_, f)| f.retry_in).min();
        let last_class = failures.last().and_then(|(_, f)| f.class);
        let all_budget = !failures.is_empty()
            && failures
                .iter()
                .all(|(_, f)| f.kind == FailureKind::OverBudget);
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
                .filter(|(_, f)| f.kind.unavailable() || f.kind == FailureKind::Misconfigured)
                .map(|(g, f)| format!("{g}: {}", f.message)),
        );
        let parts = collapse_repeats(parts);
        let message = format!("every route failed — {}", parts.join("; "));
        self.error(kind, message, retry_in)
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
        self.inner.sink.finish(self.id, &result);
        self.out.send(ChatEvent::finished(result)).await;
    }
}

/// The most characters of a name a client sent that an error (and so the request log and a
/// 404) repeats.
const MAX_SHOWN_NAME_CHARS: usize = 200;

/// `name` as errors show it: cut after [`MAX_SHOWN_NAME_CHARS`] characters, saying how long
/// it was.
fn shown_name(name: &str) -> std::borrow::Cow<'_, str> {
    match name.char_indices().nth(MAX_SHOWN_NAME_CHARS) {
        None => name.into(),
        Some((end, _)) => format!("{}… ({} characters)", &name[..end], name.chars().count()).into(),
    }
}

/// `request` with `default_litellm_params` filled in where it sets nothing itself (so they win
/// over a deployment's own `litellm_params`, as LiteLLM's do).
fn with_defaults(defaults: &RequestDefaults, mut request: ChatRequest) -> ChatRequest {
    if defaults.is_empty() {
        return request;
    }
    request.max_tokens = request.max_tokens.or(defaults.max_tokens);
    request.temperature = request.temperature.or(defaults.temperature);
    for (key, value) in &defaults.extra {
        request
            .extra
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
    request
}

fn fallback_reason(f: &GroupFailure) -> FallbackReason {
    match (f.class, f.kind) {
        (Some(ErrorClass::ContextWindow), _) => FallbackReason::ContextWindow,
        (Some(ErrorClass::ContentPolicy), _) => FallbackReason::ContentPolicy,
        (_, FailureKind::OverBudget) => FallbackReason::Budget,
        (_, FailureKind::Unavailable) => FallbackReason::Unavailable,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_is_shown_cut_with_its_length() {
        assert_eq!(shown_name("gpt-4o"), "gpt-4o");
        let long = "é".repeat(MAX_SHOWN_NAME_CHARS + 1);
        let shown = shown_name(&long);
        assert!(shown.starts_with(&"é".repeat(MAX_SHOWN_NAME_CHARS)));
        assert!(shown.ends_with("é… (201 characters)"), "{shown}");
        assert_eq!(
            shown.chars().filter(|c| *c == 'é').count(),
            MAX_SHOWN_NAME_CHARS
        );
    }
}
