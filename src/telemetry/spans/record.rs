//! What the request's route events add to its trace, one kind at a time: the request span's
//! attributes when it starts, an attempt's span when a deployment is called, its failure, and
//! the usage, cost and finish of the answer (split between the attempts that were paid for).

use std::time::SystemTime;

use opentelemetry::trace::{Link, Status};
use opentelemetry::{Array, KeyValue, StringValue, Value};

use super::{
    Attempt, Target, Trace, attempt, new_span_id, span_context, spent_by_others,
    spent_cost_by_others, strings, usage_attributes,
};
use crate::provider::Usage;
use crate::router::{RouteEvent, RouteEventKind};

impl Trace {
    /// `Request`: the request span's attributes (and Langfuse's trace name, tags, input).
    pub(super) fn requested(&mut self, ev: &RouteEvent, langfuse: bool) {
        let RouteEventKind::Request {
            requested,
            prompt_tokens,
            tags,
        } = &ev.kind
        else {
            return;
        };
        self.requested = Some(requested.clone());
        self.attributes.extend([
            KeyValue::new("gen_ai.operation.name", self.operation),
            KeyValue::new("gen_ai.request.model", requested.clone()),
            KeyValue::new("llmux.group", ev.group.clone()),
            KeyValue::new("llmux.prompt_tokens_estimate", *prompt_tokens as i64),
        ]);
        if !tags.is_empty() {
            self.attributes
                .push(KeyValue::new("llmux.tags", strings(tags)));
        }
        if langfuse {
            self.attributes.extend([
                KeyValue::new("langfuse.observation.type", "span"),
                KeyValue::new("langfuse.trace.name", format!("llmux {requested}")),
            ]);
            if !tags.is_empty() {
                self.attributes
                    .push(KeyValue::new("langfuse.trace.tags", strings(tags)));
            }
        }
        if let Some(input) = self.input.clone() {
            self.attributes
                .push(KeyValue::new("gen_ai.input.messages", input.clone()));
            if langfuse {
                self.attributes
                    .push(KeyValue::new("langfuse.observation.input", input.clone()));
                self.attributes
                    .push(KeyValue::new("langfuse.trace.input", input));
            }
        }
    }

    /// `Attempt`: a span for the deployment called, linked to the attempt it continues.
    pub(super) fn attempt_started(
        &mut self,
        ev: &RouteEvent,
        at: SystemTime,
        target: Option<Target>,
        dep: &str,
        langfuse: bool,
    ) {
        let (provider, model) = target
            .map(|target| (target.provider, target.model))
            .unwrap_or_else(|| (String::new(), dep.to_string()));
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", self.operation),
            KeyValue::new("gen_ai.system", provider.clone()),
            KeyValue::new("gen_ai.provider.name", provider),
            KeyValue::new("gen_ai.request.model", model.clone()),
            KeyValue::new("llmux.group", ev.group.clone()),
            KeyValue::new("llmux.deployment", dep.to_string()),
            KeyValue::new("llmux.attempt", i64::from(ev.attempt)),
        ];
        let mut links = Vec::new();
        if std::mem::take(&mut self.continues) {
            attributes.push(KeyValue::new("llmux.continues", true));
            if let Some(broken) = self.attempts.last() {
                links.push(Link::new(
                    span_context(self.trace_id, broken.span_id),
                    vec![KeyValue::new("llmux.link", "continues")],
                    0,
                ));
            }
        }
        if langfuse {
            attributes.extend([
                KeyValue::new("langfuse.observation.type", "generation"),
                KeyValue::new("langfuse.observation.model.name", model.clone()),
            ]);
            if let Some(input) = &self.input {
                attributes.push(KeyValue::new("langfuse.observation.input", input.clone()));
            }
        }
        self.attempts.push(Attempt {
            number: ev.attempt,
            span_id: new_span_id(),
            name: format!("{} {model}", self.operation),
            start: at,
            end: None,
            attributes,
            events: Vec::new(),
            links,
            status: Status::Unset,
        });
    }

    /// `Failure`: the attempt ends in error, with its class and status.
    pub(super) fn attempt_failed(&mut self, ev: &RouteEvent, at: SystemTime, langfuse: bool) {
        let RouteEventKind::Failure {
            class,
            status,
            message,
            after_tokens,
        } = &ev.kind
        else {
            return;
        };
        self.last_error = Some(class.name());
        if let Some(a) = attempt(self, ev.attempt) {
            a.end = Some(at);
            a.status = Status::error(message.clone());
            a.attributes.push(KeyValue::new("error.type", class.name()));
            if let Some(s) = status {
                a.attributes
                    .push(KeyValue::new("http.response.status_code", i64::from(*s)));
            }
            if *after_tokens {
                a.attributes.push(KeyValue::new("llmux.after_tokens", true));
            }
            if langfuse {
                a.attributes.extend([
                    KeyValue::new("langfuse.observation.level", "ERROR"),
                    KeyValue::new("langfuse.observation.status_message", message.clone()),
                ]);
            }
        }
    }

    /// `Done`: the request's usage, cost and finish; the answering attempt's share of them.
    pub(super) fn done(
        &mut self,
        ev: &RouteEvent,
        at: SystemTime,
        target: Option<Target>,
        dep: &str,
        langfuse: bool,
    ) {
        let RouteEventKind::Done {
            usage,
            cost_usd,
            ttft_ms,
            total_ms,
            finish_reason,
            cached,
        } = &ev.kind
        else {
            return;
        };
        let cost = cost_usd.map(|c| c.as_f64());
        let model = target.map(|target| target.model);
        self.success = true;
        self.status = Status::Ok;
        let reasons = finish_reason
            .iter()
            .map(|r| StringValue::from(r.clone()))
            .collect::<Vec<_>>();
        let mut root = vec![
            KeyValue::new("gen_ai.usage.input_tokens", usage.input as i64),
            KeyValue::new("gen_ai.usage.output_tokens", usage.output as i64),
            KeyValue::new("llmux.total_ms", *total_ms as i64),
        ];
        if !reasons.is_empty() {
            root.push(KeyValue::new(
                "gen_ai.response.finish_reasons",
                Value::Array(Array::String(reasons.clone())),
            ));
        }
        if let Some(c) = cost {
            root.push(KeyValue::new("llmux.cost_usd", c));
        }
        if let Some(ms) = ttft_ms {
            root.push(KeyValue::new("llmux.ttft_ms", *ms as i64));
        }
        if *cached {
            root.push(KeyValue::new("llmux.cached", true));
        }
        if let Some(m) = &model {
            root.push(KeyValue::new("gen_ai.response.model", m.clone()));
            root.push(KeyValue::new("llmux.deployment", dep.to_string()));
        }
        self.attributes.extend(root);
        if !*cached {
            // The request's usage covers every attempt; this one's is what is left
            // after the others' `Spent`.
            let (spent_in, spent_out) = spent_by_others(&self.attempts, ev.attempt);
            let spent_cost = spent_cost_by_others(&self.attempts, ev.attempt);
            if let Some(a) = attempt(self, ev.attempt) {
                a.end = Some(at);
                a.status = Status::Ok;
                if let Some(m) = model {
                    a.attributes.push(KeyValue::new("gen_ai.response.model", m));
                }
                if !reasons.is_empty() {
                    a.attributes.push(KeyValue::new(
                        "gen_ai.response.finish_reasons",
                        Value::Array(Array::String(reasons)),
                    ));
                }
                let mine = Usage {
                    input: usage.input.saturating_sub(spent_in),
                    output: usage.output.saturating_sub(spent_out),
                    ..*usage
                };
                let my_cost = cost.map(|c| (c - spent_cost).max(0.0));
                usage_attributes(&mut a.attributes, &mine, my_cost, langfuse);
            }
        }
    }
}
