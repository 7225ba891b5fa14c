//! What the router tells the world: [`RouteEvent`]s (every decision, for the routing log,
//! `ask -v`, the request log, `serve`'s event stream and the metrics), and the per-request
//! [`ChatEvent`]s a caller of `Router::chat` reads (text as it streams, then the outcome).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::MidStreamFailover;
use crate::metrics::Usd;
use crate::provider::{ErrorClass, Passthrough, ToolCall, ToolCallDelta, Usage};

/// One routing decision or outcome, stamped with the request it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteEvent {
    /// Unique per router instance, increasing.
    pub request_id: u64,
    /// The model group this event is about (after alias resolution).
    pub group: String,
    /// The deployment, for events about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// 1-based attempt number within the request; 0 for request-level events.
    pub attempt: u32,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Milliseconds since the request started.
    pub elapsed_ms: u64,
    #[serde(flatten)]
    pub kind: RouteEventKind,
}

/// Why the router moved to another model group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// The group failed (`fallbacks` / `default_fallbacks`).
    Failed,
    /// The prompt does not fit (`context_window_fallbacks`).
    ContextWindow,
    /// The content was refused (`content_policy_fallbacks`).
    ContentPolicy,
    /// Every deployment of the group is cooling down or at its limit.
    Unavailable,
    /// Every deployment of the group is over its own or its provider's budget.
    Budget,
}

impl FallbackReason {
    pub fn name(self) -> &'static str {
        match self {
            FallbackReason::Failed => "failed",
            FallbackReason::ContextWindow => "context window",
            FallbackReason::ContentPolicy => "content policy",
            FallbackReason::Unavailable => "unavailable",
            FallbackReason::Budget => "budget",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RouteEventKind {
    /// A request was accepted for `requested` (a group or an alias).
    Request {
        requested: String,
        prompt_tokens: u64,
        /// The request's tags (`ask --tag`, `metadata.tags`), for `stats --by tag`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
    },
    /// A deployment was picked and called.
    Attempt,
    /// The first token arrived.
    FirstToken { ttft_ms: u64 },
    /// An attempt failed.
    Failure {
        class: ErrorClass,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        message: String,
        /// True when tokens had already been streamed.
        after_tokens: bool,
    },
    /// The deployment is skipped for `secs`.
    Cooldown { secs: f64, reason: String },
    /// The next attempt starts after `delay_ms`.
    Retry { delay_ms: u64 },
    /// No deployment of the group can be called now.
    Unavailable {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
    },
    /// The request moves on to another group.
    Fallback {
        from: String,
        to: String,
        reason: FallbackReason,
    },
    /// A stream failed after tokens were shown; `mode` says what happens to them.
    MidStream {
        mode: MidStreamFailoverName,
        kept_chars: usize,
    },
    /// An attempt that did not answer was billed all the same: the tokens it streamed before
    /// it failed or was cancelled (estimated when no usage came). The request's `Done`
    /// includes it; a failed or cancelled request's spend is the sum of these.
    Spent {
        usage: Usage,
        /// `None` when the deployment has no known price.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<Usd>,
    },
    /// The request succeeded.
    Done {
        usage: Usage,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<Usd>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttft_ms: Option<u64>,
        total_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish_reason: Option<String>,
        /// Answered from the response cache: no upstream call, cost 0.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cached: bool,
    },
    /// Every route failed.
    Failed { message: String },
    /// The caller dropped the request.
    Cancelled,
    /// Shared state through Redis (`router_settings.redis_*`) came into use, was lost, or is
    /// back: said once per change, not per failed attempt. Request id 0, no group.
    SharedState { connected: bool, message: String },
    /// A budget reached 80% or 100% of its limit: said once per period, by the request whose
    /// spend crossed it. `scope` is `llmux.budget`, a provider or `deployment <id>`.
    Budget {
        scope: String,
        spent: Usd,
        limit: Usd,
        percent: u8,
        /// The budget's period as written (`1d`).
        period: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resets_in_ms: Option<u64>,
    },
}

/// [`MidStreamFailover`] as it appears in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MidStreamFailoverName {
    Continue,
    Restart,
    Off,
}

impl From<MidStreamFailover> for MidStreamFailoverName {
    fn from(m: MidStreamFailover) -> Self {
        match m {
            MidStreamFailover::Continue => MidStreamFailoverName::Continue,
            MidStreamFailover::Restart => MidStreamFailoverName::Restart,
            MidStreamFailover::Off => MidStreamFailoverName::Off,
        }
    }
}

impl RouteEvent {
    /// One line for the routing log and `ask -v`.
    pub fn describe(&self) -> String {
        let dep = self.deployment.as_deref().unwrap_or("-");
        let n = self.attempt;
        match &self.kind {
            RouteEventKind::Request {
                requested,
                prompt_tokens,
                ..
            } => {
                format!(
                    "#{} request {requested} → group {} (~{prompt_tokens} prompt tokens)",
                    self.request_id, self.group
                )
            }
            RouteEventKind::Attempt => format!("#{} attempt {n} → {dep}", self.request_id),
            RouteEventKind::FirstToken { ttft_ms } => {
                format!(
                    "#{} first token from {dep} after {ttft_ms} ms",
                    self.request_id
                )
            }
            RouteEventKind::Failure {
                class,
                status,
                message,
                after_tokens,
            } => {
                let status = status.map(|s| format!(" {s}")).unwrap_or_default();
                let when = if *after_tokens { " mid-stream" } else { "" };
                format!(
                    "#{} {dep} failed{when}: {class}{status}: {message}",
                    self.request_id
                )
            }
            RouteEventKind::Cooldown { secs, reason } => {
                format!(
                    "#{} {dep} cooling down for {secs:.0}s: {reason}",
                    self.request_id
                )
            }
            RouteEventKind::Retry { delay_ms } => {
                format!("#{} retry in {}", self.request_id, human_ms(*delay_ms))
            }
            RouteEventKind::Unavailable {
                reason,
                retry_in_ms,
            } => {
                let when = retry_in_ms
                    .map(|ms| format!("; next free in {}s", ms.div_ceil(1000)))
                    .unwrap_or_default();
                format!(
                    "#{} group {} unavailable: {reason}{when}",
                    self.request_id, self.group
                )
            }
            RouteEventKind::Fallback { from, to, reason } => {
                format!(
                    "#{} fallback {from} → {to} ({})",
                    self.request_id,
                    reason.name()
                )
            }
            RouteEventKind::MidStream { mode, kept_chars } => {
                let what = match mode {
                    MidStreamFailoverName::Continue => {
                        format!("continuing after {kept_chars} chars")
                    }
                    MidStreamFailoverName::Restart => "restarting the answer".to_string(),
                    MidStreamFailoverName::Off => format!("stopping with {kept_chars} chars"),
                };
                format!("#{} stream broke: {what}", self.request_id)
            }
            RouteEventKind::Done {
                total_ms,
                cached: true,
                ..
            } => format!(
                "#{} answered from the response cache in {total_ms} ms, $0",
                self.request_id
            ),
            RouteEventKind::Done {
                usage,
                cost_usd,
                ttft_ms,
                total_ms,
                ..
            } => {
                let cost = cost_usd
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "cost unknown".to_string());
                let ttft = ttft_ms
                    .map(|t| format!("ttft {t} ms, "))
                    .unwrap_or_default();
                let est = if usage.estimated { "~" } else { "" };
                format!(
                    "#{} done by {dep}: {ttft}{total_ms} ms, {est}{} in / {est}{} out, {cost}",
                    self.request_id, usage.input, usage.output
                )
            }
            RouteEventKind::Spent { usage, cost_usd } => {
                let cost = cost_usd.map_or("cost unknown".to_string(), |c| c.to_string());
                let est = if usage.estimated { "~" } else { "" };
                format!(
                    "#{} {dep} was paid for what it streamed: {est}{} in / {est}{} out, {cost}",
                    self.request_id, usage.input, usage.output
                )
            }
            RouteEventKind::Failed { message } => format!("#{} failed: {message}", self.request_id),
            RouteEventKind::Cancelled => format!("#{} cancelled", self.request_id),
            RouteEventKind::SharedState { message, .. } => format!("shared state: {message}"),
            RouteEventKind::Budget {
                scope,
                spent,
                limit,
                percent,
                period,
                resets_in_ms,
            } => {
                let resets = resets_in_ms
                    .map(|ms| {
                        format!(
                            ", resets in {}",
                            super::budget::short_duration(Duration::from_millis(ms))
                        )
                    })
                    .unwrap_or_default();
                let what = if *percent >= 100 {
                    if scope == super::budget::APP_SCOPE {
                        "used up: every request is refused"
                    } else {
                        "used up: skipped until it resets"
                    }
                } else {
                    "nearly used"
                };
                format!(
                    "#{} budget {scope} {percent}% {what} ({spent} of {limit} for {period}{resets})",
                    self.request_id
                )
            }
        }
    }
}

/// What holds a deployment back for a while, besides a cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Its `rpm` is used for this minute.
    Rpm,
    /// Its `tpm` is used for this minute.
    Tpm,
    /// Its own or its provider's budget is used up for this period.
    Budget,
}

/// A deployment at a limit: what, and when it can be picked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub kind: LimitKind,
    pub free_in: Duration,
}

impl super::Router {
    /// Whether `d` is skipped now for a limit or a budget (not a cooldown, shown apart), and
    /// for how long: what the models pane shows instead of a green dot.
    pub(super) fn limited(
        &self,
        d: &crate::config::Deployment,
        now: tokio::time::Instant,
    ) -> Option<Limited> {
        if let Some(over) = self.inner.budgets.over_deployment(d) {
            return Some(Limited {
                kind: LimitKind::Budget,
                free_in: over.resets_in,
            });
        }
        match self.inner.health.blocked(&d.id, d.rpm, d.tpm, now)? {
            super::health::Blocked::Cooling { .. } => None,
            super::health::Blocked::RpmLimit { free_in, .. } => Some(Limited {
                kind: LimitKind::Rpm,
                free_in,
            }),
            super::health::Blocked::TpmLimit { free_in, .. } => Some(Limited {
                kind: LimitKind::Tpm,
                free_in,
            }),
        }
    }
}

/// A duration as people read it, keeping its unit at every size: `43 ms`, `1.4 s`, `2m05s`
/// (never `0.0s` for 43 ms). The routing log, `ask -v` and the TUI's panes all say it so.
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// The failures of one message with each repeat folded into its first occurrence, counted:
/// six identical `network: connection refused` become one with ` ×6`, in first-seen order.
pub(crate) fn collapse_repeats(parts: Vec<String>) -> Vec<String> {
    let mut seen: Vec<(String, usize)> = Vec::with_capacity(parts.len());
    for p in parts {
        match seen.iter_mut().find(|(s, _)| *s == p) {
            Some((_, n)) => *n += 1,
            None => seen.push((p, 1)),
        }
    }
    seen.into_iter()
        .map(|(p, n)| if n > 1 { format!("{p} ×{n}") } else { p })
        .collect()
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Ok,
    Failed,
    Cancelled,
}

/// One attempt, as `ask --json` and the TUI's badges report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub deployment: String,
    pub group: String,
    pub outcome: AttemptOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ErrorClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub ms: u64,
}

/// A successful request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatOutcome {
    pub request_id: u64,
    /// The whole answer (for `continue`, the kept part and the continuation).
    pub text: String,
    pub reasoning: String,
    /// The group that answered (differs from the requested one after a fallback).
    pub group: String,
    pub deployment: String,
    pub attempts: Vec<AttemptRecord>,
    pub ttft: Option<Duration>,
    pub total: Duration,
    /// Usage summed over every attempt that produced tokens.
    pub usage: Usage,
    /// `None` when a deployment that produced tokens has no known price.
    pub cost: Option<Usd>,
    pub finish_reason: Option<String>,
    /// The tool calls of the answer, whole (arguments reassembled from their fragments).
    pub tool_calls: Vec<ToolCall>,
    /// True when a group was tried again after a failed attempt (not when only a fallback
    /// group answered: that is `fell_back`).
    pub retried: bool,
    /// True when a group other than the requested one answered.
    pub fell_back: bool,
    /// True when the answer was continued by another attempt after a mid-stream failure.
    pub continued: bool,
    /// True when the answer came from the response cache (no upstream call, cost 0).
    pub cached: bool,
}

/// Why a request could not be answered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RouteError {
    pub request_id: u64,
    pub kind: RouteErrorKind,
    /// What went wrong, naming each attempt's failure.
    pub message: String,
    pub attempts: Vec<AttemptRecord>,
    /// When the earliest cooling deployment is free again, if that is why.
    pub retry_in: Option<Duration>,
    /// Text streamed before the failure (kept, never discarded).
    pub partial_text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteErrorKind {
    /// No model group or alias of that name.
    UnknownModel,
    /// Every deployment of every route is cooling down or at its limit.
    Unavailable,
    /// Every route was tried and failed.
    AllFailed,
    /// The last failure was the caller's fault (bad request, auth) and is not retried.
    Rejected,
    /// A budget is used up: `llmux.budget`, or every deployment's own or provider budget on
    /// every route. `retry_in` is when the first one resets.
    OverBudget,
}

/// What `Router::chat` yields, in order: route events and text as they happen, then exactly
/// one `Finished`.
#[derive(Debug, Clone, PartialEq)]
///
/// The big variants are boxed: every event moves through the request's outbox to its reader
/// several times, and at 280 bytes each move was a `memcpy` (a streamed token paid for the
/// size of the outcome it was not).
pub enum ChatEvent {
    /// Shared with the request log: one allocation, no copy, per event.
    Route(Arc<RouteEvent>),
    /// A piece of the answer.
    Delta(String),
    /// A piece of reasoning, kept apart.
    Reasoning(String),
    /// A piece of a tool call (the id and name with the first piece of each index).
    ToolCall(ToolCallDelta),
    /// What the upstream sent that llmux does not model (`system_fingerprint`, `logprobs`, the
    /// other choices of `n > 1`, an embedding's vectors), before the events of the same chunk:
    /// for an API front end of the same wire to pass back. Others ignore it.
    Passthrough(Box<Passthrough>),
    /// Token counts the attempt's upstream reported before its first token (Anthropic's
    /// `message_start`), for front ends that announce them up front. Others ignore it.
    Usage(Usage),
    /// `mid_stream_failover: restart`: the text shown so far is discarded; the answer starts over.
    Restart,
    Finished(Box<Result<ChatOutcome, RouteError>>),
}

impl ChatEvent {
    pub fn route(event: RouteEvent) -> ChatEvent {
        ChatEvent::Route(Arc::new(event))
    }

    pub fn finished(result: Result<ChatOutcome, RouteError>) -> ChatEvent {
        ChatEvent::Finished(Box::new(result))
    }
}

#[cfg(test)]
mod tests {
    use super::collapse_repeats;

    #[test]
    fn repeated_failures_fold_into_one_with_a_count() {
        let refused = "a (g): network: connection refused".to_string();
        let mut parts = vec![refused.clone(); 6];
        parts.insert(2, "b (g): server 503: down".to_string());
        assert_eq!(
            collapse_repeats(parts),
            [
                format!("{refused} ×6"),
                "b (g): server 503: down".to_string()
            ]
        );
        assert_eq!(collapse_repeats(vec!["x".into()]), ["x"]);
    }

    #[test]
    fn small_durations_keep_their_unit() {
        use super::human_ms;
        assert_eq!(human_ms(0), "0 ms");
        assert_eq!(human_ms(43), "43 ms");
        assert_eq!(human_ms(1450), "1.4 s");
        assert_eq!(human_ms(125_000), "2m05s");
        assert_eq!(human_ms(3 * 3_600_000 + 300_000), "3h05m");
    }
}
