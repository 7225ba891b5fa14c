//! One attempt: one call to one deployment, with its first-token and whole-request
//! deadlines, streaming deltas to the caller as they arrive, then recording what happened
//! (usage and cost, metrics, health and cooldowns, the attempt record and its events).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::Inner;
use super::cooldown::CooldownRules;
use super::event::*;
use super::request::{AttemptEnd, CONTINUE_PROMPT, RequestRun};
use crate::config::{Deployment, RouterSettings};
use crate::metrics::{AttemptSuccess, Usd};
use crate::provider::{
    self, ChatRequest, Message, ProviderError, StreamEvent, ToolCallBuilder, ToolCallDelta, Usage,
};

/// Bytes of answer text an attempt has room for before its buffers first grow.
const ANSWER_CAPACITY: usize = 512;
/// A stream that ended without saying it was done.
const ENDED_EARLY: &str = "the stream ended before the answer was complete";

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
        self.attempt_no += 1;
        let start = Instant::now();
        self.emit(group, Some(&d.id), RouteEventKind::Attempt).await;
        inner.health.record_request(&d.id, start);
        inner
            .metrics
            .attempt_started(&d.id, group, start.into_std());
        let mut guard = AttemptGuard {
            inner: inner.clone(),
            deployment: d.id.clone(),
            group: group.to_string(),
            armed: true,
        };
        let call = self.continuation(request);
        let mut got = Streamed {
            start,
            text_from: self.answer.len(),
            reasoning_from: self.reasoning.len(),
            tool_calls: ToolCallBuilder::default(),
            usage: None,
            finish_reason: None,
            ttft: None,
        };
        // What a cancel mid-call needs to count this attempt's spend (see `cancelled_spend`).
        self.live = Some(LiveAttempt {
            deployment: d.clone(),
            group: group.to_string(),
            answer_start: got.text_from,
            reasoning_start: got.reasoning_from,
            input: provider::estimate_prompt_tokens(&call.messages),
        });
        // Room for a short answer up front: growing from nothing reallocates every few tokens.
        self.answer.reserve(ANSWER_CAPACITY);
        // What goes over the wire, only when a capture was asked for (the TUI's inspector).
        let mut tap =
            (inner.capture.as_ref()).map(|c| c.begin(self.id, self.attempt_no, group, d, &call));
        let result = self.stream(group, d, &call, &mut got, &mut tap).await;
        if let (Some(t), Some(c)) = (tap, &inner.capture) {
            t.end(c, d, result.as_ref().map(|_| ()));
        }
        self.live = None;
        let ended = self.settle(group, d, &call, &got, result.is_ok()).await;
        guard.armed = false;
        match result {
            Ok(()) => self.succeeded(group, d, got, ended).await,
            Err(error) => self.failed(group, d, group_size, error, ended).await,
        }
    }

    /// The request as it is, unless an answer is being continued (`mid_stream_failover:
    /// continue`): only then is it copied, to add the kept part and the ask to go on.
    fn continuation<'r>(&self, request: &'r ChatRequest) -> Cow<'r, ChatRequest> {
        if self.answer.is_empty() {
            return Cow::Borrowed(request);
        }
        let mut c = request.clone();
        c.messages.push(Message::assistant(self.answer.clone()));
        c.messages.push(Message::user(CONTINUE_PROMPT));
        Cow::Owned(c)
    }

    /// Opens the call and reads its stream to the end, within its first-token and
    /// whole-request deadlines: the text and reasoning onto the request's, the rest into `got`,
    /// every piece on to the caller.
    async fn stream(
        &mut self,
        group: &str,
        d: &Deployment,
        call: &ChatRequest,
        got: &mut Streamed,
        tap: &mut Option<super::capture::AttemptTap>,
    ) -> Result<(), ProviderError> {
        let inner = self.inner.clone();
        let (first_limit, total_limit) = limits(d, &inner.config.router, call.stream);
        let total_deadline = got.start + total_limit;
        let first_deadline = got.start + first_limit;
        // What the request keeps of the answer, held under `llmux.max_answer_bytes`: a
        // hostile or broken upstream may stream without end.
        let cap = inner.config.app.max_answer_bytes();
        let mut kept_tools = 0usize;
        // One timer for the attempt, moved once from the first-token deadline to the
        // whole-request one (a new timer per streamed piece cost a registration each).
        let deadline = tokio::time::sleep_until(first_deadline);
        tokio::pin!(deadline);
        // A captured attempt's client notes what comes back as it comes.
        let tapped = tap
            .as_ref()
            .and_then(|t| t.raw())
            .map(|r| inner.http.tapped(r.clone()));
        let http = tapped.as_ref().unwrap_or(&inner.http);
        let mut stream = tokio::select! {
            biased;
            opened = provider::open(http, d, call) => opened?,
            () = &mut deadline => return Err(timed_out(false, first_limit, total_limit)),
        };
        if let Some(t) = tap.as_mut() {
            t.opened();
        }
        let mut on_first_deadline = first_deadline != total_deadline;
        loop {
            if on_first_deadline && got.ttft.is_some() {
                deadline.as_mut().reset(total_deadline);
                on_first_deadline = false;
            }
            let next = tokio::select! {
                biased;
                next = stream.next() => next,
                () = &mut deadline => {
                    return Err(timed_out(got.ttft.is_some(), first_limit, total_limit));
                }
            };
            if let Some(t) = tap.as_mut() {
                t.received(next.as_ref());
            }
            // The first piece of the answer, whatever its kind, is its first token. Checked
            // here, once, so that later tokens build no `first_token` future.
            if got.ttft.is_none() && is_answer(&next) {
                self.first_token(group, d, got.start, &mut got.ttft).await;
            }
            match next {
                None => return Err(ProviderError::protocol(ENDED_EARLY)),
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
                    let size = tool_call_bytes(&call);
                    self.keep(size, kept_tools, cap)?;
                    kept_tools += size;
                    got.tool_calls.push(&call);
                    self.out.send(ChatEvent::ToolCall(call)).await;
                }
                Some(Ok(StreamEvent::Usage(u))) => {
                    got.usage = Some(u);
                    if got.ttft.is_none() {
                        self.out.send(ChatEvent::Usage(u)).await;
                    }
                }
                Some(Ok(StreamEvent::Passthrough(p))) => {
                    self.out.send(ChatEvent::Passthrough(p)).await;
                }
                Some(Ok(StreamEvent::Done { finish_reason: f })) => {
                    got.finish_reason = f;
                    return Ok(());
                }
            }
        }
    }

    /// Counts what the attempt used, whether it succeeded (`ok`) or not: its spend (`spend`),
    /// its budgets, its deployment's health; a failed attempt that was billed says so in a
    /// `Spent` event.
    async fn settle(
        &mut self,
        group: &str,
        d: &Deployment,
        call: &ChatRequest,
        got: &Streamed,
        ok: bool,
    ) -> Ended {
        let end = Instant::now();
        let text = &self.answer[got.text_from..];
        let reasoning = &self.reasoning[got.reasoning_from..];
        let produced = !text.is_empty() || !reasoning.is_empty() || !got.tool_calls.is_empty();
        // Tokens streamed before a failure were billed: count them (estimated) rather than
        // losing them (LiteLLM #14457).
        let usage = (ok || produced).then(|| {
            got.usage
                .unwrap_or_else(|| estimate_usage(call, text, reasoning, &got.tool_calls))
        });
        let cost = usage.and_then(|u| self.spend(group, d, &u, ok));
        self.charge_budgets(group, d, cost).await;
        self.inner
            .health
            .record_end(&d.id, usage.map(|u| u.input + u.output), ok, end);
        if let (false, Some(usage)) = (ok, usage) {
            self.emit(
                group,
                Some(&d.id),
                RouteEventKind::Spent {
                    usage,
                    cost_usd: cost,
                },
            )
            .await;
        }
        Ended {
            end,
            elapsed: end - got.start,
            usage,
            cost,
            produced,
        }
    }

    /// Records a successful attempt and announces it: the request ends here, its answer and
    /// record move into the outcome.
    async fn succeeded(
        &mut self,
        group: &str,
        d: &Deployment,
        got: Streamed,
        ended: Ended,
    ) -> AttemptEnd {
        self.inner.metrics.attempt_succeeded(
            &d.id,
            group,
            &AttemptSuccess {
                ttft: got.ttft,
                total: ended.elapsed,
                usage: ended.usage.unwrap_or_default(),
                cost: ended.cost,
            },
            ended.end.into_std(),
        );
        self.attempts.push(AttemptRecord {
            deployment: d.id.clone(),
            group: group.to_string(),
            outcome: AttemptOutcome::Ok,
            class: None,
            status: None,
            error: None,
            ms: ended.elapsed.as_millis() as u64,
        });
        let total = ended.end - self.started;
        self.emit(
            group,
            Some(&d.id),
            RouteEventKind::Done {
                usage: self.usage,
                cost_usd: self.cost,
                ttft_ms: self.ttft.map(|t| t.as_millis() as u64),
                total_ms: total.as_millis() as u64,
                finish_reason: got.finish_reason.clone(),
                cached: false,
            },
        )
        .await;
        let attempts = std::mem::take(&mut self.attempts);
        AttemptEnd::Success(Box::new(ChatOutcome {
            request_id: self.id,
            text: std::mem::take(&mut self.answer),
            reasoning: std::mem::take(&mut self.reasoning),
            group: group.to_string(),
            deployment: d.id.clone(),
            // A retry is another attempt in a group already tried; moving on to a fallback
            // group is not one (that is `fell_back`).
            retried: attempts
                .iter()
                .enumerate()
                .any(|(i, a)| attempts[..i].iter().any(|b| b.group == a.group)),
            attempts,
            ttft: self.ttft,
            total,
            usage: self.usage,
            cost: self.cost,
            finish_reason: got.finish_reason,
            tool_calls: got.tool_calls.finish(),
            fell_back: self.requested_group != group,
            continued: self.continued,
            cached: false,
        }))
    }

    /// Records a failed attempt and announces it, with the cooldown it earned its deployment.
    async fn failed(
        &mut self,
        group: &str,
        d: &Deployment,
        group_size: usize,
        error: ProviderError,
        ended: Ended,
    ) -> AttemptEnd {
        let inner = self.inner.clone();
        let settings = &inner.config.router;
        inner.metrics.attempt_failed(
            &d.id,
            group,
            error.class,
            ended.elapsed,
            ended.end.into_std(),
        );
        self.attempts.push(AttemptRecord {
            deployment: d.id.clone(),
            group: group.to_string(),
            outcome: AttemptOutcome::Failed,
            class: Some(error.class),
            status: error.status,
            error: Some(error.message.clone()),
            ms: ended.elapsed.as_millis() as u64,
        });
        self.emit(
            group,
            Some(&d.id),
            RouteEventKind::Failure {
                class: error.class,
                status: error.status,
                message: error.message.clone(),
                after_tokens: ended.produced,
            },
        )
        .await;
        let rules = CooldownRules {
            settings,
            deployment_cooldown: d.cooldown_time,
            group_size,
            has_fallbacks: settings.fallbacks.get(group).is_some_and(|f| !f.is_empty()),
        };
        if let Some(c) = inner.health.record_failure(&d.id, &error, rules, ended.end) {
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
            after_tokens: ended.produced,
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

/// One attempt's own part of the request: where its text and reasoning start in the request's
/// (one copy of each token, not two), and what else its stream gave.
struct Streamed {
    start: Instant,
    text_from: usize,
    reasoning_from: usize,
    tool_calls: ToolCallBuilder,
    usage: Option<Usage>,
    finish_reason: Option<String>,
    ttft: Option<Duration>,
}

/// What an ended attempt used, counted (`settle`).
struct Ended {
    end: Instant,
    elapsed: Duration,
    /// Reported, else estimated; `None` when it failed before producing anything.
    usage: Option<Usage>,
    /// `None` also when the deployment has no known price.
    cost: Option<Usd>,
    /// It had shown tokens (text, reasoning or a tool call).
    produced: bool,
}

/// The first-token and the whole-request limits of a call to `d`: `stream_timeout` is a
/// first-token deadline for streamed calls only (as LiteLLM's is for `stream=True`); a plain
/// call has its whole `timeout`.
fn limits(d: &Deployment, settings: &RouterSettings, stream: bool) -> (Duration, Duration) {
    let total = d.timeout.unwrap_or(settings.timeout);
    let first = if stream {
        d.stream_timeout
            .or(settings.stream_timeout)
            .unwrap_or(total)
            .min(total)
    } else {
        total
    };
    (first, total)
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

/// Whether `next` is a piece of the answer (text, reasoning or a tool call).
fn is_answer(next: &Option<Result<StreamEvent, ProviderError>>) -> bool {
    matches!(
        next,
        Some(Ok(StreamEvent::Delta(_)
            | StreamEvent::Reasoning(_)
            | StreamEvent::ToolCall(_)))
    )
}

/// The bytes of a tool call's piece that the answer keeps (toward `llmux.max_answer_bytes`).
fn tool_call_bytes(call: &ToolCallDelta) -> usize {
    call.arguments.len()
        + call.id.as_ref().map_or(0, String::len)
        + call.name.as_ref().map_or(0, String::len)
}

/// The timeout an attempt met: its first-token deadline `first`, or, once it had its first
/// token (`answering`), its whole-request one `total`.
fn timed_out(answering: bool, first: Duration, total: Duration) -> ProviderError {
    if answering {
        ProviderError::timeout(format!(
            "the answer took longer than the {:.0}s timeout",
            total.as_secs_f64()
        ))
    } else if first < total {
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
