//! One attempt: one call to one deployment, with its first-token and whole-request
//! deadlines, streaming deltas to the caller as they arrive, then recording what happened
//! (usage and cost, metrics, health and cooldowns, the attempt record and its events).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::Inner;
use super::cooldown::CooldownRules;
use super::event::*;
use super::request::{AttemptEnd, CONTINUE_PROMPT, RequestRun};
use crate::config::Deployment;
use crate::metrics::{AttemptSuccess, Usd};

/// Bytes of answer text an attempt has room for before its buffers first grow.
const ANSWER_CAPACITY: usize = 512;
use crate::provider::{
    self, ChatRequest, Message, ProviderError, StreamEvent, ToolCallBuilder, Usage,
};

impl RequestRun {
    /// One call to one deployment, with its deadlines, streaming deltas to the caller.
    pub(super) async fn attempt(
        &mut self,
        group: &str,
        d: &Deployment,
        group_size: usize,
        request: &ChatRequest,
    ) -> AttemptEnd {
        let inner = self.inner.clone();
        let settings = &inner.config.router;
        self.attempt_no += 1;
        let start = Instant::now();
        self.emit(group, Some(&d.id), RouteEventKind::Attempt).await;
        inner.health.record_request(&d.id, start);
        inner
            .metrics
            .attempt_started(&d.id, group, start.into_std());
        let guard = AttemptGuard {
            inner: inner.clone(),
            deployment: d.id.clone(),
            group: group.to_string(),
            armed: true,
        };

        // The request as it is, unless an answer is being continued (`mid_stream_failover:
        // continue`): only then is it copied, to add the kept part and the ask to go on.
        let continued;
        let call = if self.answer.is_empty() {
            request
        } else {
            let mut c = request.clone();
            c.messages.push(Message::assistant(self.answer.clone()));
            c.messages.push(Message::user(CONTINUE_PROMPT));
            continued = c;
            &continued
        };
        let total_limit = d.timeout.unwrap_or(settings.timeout);
        // `stream_timeout` is a first-token deadline, for streamed calls only (as LiteLLM's
        // is for `stream=True`); a plain call has its whole `timeout`.
        let first_limit = if call.stream {
            d.stream_timeout
                .or(settings.stream_timeout)
                .unwrap_or(total_limit)
                .min(total_limit)
        } else {
            total_limit
        };
        let total_deadline = start + total_limit;
        let first_deadline = start + first_limit;

        // This attempt's text and reasoning are what it adds to the request's (kept apart only
        // by where they start: one copy of each token, not two).
        let answer_start = self.answer.len();
        let reasoning_start = self.reasoning.len();
        // What a cancel mid-call needs to count this attempt's spend (see `cancelled_spend`).
        self.live = Some(LiveAttempt {
            deployment: d.clone(),
            group: group.to_string(),
            answer_start,
            reasoning_start,
            input: provider::estimate_prompt_tokens(&call.messages),
        });
        // Room for a short answer up front: growing from nothing reallocates every few tokens.
        self.answer.reserve(ANSWER_CAPACITY);
        let mut tool_calls = ToolCallBuilder::default();
        // What the request keeps of the answer, held under `llmux.max_answer_bytes`: a
        // hostile or broken upstream may stream without end.
        let cap = inner.config.app.max_answer_bytes();
        let mut kept_tools = 0usize;
        let mut usage: Option<Usage> = None;
        let mut finish_reason = None;
        let mut ttft: Option<Duration> = None;

        let result: Result<(), ProviderError> = async {
            // One timer for the attempt, moved once from the first-token deadline to the
            // whole-request one (a new timer per streamed piece cost a registration each).
            let deadline = tokio::time::sleep_until(first_deadline);
            tokio::pin!(deadline);
            let mut stream = tokio::select! {
                biased;
                opened = provider::open(&inner.http, d, call) => opened?,
                () = &mut deadline => return Err(first_token_timeout(first_limit, total_limit)),
            };
            let mut on_first_deadline = first_deadline != total_deadline;
            loop {
                if on_first_deadline && ttft.is_some() {
                    deadline.as_mut().reset(total_deadline);
                    on_first_deadline = false;
                }
                let next = tokio::select! {
                    biased;
                    next = stream.next() => next,
                    () = &mut deadline => {
                        if ttft.is_none() {
                            return Err(first_token_timeout(first_limit, total_limit));
                        }
                        return Err(ProviderError::timeout(format!(
                            "the answer took longer than the {:.0}s timeout",
                            total_limit.as_secs_f64()
                        )));
                    }
                };
                // The first piece of the answer, whatever its kind, is its first token. Checked
                // here, once, so that later tokens build no `first_token` future.
                if ttft.is_none()
                    && matches!(
                        next,
                        Some(Ok(StreamEvent::Delta(_)
                            | StreamEvent::Reasoning(_)
                            | StreamEvent::ToolCall(_)))
                    )
                {
                    self.first_token(group, d, start, &mut ttft).await;
                }
                match next {
                    None => {
                        return Err(ProviderError::protocol(
                            "the stream ended before the answer was complete",
                        ));
                    }
                    Some(Err(e)) => return Err(e),
                    Some(Ok(StreamEvent::Delta(t))) => {
                        self.keep(t.len(), kept_tools, cap)?;
                        self.answer.push_str(&t);
                        self.out.send(ChatEvent::Delta(t)).await;
                    }
                    Some(Ok(StreamEvent::Reasoning(t))) => {
                        self.keep(t.len(), kept_tools, cap)?;
                        self.reasoning.push_str(&t);
                        self.out.send(ChatEvent::Reasoning(t)).await;
                    }
                    Some(Ok(StreamEvent::ToolCall(call))) => {
                        let size = call.arguments.len()
                            + call.id.as_ref().map_or(0, String::len)
                            + call.name.as_ref().map_or(0, String::len);
                        self.keep(size, kept_tools, cap)?;
                        kept_tools += size;
                        tool_calls.push(&call);
                        self.out.send(ChatEvent::ToolCall(call)).await;
                    }
                    Some(Ok(StreamEvent::Usage(u))) => {
                        usage = Some(u);
                        if ttft.is_none() {
                            self.out.send(ChatEvent::Usage(u)).await;
                        }
                    }
                    Some(Ok(StreamEvent::Passthrough(p))) => {
                        self.out.send(ChatEvent::Passthrough(p)).await;
                    }
                    Some(Ok(StreamEvent::Done { finish_reason: f })) => {
                        finish_reason = f;
                        return Ok(());
                    }
                }
            }
        }
        .await;

        self.live = None;
        let end = Instant::now();
        let elapsed = end - start;
        let text = &self.answer[answer_start..];
        let reasoning = &self.reasoning[reasoning_start..];
        let produced = !text.is_empty() || !reasoning.is_empty() || !tool_calls.is_empty();
        // Tokens streamed before a failure were billed: count them (estimated) rather than
        // losing them (LiteLLM #14457).
        let attempt_usage = (result.is_ok() || produced)
            .then(|| usage.unwrap_or_else(|| estimate_usage(call, text, reasoning, &tool_calls)));
        let attempt_cost = attempt_usage.map(|u| self.spend(group, d, &u, result.is_ok()));
        self.charge_budgets(group, d, attempt_cost.flatten()).await;
        inner.health.record_end(
            &d.id,
            attempt_usage.map(|u| u.input + u.output),
            result.is_ok(),
            end,
        );
        if let (Err(_), Some(usage)) = (&result, attempt_usage) {
            let cost_usd = attempt_cost.flatten();
            self.emit(
                group,
                Some(&d.id),
                RouteEventKind::Spent { usage, cost_usd },
            )
            .await;
        }
        let mut guard = guard;
        guard.armed = false;
        match result {
            Ok(()) => {
                let usage = attempt_usage.unwrap_or_default();
                inner.metrics.attempt_succeeded(
                    &d.id,
                    group,
                    &AttemptSuccess {
                        ttft,
                        total: elapsed,
                        usage,
                        cost: attempt_cost.flatten(),
                    },
                    end.into_std(),
                );
                self.attempts.push(AttemptRecord {
                    deployment: d.id.clone(),
                    group: group.to_string(),
                    outcome: AttemptOutcome::Ok,
                    class: None,
                    status: None,
                    error: None,
                    ms: elapsed.as_millis() as u64,
                });
                let total = end - self.started;
                self.emit(
                    group,
                    Some(&d.id),
                    RouteEventKind::Done {
                        usage: self.usage,
                        cost_usd: self.cost,
                        ttft_ms: self.ttft.map(|t| t.as_millis() as u64),
                        total_ms: total.as_millis() as u64,
                        finish_reason: finish_reason.clone(),
                        cached: false,
                    },
                )
                .await;
                // The request ends here: its answer and record move into the outcome.
                let attempts = std::mem::take(&mut self.attempts);
                AttemptEnd::Success(Box::new(ChatOutcome {
                    request_id: self.id,
                    text: std::mem::take(&mut self.answer),
                    reasoning: std::mem::take(&mut self.reasoning),
                    group: group.to_string(),
                    deployment: d.id.clone(),
                    // A retry is another attempt in a group already tried; moving on to a
                    // fallback group is not one (that is `fell_back`).
                    retried: attempts
                        .iter()
                        .enumerate()
                        .any(|(i, a)| attempts[..i].iter().any(|b| b.group == a.group)),
                    attempts,
                    ttft: self.ttft,
                    total,
                    usage: self.usage,
                    cost: self.cost,
                    finish_reason,
                    tool_calls: tool_calls.finish(),
                    fell_back: self.requested_group != group,
                    continued: self.continued,
                    cached: false,
                }))
            }
            Err(error) => {
                inner
                    .metrics
                    .attempt_failed(&d.id, group, error.class, elapsed, end.into_std());
                self.attempts.push(AttemptRecord {
                    deployment: d.id.clone(),
                    group: group.to_string(),
                    outcome: AttemptOutcome::Failed,
                    class: Some(error.class),
                    status: error.status,
                    error: Some(error.message.clone()),
                    ms: elapsed.as_millis() as u64,
                });
                self.emit(
                    group,
                    Some(&d.id),
                    RouteEventKind::Failure {
                        class: error.class,
                        status: error.status,
                        message: error.message.clone(),
                        after_tokens: produced,
                    },
                )
                .await;
                let rules = CooldownRules {
                    settings,
                    deployment_cooldown: d.cooldown_time,
                    group_size,
                    has_fallbacks: settings.fallbacks.get(group).is_some_and(|f| !f.is_empty()),
                };
                if let Some(c) = inner.health.record_failure(&d.id, &error, rules, end) {
                    self.emit(
                        group,
                        Some(&d.id),
                        RouteEventKind::Cooldown {
                            secs: c.duration.as_secs_f64(),
                            reason: c.reason,
                        },
                    )
                    .await;
                }
                AttemptEnd::Failed {
                    error,
                    after_tokens: produced,
                }
            }
        }
    }

    /// Whether `more` bytes of answer fit under the cap beside what is kept (the text, the
    /// reasoning and `tools` bytes of tool calls); past it the request stops with an error.
    fn keep(&mut self, more: usize, tools: usize, cap: usize) -> Result<(), ProviderError> {
        let kept = self.answer.len() + self.reasoning.len() + tools;
        if kept.saturating_add(more) <= cap {
            return Ok(());
        }
        self.over_cap = true;
        Err(ProviderError::protocol(format!(
            "the answer outgrew the {cap}-byte limit on what one answer may hold (llmux.max_answer_bytes); cut there"
        )))
    }

    /// The one place an attempt's spend is counted: the request's usage and cost, the fleet's
    /// ledger and, for an attempt that did not answer, the metrics (a success's spend goes
    /// in with `attempt_succeeded`). Returns the cost (`None`: no known price). Budgets are
    /// charged by the caller, which can announce what that crosses.
    fn spend(&mut self, group: &str, d: &Deployment, usage: &Usage, answered: bool) -> Option<Usd> {
        let inner = self.inner.clone();
        let price = inner.prices.get(&d.id).copied().flatten();
        let cost = price.map(|p| p.cost(usage));
        self.usage = add_usage(self.usage, *usage);
        self.cost = match (self.cost, cost) {
            (Some(total), Some(c)) => Some(total + c),
            _ => None,
        };
        if let Some(c) = cost {
            inner.health.record_cost(&d.id, c);
        }
        if !answered {
            inner.metrics.attempt_spent(&d.id, group, usage, cost);
        }
        cost
    }

    /// The request was dropped mid-attempt (the caller cancelled): what that attempt streamed
    /// was billed, so it is counted (estimated) and said in a `Spent` event to subscribers and
    /// the request log. Called by the request's `Drop`, before its `Cancelled` event.
    pub(super) fn cancelled_spend(&mut self) {
        let Some(live) = self.live.take() else {
            return;
        };
        let text = self.answer.get(live.answer_start..).unwrap_or_default();
        let reasoning = self
            .reasoning
            .get(live.reasoning_start..)
            .unwrap_or_default();
        if text.is_empty() && reasoning.is_empty() {
            return;
        }
        let usage = Usage {
            input: live.input,
            output: provider::estimate_tokens(text) + provider::estimate_tokens(reasoning),
            estimated: true,
            ..Usage::default()
        };
        let cost_usd = self.spend(&live.group, &live.deployment, &usage, false);
        if let Some(cost) = cost_usd {
            for c in self.inner.budgets.spend(&live.deployment.id, cost) {
                let kind = RouteEventKind::Budget {
                    scope: c.scope,
                    spent: c.spent,
                    limit: c.limit,
                    percent: c.percent,
                    period: c.period,
                    resets_in_ms: c.resets_in.map(|r| r.as_millis() as u64),
                };
                let ev = self.event(&live.group, Some(&live.deployment.id), kind);
                self.publish(&Arc::new(ev));
            }
        }
        let kind = RouteEventKind::Spent { usage, cost_usd };
        let ev = self.event(&live.group, Some(&live.deployment.id), kind);
        self.publish(&Arc::new(ev));
    }

    /// Records and announces the attempt's first token; called once, on its first piece.
    pub(super) async fn first_token(
        &mut self,
        group: &str,
        d: &Deployment,
        start: Instant,
        ttft: &mut Option<Duration>,
    ) {
        let t = start.elapsed();
        *ttft = Some(t);
        if self.ttft.is_none() {
            self.ttft = Some(self.started.elapsed());
        }
        self.emit(
            group,
            Some(&d.id),
            RouteEventKind::FirstToken {
                ttft_ms: t.as_millis() as u64,
            },
        )
        .await;
    }
}

/// The attempt under way, for counting its spend if the request is dropped mid-call.
pub(super) struct LiveAttempt {
    deployment: Deployment,
    group: String,
    answer_start: usize,
    reasoning_start: usize,
    /// The prompt's estimated tokens.
    input: u64,
}

/// Marks an attempt cancelled in the metrics when its task is aborted mid-call.
struct AttemptGuard {
    inner: Arc<Inner>,
    deployment: String,
    group: String,
    armed: bool,
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if self.armed {
            self.inner.metrics.attempt_cancelled(
                &self.deployment,
                &self.group,
                Instant::now().into_std(),
            );
        }
    }
}

fn first_token_timeout(first: Duration, total: Duration) -> ProviderError {
    if first < total {
        ProviderError::timeout(format!(
            "no first token within the {:.0}s stream_timeout",
            first.as_secs_f64()
        ))
    } else {
        ProviderError::timeout(format!(
            "no answer within the {:.0}s timeout",
            total.as_secs_f64()
        ))
    }
}

fn estimate_usage(
    call: &ChatRequest,
    text: &str,
    reasoning: &str,
    tool_calls: &ToolCallBuilder,
) -> Usage {
    Usage {
        input: provider::estimate_prompt_tokens(&call.messages),
        output: provider::estimate_tokens(text)
            + provider::estimate_tokens(reasoning)
            + (tool_calls.arguments_len() as u64).div_ceil(4),
        estimated: true,
        ..Usage::default()
    }
}

fn add_usage(a: Usage, b: Usage) -> Usage {
    Usage {
        input: a.input + b.input,
        output: a.output + b.output,
        cached_input: a.cached_input + b.cached_input,
        cache_write: a.cache_write + b.cache_write,
        reasoning: a.reasoning + b.reasoning,
        estimated: a.estimated || b.estimated,
    }
}
