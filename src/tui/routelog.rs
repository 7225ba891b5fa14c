//! The routing log pane: every `RouteEvent` of every request as it happens (attempt, failure
//! with class and status, retry in N s, cooldown, fallback from → to, done), coloured by
//! outcome, newest at the bottom, scrollable. Lines come from `RouteEvent::describe`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::router::{RouteEvent, RouteEventKind};
use crate::sanitize::escape_controls;

use super::app::RouteLog;
use super::markdown::wrap_pieces;
use super::theme::{Role, Theme};

/// The colour of an event by its outcome.
pub fn style_of(ev: &RouteEvent, theme: &Theme) -> Style {
    match ev.kind {
        RouteEventKind::Done { .. } => theme.fg(Role::Success),
        RouteEventKind::Failure { .. } | RouteEventKind::Failed { .. } => theme.fg(Role::Error),
        RouteEventKind::Retry { .. }
        | RouteEventKind::Cooldown { .. }
        | RouteEventKind::Unavailable { .. }
        | RouteEventKind::MidStream { .. } => theme.fg(Role::Warning),
        RouteEventKind::Fallback { .. } => theme.fg(Role::Warning).add_modifier(Modifier::BOLD),
        RouteEventKind::Budget { percent, .. } if percent >= 100 => {
            theme.fg(Role::Error).add_modifier(Modifier::BOLD)
        }
        RouteEventKind::Budget { .. } => theme.fg(Role::Warning),
        RouteEventKind::Attempt | RouteEventKind::FirstToken { .. } => theme.fg(Role::Info),
        RouteEventKind::Request { .. } => theme.fg(Role::Fg),
        RouteEventKind::Cancelled => theme.fg(Role::Muted),
        RouteEventKind::SharedState {
            connected: true, ..
        } => theme.fg(Role::Success),
        RouteEventKind::SharedState {
            connected: false, ..
        } => theme.fg(Role::Warning),
    }
}

fn event_lines(ev: &RouteEvent, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let stamp = format!("{:>6} ", super::fmt::ms_short(ev.elapsed_ms));
    let text = escape_controls(&ev.describe()).into_owned();
    let indent = stamp.chars().count();
    let wrapped = wrap_pieces(
        &[(text, style_of(ev, theme))],
        width.saturating_sub(indent).max(1),
    );
    wrapped
        .into_iter()
        .enumerate()
        .map(|(i, pieces)| {
            let lead = if i == 0 {
                stamp.clone()
            } else {
                " ".repeat(indent)
            };
            let mut spans = vec![Span::styled(lead, theme.fg(Role::Muted))];
            spans.extend(pieces.into_iter().map(|(t, s)| Span::styled(t, s)));
            Line::from(spans)
        })
        .collect()
}

/// Draws the pane: the newest events that fit, `log.scroll` events up from the end.
pub fn render(log: &RouteLog, area: Rect, buf: &mut Buffer, theme: &Theme, focused: bool) {
    let mut block = super::view::pane_block(theme, "Routing log", focused);
    if log.scroll > 0 {
        block = block.title_bottom(
            Line::from(Span::styled(
                format!(" ↓ {} newer ", log.scroll),
                theme.fg(Role::Warning),
            ))
            .right_aligned(),
        );
    }
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }
    if log.events.is_empty() {
        let l = Line::from(Span::styled("no requests yet", theme.fg(Role::Muted)));
        buf.set_line(inner.x, inner.y, &l, inner.width);
        return;
    }
    let height = inner.height as usize;
    let end = log.events.len().saturating_sub(log.scroll);
    let mut lines: Vec<Line<'static>> = Vec::new();
    for ev in log.events.range(..end).rev() {
        let mut l = event_lines(ev, inner.width as usize, theme);
        l.extend(lines);
        lines = l;
        if lines.len() >= height {
            break;
        }
    }
    let start = lines.len().saturating_sub(height);
    for (i, l) in lines[start..].iter().enumerate() {
        buf.set_line(inner.x, inner.y + i as u16, l, inner.width);
    }
}
