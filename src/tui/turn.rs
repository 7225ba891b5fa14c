//! One request's life in the app: send (or regenerate), the stream of `ChatEvent`s tagged
//! with the request they belong to, and its end (done, failed, cancelled). Events of a
//! request that is no longer current are dropped. The session file gets the user message at
//! send, the streaming text at least twice a second, and the final answer at the end.

use std::time::Duration;

use tokio::time::Instant;

use crate::money::Usd;
use crate::provider::Usage;
use crate::router::{ChatEvent, MidStreamFailoverName, RouteErrorKind, RouteEventKind};
use crate::store::session::{self, Answer, AnswerState, Badges, Entry, Record, UserMessage};

use super::action::{Effect, RequestTag};
use super::app::App;

/// Streaming text is written to the session at least this often (ticks come every 250 ms,
/// so nothing waits on disk longer than half a second).
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// The request being answered.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlight {
    pub tag: RequestTag,
    pub answer_id: u64,
    /// The group asked.
    pub group: String,
    /// The group being tried now (differs after a fallback).
    pub routed_group: String,
    pub started: Instant,
    pub first_token: Option<Instant>,
    pub attempt: u32,
    pub deployment: Option<String>,
    /// Text not yet written to the session file.
    pub unflushed: String,
    pub last_flush: Instant,
    pub reasoning_chars: usize,
    /// The latest routing news (failure, retry, fallback) for the live pane.
    pub news: Option<String>,
    pub badges: Badges,
    /// The router's id of the request, from its first event.
    pub request_id: Option<u64>,
    /// What attempts that did not answer were billed (`Spent` events): a failed request's
    /// cost. The cost is `None` once one had no known price.
    pub spent: Option<(Usage, Option<Usd>)>,
}

impl InFlight {
    /// Output tokens so far (estimated from the text).
    pub fn tokens(&self, text: &str) -> u64 {
        crate::provider::estimate_tokens(text)
    }

    /// Notes the first token at `at`; on that first one, who answers goes to the session
    /// file, so an answer cut by a crash keeps its header.
    fn first_token(&mut self, at: Instant) -> Option<Effect> {
        if self.first_token.is_some() {
            return None;
        }
        self.first_token = Some(at);
        Some(self.route_record())
    }

    fn route_record(&self) -> Effect {
        Effect::Persist(Record::Route {
            id: self.answer_id,
            group: self.group.clone(),
            answered_group: Some(self.routed_group.clone()),
            deployment: self.deployment.clone(),
            ttft_ms: self
                .first_token
                .map(|t| t.duration_since(self.started).as_millis() as u64),
        })
    }
}

impl App {
    pub(crate) fn answer_mut(&mut self, id: u64) -> Option<&mut Answer> {
        self.entries.iter_mut().rev().find_map(|e| match e {
            Entry::Answer(a) if a.id == id => Some(a),
            _ => None,
        })
    }

    pub(crate) fn answer(&self, id: u64) -> Option<&Answer> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Answer(a) if a.id == id => Some(a),
            _ => None,
        })
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends the composer's text to the current group.
    pub(crate) fn send(&mut self) -> Vec<super::action::Effect> {
        let text = self.draft();
        self.send_text(text)
    }

    /// Sends `text` (the composer's, or what a command made of it) to the current group.
    /// While an answer streams, says so (and which key cancels it) and returns true: nothing
    /// new is sent until it ends.
    pub(crate) fn refused_while_streaming(&mut self) -> bool {
        if self.inflight.is_none() {
            return false;
        }
        let cancel = self.keymap.label(super::action::Command::Cancel);
        self.toast(
            format!("an answer is still streaming · {cancel} cancels it"),
            true,
        );
        true
    }

    pub(crate) fn send_text(&mut self, text: String) -> Vec<super::action::Effect> {
        self.send_message(text, Vec::new())
    }

    /// [`send_text`](Self::send_text) with `images` after the text (kept with the message,
    /// so that every later request of the conversation sends them too).
    pub(crate) fn send_message(
        &mut self,
        text: String,
        images: Vec<session::Image>,
    ) -> Vec<super::action::Effect> {
        let recorded = images.clone();
        self.send_message_recorded(text, images, recorded)
    }

    /// [`send_message`](Self::send_message), its record writing the images as `recorded`
    /// (named, [`session::Image::from`], where the session file holds them already).
    pub(crate) fn send_message_recorded(
        &mut self,
        text: String,
        images: Vec<session::Image>,
        recorded: Vec<session::Image>,
    ) -> Vec<super::action::Effect> {
        if text.trim().is_empty() {
            self.unchanged();
            return Vec::new();
        }
        if self.refused_while_streaming() {
            return Vec::new();
        }
        self.sent.push(text.clone());
        self.recall = None;
        self.set_composer_text("");
        let mut fx = self.save_draft();
        let id = self.take_id();
        let group = self.current_group().to_string();
        self.entries.push(Entry::User(UserMessage {
            id,
            text: text.clone(),
            group: group.clone(),
            images,
        }));
        fx.push(Effect::Persist(Record::User {
            id,
            text,
            group,
            at_unix_ms: session::unix_ms((self.clock)()),
            images: recorded,
        }));
        let messages = session::history(&self.entries);
        fx.extend(self.start_request(messages));
        fx
    }

    /// Asks the last question again on the current group; earlier answers stay visible.
    pub(crate) fn regenerate(&mut self) -> Vec<Effect> {
        if self.inflight.is_some() {
            self.toast("an answer is still streaming", true);
            return Vec::new();
        }
        let Some(last_user) = self
            .entries
            .iter()
            .rposition(|e| matches!(e, Entry::User(_)))
        else {
            self.toast("nothing to regenerate yet", true);
            return Vec::new();
        };
        let messages = session::history(&self.entries[..=last_user]);
        let group = self.current_group().to_string();
        self.toast(format!("asking {group} again"), false);
        self.start_request(messages)
    }

    fn start_request(&mut self, mut messages: Vec<crate::provider::Message>) -> Vec<Effect> {
        let tag = self.next_tag;
        self.next_tag += 1;
        let answer_id = self.take_id();
        let group = self.current_group().to_string();
        self.leave_out_images(&group, &mut messages);
        self.entries.push(Entry::Answer(Answer {
            id: answer_id,
            group: group.clone(),
            ..Answer::default()
        }));
        self.inflight = Some(InFlight {
            tag,
            answer_id,
            group: group.clone(),
            routed_group: group.clone(),
            started: self.now,
            first_token: None,
            attempt: 0,
            deployment: None,
            unflushed: String::new(),
            last_flush: self.now,
            reasoning_chars: 0,
            news: None,
            badges: Badges::default(),
            request_id: None,
            spent: None,
        });
        self.view.scroll_bottom();
        vec![Effect::StartChat {
            tag,
            group,
            request: self.request_of(messages),
        }]
    }

    /// Earlier messages' images are left out of a request to a group that takes none (their
    /// `[image …]` lines stay in the text), and the status line says so: the conversation
    /// goes on there rather than being refused.
    pub(crate) fn leave_out_images(
        &mut self,
        group: &str,
        messages: &mut [crate::provider::Message],
    ) {
        if !self.b.windows.takes_images(group)
            && crate::store::session_history::without_images(messages)
        {
            self.toast(
                format!("{group} takes no images: the conversation's images are left out"),
                false,
            );
        }
    }

    /// Writes the streaming text when it has waited long enough.
    pub(crate) fn flush_if_due(&mut self) -> Vec<Effect> {
        let now = self.now;
        let Some(f) = &mut self.inflight else {
            return Vec::new();
        };
        if f.unflushed.is_empty() || now.duration_since(f.last_flush) < FLUSH_EVERY {
            return Vec::new();
        }
        f.last_flush = now;
        vec![Effect::Persist(Record::Chunk {
            id: f.answer_id,
            text: std::mem::take(&mut f.unflushed),
        })]
    }

    /// Ends the request in flight with `state` (cancelled): drops it, keeps and saves the
    /// partial answer.
    pub(crate) fn abandon_inflight(&mut self, state: AnswerState) -> Vec<Effect> {
        let Some(f) = self.inflight.take() else {
            return Vec::new();
        };
        let now = self.now;
        let mut fx = vec![Effect::Cancel(f.tag)];
        if let Some(a) = self.answer_mut(f.answer_id) {
            a.state = state;
            a.deployment = f.deployment.clone();
            a.answered_group = Some(f.routed_group.clone());
            a.ttft_ms = f
                .first_token
                .map(|t| t.duration_since(f.started).as_millis() as u64);
            a.total_ms = Some(now.duration_since(f.started).as_millis() as u64);
            a.badges = f.badges;
            a.usage = f.spent.map(|s| s.0);
            a.cost = f.spent.and_then(|s| s.1);
            fx.push(Effect::Persist(Record::Answer(a.clone())));
        }
        // Attempts that failed before are counted now; the one cut now is counted by the
        // router as its stream is dropped, and its `Spent` event completes this answer.
        if let Some(s) = f.spent {
            self.add_spend(s.1);
        }
        if let Some(rid) = f.request_id.filter(|_| f.first_token.is_some()) {
            self.awaiting_spend.push((rid, f.answer_id));
            let n = self.awaiting_spend.len();
            self.awaiting_spend
                .drain(..n.saturating_sub(AWAITING_SPEND_KEEP));
        }
        fx
    }

    pub(crate) fn chat_event(
        &mut self,
        tag: RequestTag,
        event: ChatEvent,
        at: Instant,
    ) -> Vec<Effect> {
        let current = self.inflight.as_ref().is_some_and(|f| f.tag == tag);
        if !current {
            // A late event of a cancelled or replaced request.
            self.unchanged();
            return Vec::new();
        }
        self.now = self.now.max(at);
        match event {
            ChatEvent::Route(ev) => {
                let Some(f) = &mut self.inflight else {
                    return Vec::new();
                };
                route_news(f, &ev);
                // Another deployment takes over an answer already under way: the session
                // file learns who is answering now.
                let fx: Vec<Effect> = (f.first_token.is_some()
                    && matches!(ev.kind, RouteEventKind::Attempt))
                .then(|| f.route_record())
                .into_iter()
                .collect();
                let (id, dep, group) = (f.answer_id, f.deployment.clone(), f.routed_group.clone());
                if let Some(a) = self.answer_mut(id) {
                    a.deployment = dep;
                    a.answered_group = Some(group);
                }
                fx
            }
            ChatEvent::Delta(text) => {
                let Some(f) = &mut self.inflight else {
                    return Vec::new();
                };
                let mut fx: Vec<Effect> = f.first_token(at).into_iter().collect();
                f.unflushed.push_str(&text);
                let id = f.answer_id;
                if let Some(a) = self.answer_mut(id) {
                    a.text.push_str(&text);
                }
                fx.extend(self.flush_if_due());
                fx
            }
            ChatEvent::Reasoning(text) => {
                let Some(f) = &mut self.inflight else {
                    return Vec::new();
                };
                f.reasoning_chars += text.chars().count();
                f.first_token(at).into_iter().collect()
            }
            ChatEvent::ToolCall(delta) => {
                let Some(f) = &mut self.inflight else {
                    return Vec::new();
                };
                let fx = f.first_token(at).into_iter().collect();
                let id = f.answer_id;
                if let Some(a) = self.answer_mut(id) {
                    apply_tool_delta(&mut a.tool_calls, &delta);
                }
                fx
            }
            // Only API front ends (`llmux serve`) use these: nothing to show.
            ChatEvent::Passthrough(_) | ChatEvent::Usage(_) => {
                self.unchanged();
                Vec::new()
            }
            ChatEvent::Restart => {
                let Some(f) = &mut self.inflight else {
                    return Vec::new();
                };
                f.unflushed.clear();
                f.badges.restarted = true;
                let id = f.answer_id;
                if let Some(a) = self.answer_mut(id) {
                    a.text.clear();
                    a.tool_calls.clear();
                }
                vec![Effect::Persist(Record::Restart { id })]
            }
            ChatEvent::Finished(result) => {
                let Some(f) = self.inflight.take() else {
                    return Vec::new();
                };
                let spend: Option<Option<Usd>>;
                let record = {
                    let Some(a) = self.answer_mut(f.answer_id) else {
                        return Vec::new();
                    };
                    a.badges = f.badges;
                    match *result {
                        Ok(o) => {
                            answered(a, o);
                            spend = Some(a.cost);
                        }
                        Err(e) => {
                            if e.partial_text.len() > a.text.len() {
                                a.text = e.partial_text.clone();
                            }
                            a.state = AnswerState::Failed;
                            // Skipped for limits, budgets or cooldowns: say when it frees up.
                            a.error = Some(match e.retry_in {
                                Some(d) if e.kind == RouteErrorKind::Unavailable => {
                                    format!(
                                        "{} · next free in {}",
                                        e.message,
                                        crate::router::human_ms(d.as_millis() as u64)
                                    )
                                }
                                _ => e.message.clone(),
                            });
                            a.deployment = f.deployment.clone();
                            a.answered_group = Some(f.routed_group.clone());
                            a.ttft_ms = f
                                .first_token
                                .map(|t| t.duration_since(f.started).as_millis() as u64);
                            a.total_ms = Some(at.duration_since(f.started).as_millis() as u64);
                            a.usage = f.spent.map(|s| s.0);
                            a.cost = f.spent.and_then(|s| s.1);
                            spend = f.spent.map(|s| s.1);
                        }
                    }
                    Record::Answer(a.clone())
                };
                if let Some(cost) = spend {
                    self.add_spend(cost);
                }
                vec![Effect::Persist(record), Effect::RefreshStatus]
            }
        }
    }

    /// Adds an answer's cost to the session's (`None`: unpriced, shown as `+?`).
    pub(crate) fn add_spend(&mut self, cost: Option<Usd>) {
        match cost {
            Some(c) => self.session_spent += c,
            None => self.session_cost_unknown = true,
        }
    }

    /// The session's cost so far, with whether some of it had no known price.
    pub fn session_cost(&self) -> super::fmt::Spend {
        super::fmt::Spend {
            known: self.session_spent,
            unpriced: self.session_cost_unknown,
        }
    }

    /// A cancelled answer's cut attempt, counted by the router as the stream was dropped
    /// (`Spent`, from the routing feed): the answer and the session take it in.
    pub(crate) fn cancelled_spend(&mut self, ev: &crate::router::RouteEvent) -> Vec<Effect> {
        let RouteEventKind::Spent { usage, cost_usd } = &ev.kind else {
            return Vec::new();
        };
        let Some(i) = self
            .awaiting_spend
            .iter()
            .position(|(rid, _)| *rid == ev.request_id)
        else {
            return Vec::new();
        };
        let (_, answer_id) = self.awaiting_spend.remove(i);
        let cost = *cost_usd;
        let record = {
            let Some(a) = self.answer_mut(answer_id) else {
                return Vec::new();
            };
            let before = a.usage.is_some();
            a.usage = Some(a.usage.map_or(*usage, |u| add_usage(u, *usage)));
            a.cost = match (a.cost, cost) {
                (Some(x), Some(c)) => Some(x + c),
                (None, Some(c)) if !before => Some(c),
                _ => None,
            };
            Record::Answer(a.clone())
        };
        self.add_spend(cost);
        vec![Effect::Persist(record)]
    }
}

/// A finished request's outcome into its answer (done, with who answered and its figures).
pub(crate) fn answered(a: &mut Answer, o: crate::router::ChatOutcome) {
    a.text = o.text;
    a.tool_calls = o.tool_calls;
    a.state = AnswerState::Done;
    a.answered_group = Some(o.group);
    a.deployment = Some(o.deployment);
    a.ttft_ms = o.ttft.map(|d| d.as_millis() as u64);
    a.total_ms = Some(o.total.as_millis() as u64);
    a.usage = Some(o.usage);
    a.cost = o.cost;
    a.badges.retried |= o.retried;
    a.badges.fell_back |= o.fell_back;
    a.badges.continued |= o.continued;
    a.badges.cached = o.cached;
}

/// A streamed piece of a tool call into the answer's calls (indexes count up from 0).
fn apply_tool_delta(
    calls: &mut Vec<crate::provider::ToolCall>,
    delta: &crate::provider::ToolCallDelta,
) {
    let index = delta.index as usize;
    if calls.len() <= index {
        calls.resize_with(index + 1, Default::default);
    }
    let call = &mut calls[index];
    if let Some(id) = &delta.id {
        call.id.clone_from(id);
    }
    if let Some(name) = &delta.name {
        call.name.clone_from(name);
    }
    call.arguments.push_str(&delta.arguments);
}

/// Answers cancelled whose cut attempt's `Spent` may still come, at most this many.
const AWAITING_SPEND_KEEP: usize = 8;

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

fn route_news(f: &mut InFlight, ev: &crate::router::RouteEvent) {
    let dep = ev.deployment.clone();
    f.request_id = Some(ev.request_id);
    match &ev.kind {
        RouteEventKind::Spent { usage, cost_usd } => {
            let cost = *cost_usd;
            f.spent = Some(match f.spent {
                None => (*usage, cost),
                Some((u, c)) => (add_usage(u, *usage), c.zip(cost).map(|(a, b)| a + b)),
            });
        }
        RouteEventKind::Attempt => {
            f.attempt = ev.attempt;
            f.deployment = dep;
            f.routed_group = ev.group.clone();
        }
        RouteEventKind::Failure { class, status, .. } => {
            let status = status.map(|s| format!(" {s}")).unwrap_or_default();
            f.news = Some(format!(
                "{} failed: {class}{status}",
                dep.as_deref().unwrap_or("?")
            ));
        }
        RouteEventKind::Retry { delay_ms } => {
            // A retry, not a fallback to another group, earns the badge.
            f.badges.retried = true;
            let base = f.news.take().unwrap_or_default();
            f.news = Some(format!(
                "{base} · retry in {}",
                crate::router::human_ms(*delay_ms)
            ));
        }
        RouteEventKind::Cooldown { secs, .. } => {
            let base = f.news.take().unwrap_or_default();
            f.news = Some(format!("{base} · cooling {secs:.0}s"));
        }
        RouteEventKind::Fallback { from, to, .. } => {
            f.badges.fell_back = true;
            f.routed_group = to.clone();
            f.news = Some(format!("fallback {from} → {to}"));
        }
        RouteEventKind::MidStream { mode, .. } => {
            if *mode == MidStreamFailoverName::Continue {
                f.badges.continued = true;
            }
        }
        RouteEventKind::Request { .. }
        | RouteEventKind::FirstToken { .. }
        | RouteEventKind::Unavailable { .. }
        | RouteEventKind::Done { .. }
        | RouteEventKind::Failed { .. }
        | RouteEventKind::Cancelled
        | RouteEventKind::SharedState { .. }
        | RouteEventKind::Budget { .. } => {}
    }
}
