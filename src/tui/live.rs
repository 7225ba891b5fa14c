//! The live pane: the answer in flight as it streams (a spinner with the deployment and
//! attempt until its first token), and the one line that sums it up (tokens, tokens/s, time)
//! or, once it ended, the last answer. Its counters change at a human rate, not per frame.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::metrics::answer_rate;
use crate::sanitize::escape_controls;
use crate::store::session::{AnswerState, Entry};

use super::action::TICK;
use super::app::App;
use super::conversation::Scroll;
use super::markdown::wrap_pieces;
use super::theme::Role;
use super::{fmt, glyphs};
use crate::widgets::{pane_block, set_line_clipped};

/// Spinner frames, one per tick.
const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
/// Below this much streaming time a live tokens/s is not shown (too noisy); the live line
/// and compare's streaming columns wait for it.
pub const LIVE_RATE_WINDOW: Duration = Duration::from_millis(200);
/// The live line's counters (tokens, tokens/s, time) change at most this often: a human rate,
/// and over SSH each change is bytes (DESIGN.md §5). The spinner turns every tick.
pub const COUNTER_PERIOD_MS: u64 = 500;

/// The live line's counters as last shown, for one answer and one counter period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCounters {
    pub answer_id: u64,
    pub period: u64,
    pub tokens: u64,
    pub rate: String,
    pub elapsed_ms: u64,
}

/// One line about the answer in flight (or the last one).
pub fn live_summary(app: &App) -> Line<'static> {
    let theme = &app.theme;
    let muted = theme.fg(Role::Muted);
    let accent = theme.fg(Role::Accent);
    let Some(f) = &app.inflight else {
        return match last_answer(app) {
            Some(text) => Line::from(vec![
                Span::styled("● ", theme.fg(Role::Success)),
                Span::styled(text, muted),
            ]),
            None => Line::from(Span::styled("idle", muted)),
        };
    };
    let elapsed = app.now.duration_since(f.started).as_millis() as u64;
    let tick = TICK.as_millis() as u64;
    let spinner: &[&str] = if app.ascii {
        &glyphs::SPINNER
    } else {
        &SPINNER
    };
    let frame = spinner[(elapsed / tick) as usize % spinner.len()];
    let who = f
        .deployment
        .clone()
        .unwrap_or_else(|| f.routed_group.clone());
    let Some(first) = f.first_token else {
        let attempt = if f.attempt > 0 {
            format!(" · attempt {}", f.attempt)
        } else {
            String::new()
        };
        // The time moves on with the spinner, not every frame.
        let shown = elapsed - elapsed % tick;
        let mut spans = vec![
            Span::styled(format!("{frame} "), accent),
            Span::styled(format!("waiting for {who}"), theme.fg(Role::Fg)),
            Span::styled(format!("{attempt} · {}", fmt::ms(shown)), muted),
        ];
        if let Some(n) = &f.news {
            spans.push(Span::styled(format!(" · {n}"), theme.fg(Role::Warning)));
        }
        return Line::from(spans);
    };
    let streaming_ms = app.now.duration_since(first).as_millis() as u64;
    let period = streaming_ms / COUNTER_PERIOD_MS;
    let counters = {
        let mut cache = app.live_counters.borrow_mut();
        match cache.as_ref() {
            Some(c) if c.answer_id == f.answer_id && c.period == period => c.clone(),
            _ => {
                let text = app.answer(f.answer_id).map_or("", |a| a.text.as_str());
                let tokens = f.tokens(text);
                let rate = if streaming_ms >= LIVE_RATE_WINDOW.as_millis() as u64 {
                    format!("{:.0} tok/s", tokens as f64 * 1000.0 / streaming_ms as f64)
                } else {
                    "– tok/s".to_string()
                };
                let fresh = LiveCounters {
                    answer_id: f.answer_id,
                    period,
                    tokens,
                    rate,
                    elapsed_ms: elapsed,
                };
                *cache = Some(fresh.clone());
                fresh
            }
        }
    };
    let (tokens, rate, elapsed) = (counters.tokens, counters.rate, counters.elapsed_ms);
    let mut spans = vec![
        Span::styled(format!("{frame} "), accent),
        Span::styled(
            format!("{who} "),
            theme.fg(Role::Fg).add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!("~{tokens} tok · "), muted),
        Span::styled(rate, theme.fg(Role::Info)),
        Span::styled(format!(" · {}", fmt::ms(elapsed)), muted),
    ];
    if f.reasoning_chars > 0 {
        spans.push(Span::styled(
            format!(" · thought {} chars", f.reasoning_chars),
            muted,
        ));
    }
    if let Some(n) = &f.news {
        spans.push(Span::styled(format!(" · {n}"), theme.fg(Role::Warning)));
    }
    Line::from(spans)
}

fn last_answer(app: &App) -> Option<String> {
    app.entries.iter().rev().find_map(|e| match e {
        Entry::Answer(a) if a.state != AnswerState::Streaming => {
            let who = a.deployment.clone().unwrap_or_else(|| a.group.clone());
            let out = a.usage.map(|u| u.output);
            let rate = match (out, a.total_ms, a.ttft_ms) {
                // A replay's speed says nothing about the deployment.
                _ if a.badges.cached => " from the cache".to_string(),
                // An answer that came in one burst has no rate to speak of (as in metrics).
                (Some(o), Some(t), Some(f)) => {
                    answer_rate(o, Duration::from_millis(t.saturating_sub(f)))
                        .map_or(String::new(), |r| format!(" at {r:.0} tok/s"))
                }
                _ => String::new(),
            };
            let tokens = out.map_or("? tok".to_string(), |o| format!("{o} tok"));
            let state = match a.state {
                AnswerState::Done => "",
                AnswerState::Cancelled => " (cancelled)",
                AnswerState::Failed => " (failed)",
                AnswerState::Interrupted => " (interrupted)",
                AnswerState::Streaming => "",
            };
            Some(format!("last: {who} · {tokens}{rate}{state}"))
        }
        _ => None,
    })
}

pub(super) fn render_live(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let block = pane_block(theme, "Live", false);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }
    set_line_clipped(buf, inner.x, inner.y, &live_summary(app), inner.width);
    let Some(f) = &app.inflight else {
        return;
    };
    // The tail shows here only while the conversation is scrolled away from it: drawn in
    // both, every line of the answer would cross the wire twice.
    if app.view.scroll == Scroll::Bottom {
        return;
    }
    let text = app.answer(f.answer_id).map_or("", |a| a.text.as_str());
    let rows = inner.height.saturating_sub(1) as usize;
    if rows == 0 || text.is_empty() {
        return;
    }
    // Only the tail is wrapped: a long answer costs no more per frame than a short one.
    let tail_start = text.len().saturating_sub(rows * inner.width as usize * 2);
    let tail_start = (tail_start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    let tail = escape_controls(&text[tail_start..]).replace('\t', "    ");
    let lines = wrap_pieces(&[(tail, theme.fg(Role::Fg))], inner.width as usize);
    let start = lines.len().saturating_sub(rows);
    for (i, l) in lines[start..].iter().enumerate() {
        let line = Line::from(
            l.iter()
                .map(|(t, s)| Span::styled(t.clone(), *s))
                .collect::<Vec<_>>(),
        );
        buf.set_line(inner.x, inner.y + 1 + i as u16, &line, inner.width);
    }
}
