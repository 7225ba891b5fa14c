//! Route events → spans: one trace per request, built after the fact from the events the router
//! published (their timestamps, not the time they are read), on the telemetry task.
//!
//! A request is a span (`chat <requested>`) whose children are its attempts (`chat <model>`,
//! one per deployment called). Retries, fallbacks, cooldowns and a mid-stream break are events
//! on the request's span; an attempt that continues a broken answer links to the attempt it
//! continues. Attributes follow the OpenTelemetry GenAI conventions (`gen_ai.*`), then
//! llmux's own (`llmux.*`), and, with Langfuse on, the `langfuse.*` ones it maps to
//! generations, usage and cost. A request's spans leave [`Builder::take`] together once it
//! ends (answered, failed or cancelled); nothing is kept of it after that.

use crate::calendar::civil_from_days;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use crate::config::Config;
use crate::provider::Usage;
use crate::router::{RouteEvent, RouteEventKind};

mod record;

/// What the subscriber hands the telemetry task, in the order the router said it.
#[derive(Debug)]
pub(crate) enum Input {
    /// A request begins: the caller's trace context, and its messages when content is captured.
    Start {
        request_id: u64,
        parent: Option<SpanContext>,
        /// False when the caller's trace is not sampled: nothing of the request is sent.
        sampled: bool,
        operation: &'static str,
        input: Option<String>,
    },
    Event(Arc<RouteEvent>),
    /// A request ended (not sent for a cancelled one: its `Cancelled` event ends it).
    Finish {
        request_id: u64,
        output: Option<String>,
    },
}

/// A request's spans, once it ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) spans: Vec<SpanData>,
    /// Answered (`success_callback`), else failed or cancelled (`failure_callback`).
    pub(crate) success: bool,
}

/// What each deployment is, for the attempt spans.
#[derive(Debug, Clone)]
struct Target {
    provider: String,
    model: String,
}

/// The traces under way and what is needed to finish them.
#[derive(Debug)]
pub(crate) struct Builder {
    open: HashMap<u64, Trace>,
    targets: HashMap<String, Target>,
    scope: InstrumentationScope,
    langfuse: bool,
}

/// One request's trace so far.
#[derive(Debug)]
struct Trace {
    trace_id: TraceId,
    span_id: SpanId,
    parent: Option<SpanContext>,
    operation: &'static str,
    start: Option<SystemTime>,
    end: SystemTime,
    requested: Option<String>,
    attributes: Vec<KeyValue>,
    events: Vec<Event>,
    attempts: Vec<Attempt>,
    status: Status,
    success: bool,
    /// The last failure's class, for `error.type` when every route failed.
    last_error: Option<&'static str>,
    cooldowns: u64,
    /// A mid-stream break was continued: the next attempt links to the broken one.
    continues: bool,
    input: Option<String>,
    sampled: bool,
}

/// One deployment called.
#[derive(Debug)]
struct Attempt {
    number: u32,
    span_id: SpanId,
    name: String,
    start: SystemTime,
    end: Option<SystemTime>,
    attributes: Vec<KeyValue>,
    events: Vec<Event>,
    links: Vec<Link>,
    status: Status,
}

impl Builder {
    pub(crate) fn new(config: &Config, langfuse: bool) -> Builder {
        let targets = config
            .deployments
            .iter()
            .map(|d| {
                let t = Target {
                    provider: d.provider.clone(),
                    model: d.model.clone(),
                };
                (d.id.clone(), t)
            })
            .collect();
        Builder {
            open: HashMap::new(),
            targets,
            scope: InstrumentationScope::builder("llmux")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            langfuse,
        }
    }

    /// Takes one input; returns the request's spans when it ended.
    pub(crate) fn take(&mut self, input: Input) -> Option<Finished> {
        match input {
            Input::Start {
                request_id,
                parent,
                sampled,
                operation,
                input,
            } => {
                let t = self.trace(request_id);
                t.parent = parent;
                t.sampled = sampled;
                if let Some(p) = &t.parent {
                    t.trace_id = p.trace_id();
                }
                t.operation = operation;
                t.input = input;
                None
            }
            Input::Event(ev) => self.event(&ev),
            Input::Finish { request_id, output } => {
                let mut t = self.open.remove(&request_id)?;
                if let Some(out) = output {
                    t.attributes
                        .push(KeyValue::new("gen_ai.output.messages", out.clone()));
                    if self.langfuse {
                        t.attributes
                            .push(KeyValue::new("langfuse.observation.output", out.clone()));
                        t.attributes
                            .push(KeyValue::new("langfuse.trace.output", out.clone()));
                        if let Some(a) =
                            t.attempts.iter_mut().rev().find(|a| a.status == Status::Ok)
                        {
                            a.attributes
                                .push(KeyValue::new("langfuse.observation.output", out));
                        }
                    }
                }
                self.finish(t)
            }
        }
    }

    fn trace(&mut self, request_id: u64) -> &mut Trace {
        self.open.entry(request_id).or_insert_with(|| Trace {
            trace_id: TraceId::from_bytes(rand::random()),
            span_id: new_span_id(),
            parent: None,
            operation: "chat",
            start: None,
            end: UNIX_EPOCH,
            requested: None,
            attributes: Vec::new(),
            events: Vec::new(),
            attempts: Vec::new(),
            status: Status::Unset,
            success: false,
            last_error: None,
            cooldowns: 0,
            continues: false,
            input: None,
            sampled: true,
        })
    }

    fn event(&mut self, ev: &RouteEvent) -> Option<Finished> {
        // Shared-state news belongs to no request.
        if ev.request_id == 0 {
            return None;
        }
        let at = time_of(ev.at_unix_ms);
        let target = ev
            .deployment
            .as_ref()
            .and_then(|d| self.targets.get(d))
            .cloned();
        let langfuse = self.langfuse;
        let t = self.trace(ev.request_id);
        t.start
            .get_or_insert_with(|| at - Duration::from_millis(ev.elapsed_ms));
        t.end = t.end.max(at);
        let dep = ev.deployment.clone().unwrap_or_default();
        match &ev.kind {
            RouteEventKind::Request { .. } => t.requested(ev, langfuse),
            RouteEventKind::Attempt => t.attempt_started(ev, at, target, &dep, langfuse),
            RouteEventKind::FirstToken { ttft_ms } => {
                if let Some(a) = attempt(t, ev.attempt) {
                    a.events
                        .push(Event::new("gen_ai.first_token", at, vec![], 0));
                    a.attributes
                        .push(KeyValue::new("llmux.ttft_ms", *ttft_ms as i64));
                    if langfuse {
                        a.attributes.push(KeyValue::new(
                            "langfuse.observation.completion_start_time",
                            rfc3339(at),
                        ));
                    }
                }
            }
            RouteEventKind::Failure { .. } => t.attempt_failed(ev, at, langfuse),
            RouteEventKind::Cooldown { secs, reason } => {
                t.cooldowns += 1;
                t.events.push(Event::new(
                    "llmux.cooldown",
                    at,
                    vec![
                        KeyValue::new("llmux.deployment", dep),
                        KeyValue::new("llmux.cooldown_s", *secs),
                        KeyValue::new("llmux.reason", reason.clone()),
                    ],
                    0,
                ));
            }
            RouteEventKind::Retry { delay_ms } => t.events.push(Event::new(
                "llmux.retry",
                at,
                vec![
                    KeyValue::new("llmux.group", ev.group.clone()),
                    KeyValue::new("llmux.delay_ms", *delay_ms as i64),
                ],
                0,
            )),
            RouteEventKind::Unavailable {
                reason,
                retry_in_ms,
            } => {
                let mut attrs = vec![
                    KeyValue::new("llmux.group", ev.group.clone()),
                    KeyValue::new("llmux.reason", reason.clone()),
                ];
                if let Some(ms) = retry_in_ms {
                    attrs.push(KeyValue::new("llmux.retry_in_ms", *ms as i64));
                }
                t.events.push(Event::new("llmux.unavailable", at, attrs, 0));
            }
            RouteEventKind::Fallback { from, to, reason } => t.events.push(Event::new(
                "llmux.fallback",
                at,
                vec![
                    KeyValue::new("llmux.from", from.clone()),
                    KeyValue::new("llmux.to", to.clone()),
                    KeyValue::new("llmux.reason", reason.name()),
                ],
                0,
            )),
            RouteEventKind::MidStream { mode, kept_chars } => {
                let mode = match mode {
                    crate::router::MidStreamFailoverName::Continue => "continue",
                    crate::router::MidStreamFailoverName::Restart => "restart",
                    crate::router::MidStreamFailoverName::Off => "off",
                };
                t.continues = mode == "continue";
                t.events.push(Event::new(
                    "llmux.mid_stream",
                    at,
                    vec![
                        KeyValue::new("llmux.mode", mode),
                        KeyValue::new("llmux.kept_chars", *kept_chars as i64),
                    ],
                    0,
                ));
            }
            RouteEventKind::Spent { usage, cost_usd } => {
                if let Some(a) = attempt(t, ev.attempt) {
                    usage_attributes(
                        &mut a.attributes,
                        usage,
                        cost_usd.map(|c| c.as_f64()),
                        langfuse,
                    );
                }
            }
            RouteEventKind::Done { .. } => t.done(ev, at, target, &dep, langfuse),
            RouteEventKind::Failed { message } => {
                t.status = Status::error(message.clone());
                let class = t.last_error.unwrap_or("route_failed");
                t.attributes.push(KeyValue::new("error.type", class));
            }
            RouteEventKind::Cancelled => {
                t.attributes.push(KeyValue::new("error.type", "cancelled"));
                t.status = Status::error("cancelled by the caller");
                let t = self.open.remove(&ev.request_id)?;
                return self.finish(t);
            }
            RouteEventKind::Budget {
                scope,
                percent,
                period,
                ..
            } => t.events.push(Event::new(
                "llmux.budget",
                at,
                vec![
                    KeyValue::new("llmux.scope", scope.clone()),
                    KeyValue::new("llmux.percent", i64::from(*percent)),
                    KeyValue::new("llmux.period", period.clone()),
                ],
                0,
            )),
            RouteEventKind::SharedState { .. } => {}
        }
        None
    }

    /// The request's span and its attempts', as exported; `None` when it is not sampled.
    fn finish(&self, mut t: Trace) -> Option<Finished> {
        if !t.sampled {
            return None;
        }
        let start = t.start.unwrap_or(t.end);
        let end = t.end.max(start);
        let name = format!(
            "{} {}",
            t.operation,
            t.requested.as_deref().unwrap_or("unknown")
        );
        t.attributes.extend([
            KeyValue::new("llmux.attempts", t.attempts.len() as i64),
            KeyValue::new("llmux.cooldowns", t.cooldowns as i64),
        ]);
        let trace_state = t
            .parent
            .as_ref()
            .map(|p| p.trace_state().clone())
            .unwrap_or_default();
        let root_context = SpanContext::new(
            t.trace_id,
            t.span_id,
            TraceFlags::SAMPLED,
            false,
            trace_state.clone(),
        );
        let mut spans = Vec::with_capacity(t.attempts.len() + 1);
        spans.push(self.span(
            root_context,
            t.parent.as_ref().map(|p| (p.span_id(), true)),
            if t.parent.is_some() {
                SpanKind::Server
            } else {
                SpanKind::Internal
            },
            name,
            (start, end),
            t.attributes,
            t.events,
            Vec::new(),
            t.status,
        ));
        for a in t.attempts {
            let context = SpanContext::new(
                t.trace_id,
                a.span_id,
                TraceFlags::SAMPLED,
                false,
                trace_state.clone(),
            );
            let a_end = a.end.unwrap_or(end).max(a.start);
            spans.push(self.span(
                context,
                Some((t.span_id, false)),
                SpanKind::Client,
                a.name,
                (a.start, a_end),
                a.attributes,
                a.events,
                a.links,
                a.status,
            ));
        }
        Some(Finished {
            spans,
            success: t.success,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        &self,
        span_context: SpanContext,
        parent: Option<(SpanId, bool)>,
        span_kind: SpanKind,
        name: String,
        (start_time, end_time): (SystemTime, SystemTime),
        attributes: Vec<KeyValue>,
        events: Vec<Event>,
        links: Vec<Link>,
        status: Status,
    ) -> SpanData {
        let mut span_events = SpanEvents::default();
        span_events.events = events;
        let mut span_links = SpanLinks::default();
        span_links.links = links;
        let (parent_span_id, parent_span_is_remote) = parent.unwrap_or((SpanId::INVALID, false));
        SpanData {
            span_context,
            parent_span_id,
            parent_span_is_remote,
            span_kind,
            name: Cow::Owned(name),
            start_time,
            end_time,
            attributes,
            dropped_attributes_count: 0,
            events: span_events,
            links: span_links,
            status,
            instrumentation_scope: self.scope.clone(),
        }
    }
}

/// The attempt numbered `n` (the latest of that number).
fn attempt(t: &mut Trace, n: u32) -> Option<&mut Attempt> {
    t.attempts.iter_mut().rev().find(|a| a.number == n)
}

/// Tokens the other attempts were billed for (`Spent`), out of the request's total.
fn spent_by_others(attempts: &[Attempt], answered: u32) -> (u64, u64) {
    let read = |a: &Attempt, key: &str| {
        a.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .and_then(|kv| match kv.value {
                Value::I64(n) => u64::try_from(n).ok(),
                _ => None,
            })
            .unwrap_or(0)
    };
    attempts
        .iter()
        .filter(|a| a.number != answered)
        .fold((0, 0), |(i, o), a| {
            (
                i + read(a, "gen_ai.usage.input_tokens"),
                o + read(a, "gen_ai.usage.output_tokens"),
            )
        })
}

fn spent_cost_by_others(attempts: &[Attempt], answered: u32) -> f64 {
    attempts
        .iter()
        .filter(|a| a.number != answered)
        .flat_map(|a| a.attributes.iter())
        .filter(|kv| kv.key.as_str() == "llmux.cost_usd")
        .map(|kv| match kv.value {
            Value::F64(c) => c,
            _ => 0.0,
        })
        .sum()
}

/// Token counts and cost on an attempt, as the conventions and Langfuse name them.
fn usage_attributes(out: &mut Vec<KeyValue>, usage: &Usage, cost: Option<f64>, langfuse: bool) {
    out.extend([
        KeyValue::new("gen_ai.usage.input_tokens", usage.input as i64),
        KeyValue::new("gen_ai.usage.output_tokens", usage.output as i64),
    ]);
    if usage.estimated {
        out.push(KeyValue::new("llmux.usage_estimated", true));
    }
    if let Some(c) = cost {
        out.push(KeyValue::new("llmux.cost_usd", c));
    }
    if langfuse {
        out.push(KeyValue::new(
            "langfuse.observation.usage_details",
            format!(
                r#"{{"input":{},"output":{},"total":{}}}"#,
                usage.input,
                usage.output,
                usage.input + usage.output
            ),
        ));
        if let Some(c) = cost {
            out.push(KeyValue::new(
                "langfuse.observation.cost_details",
                format!(r#"{{"total":{c}}}"#),
            ));
        }
    }
}

fn strings(items: &[String]) -> Value {
    Value::Array(Array::String(
        items.iter().map(|s| StringValue::from(s.clone())).collect(),
    ))
}

fn new_span_id() -> SpanId {
    loop {
        let id = SpanId::from_bytes(rand::random());
        if id != SpanId::INVALID {
            return id;
        }
    }
}

fn span_context(trace_id: TraceId, span_id: SpanId) -> SpanContext {
    SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

fn time_of(unix_ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(unix_ms)
}

/// `at` as RFC 3339 in UTC with milliseconds (Langfuse's completion start time).
fn rfc3339(at: SystemTime) -> String {
    let ms = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    )
}

/// A W3C `traceparent` (`00-<trace id>-<span id>-<flags>`) and its `tracestate` as the
/// remote parent of a request's trace; `None` when it does not parse, and for a parent that
/// is not sampled (the request is then not traced either, as OpenTelemetry's default
/// parent-based sampler does).
pub(crate) fn parse_traceparent(
    traceparent: &str,
    tracestate: Option<&str>,
) -> Option<Option<SpanContext>> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(version, 2)
        || version.eq_ignore_ascii_case("ff")
        || !hex(trace, 32)
        || !hex(span, 16)
        || !hex(flags, 2)
    {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if flags & 1 == 0 {
        return Some(None);
    }
    let state = tracestate
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    Some(Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::SAMPLED,
        true,
        state,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_parses_and_a_bad_one_does_not() {
        let ok = parse_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            None,
        );
        let ctx = ok.flatten().unwrap();
        assert_eq!(
            format!("{:032x}", ctx.trace_id()),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(ctx.is_remote());
        let unsampled = parse_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            None,
        );
        assert_eq!(unsampled, Some(None));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(parse_traceparent(bad, None), None, "{bad}");
        }
    }

    #[test]
    fn times_read_as_rfc3339() {
        assert_eq!(rfc3339(time_of(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(time_of(1_709_251_199_123)),
            "2024-02-29T23:59:59.123Z"
        );
    }
}
