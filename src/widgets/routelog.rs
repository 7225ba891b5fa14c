//! The routing log pane: every `RouteEvent` of every request as it happens (attempt, failure
//! with class and status, retry in N s, cooldown, fallback from → to, done), each line with its
//! wall-clock time (UTC), coloured by outcome, newest at the bottom. It scrolls by events: Home
//! shows the first kept event, End the live tail, and every event in between is reachable; the
//! failures-only filter hides the rest. Lines come from `RouteEvent::describe`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::router::{RouteEvent, RouteEventKind};
use crate::sanitize::escape_controls;

use super::theme::{Role, Theme};
use super::wrap::wrap_pieces;

/// The routing log: every route event, newest last.
#[derive(Debug, Default)]
pub struct RouteLog {
    pub events: std::collections::VecDeque<RouteEvent>,
    /// Events (of those shown) below the view; 0 follows the live tail.
    pub scroll: usize,
    /// Only failures show (failed attempts, failed requests, unavailable groups, cooldowns,
    /// broken streams).
    pub failures_only: bool,
}

impl RouteLog {
    /// Appends `ev`, dropping the oldest past `keep`; a scrolled log stays on the events
    /// being read.
    pub fn push(&mut self, ev: RouteEvent, keep: usize) {
        let shown = self.shows(&ev);
        self.events.push_back(ev);
        if self.events.len() > keep {
            self.events.pop_front();
        }
        if self.scroll > 0 && shown {
            self.scroll += 1;
        }
    }

    /// Whether `ev` passes the filter.
    pub fn shows(&self, ev: &RouteEvent) -> bool {
        !self.failures_only || is_failure(ev)
    }

    /// The events the filter lets through, oldest first.
    pub fn shown(&self) -> Vec<&RouteEvent> {
        self.events.iter().filter(|e| self.shows(e)).collect()
    }
}

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
        RouteEventKind::Cancelled | RouteEventKind::Spent { .. } => theme.fg(Role::Muted),
        RouteEventKind::SharedState {
            connected: true, ..
        } => theme.fg(Role::Success),
        RouteEventKind::SharedState {
            connected: false, ..
        } => theme.fg(Role::Warning),
    }
}

/// Whether an event is a failure, for the log's failures-only filter: a failed attempt or
/// request, a group with nothing to route to, a cooldown, a stream that broke.
pub fn is_failure(ev: &RouteEvent) -> bool {
    matches!(
        ev.kind,
        RouteEventKind::Failure { .. }
            | RouteEventKind::Failed { .. }
            | RouteEventKind::Unavailable { .. }
            | RouteEventKind::Cooldown { .. }
            | RouteEventKind::MidStream { .. }
    )
}

/// `14:03:07.120`: the wall-clock time (UTC) of a Unix time in milliseconds.
pub fn stamp(unix_ms: u64) -> String {
    const DAY_MS: u64 = 86_400_000;
    let ms = unix_ms % DAY_MS;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn event_lines(ev: &RouteEvent, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let stamp = format!("{} ", stamp(ev.at_unix_ms));
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

/// What the pane shows at a size: the lines, and how many events are out of sight above and
/// below them.
struct Page {
    lines: Vec<Line<'static>>,
    above: usize,
    below: usize,
}

/// Lays out the events `scroll` events up from the end of those shown: the page ends with the
/// last of them, unless the events before it cannot fill the page, in which case it starts
/// with the first kept event (so Home shows the oldest event at the top, never empty rows).
fn page(log: &RouteLog, width: usize, height: usize, theme: &Theme) -> Page {
    let shown = log.shown();
    let end = shown.len().saturating_sub(log.scroll);
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut first = end;
    while first > 0 && lines.len() < height {
        first -= 1;
        let mut l = event_lines(shown[first], width, theme);
        l.extend(lines);
        lines = l;
    }
    if lines.len() >= height {
        // Bottom-anchored: the first event may be cut at the top.
        let cut = lines.len() - height;
        let above = first + usize::from(cut > 0);
        return Page {
            lines: lines.split_off(cut),
            above,
            below: shown.len() - end,
        };
    }
    // Too few lines before `end`: fill the page from the first event on.
    let mut last = end;
    while last < shown.len() && lines.len() < height {
        lines.extend(event_lines(shown[last], width, theme));
        last += 1;
    }
    let cut_below = lines.len() > height;
    lines.truncate(height);
    Page {
        lines,
        above: 0,
        below: shown.len() - last + usize::from(cut_below),
    }
}

/// The largest useful `scroll` at this size: the one that shows the first kept event at the
/// top. Scrolling further would change nothing on screen.
pub fn max_scroll(log: &RouteLog, width: usize, height: usize, theme: &Theme) -> usize {
    let shown = log.shown();
    let mut rows = 0;
    let mut fit = 0;
    for ev in &shown {
        rows += event_lines(ev, width, theme).len();
        if rows > height {
            break;
        }
        fit += 1;
    }
    shown.len().saturating_sub(fit.max(1))
}

/// The pane's title.
pub fn title(log: &RouteLog) -> &'static str {
    if log.failures_only {
        "Routing log · failures · UTC"
    } else {
        "Routing log · UTC"
    }
}

/// Draws the pane: the events that fit, `log.scroll` events up from the end, with how many
/// are out of sight above and below on the bottom border.
pub fn render(log: &RouteLog, area: Rect, buf: &mut Buffer, theme: &Theme, focused: bool) {
    let mut block = super::pane_block(theme, title(log), focused);
    let inner = block.inner(area);
    let p = page(log, inner.width as usize, inner.height as usize, theme);
    block = super::with_hidden(block, theme, (p.above, p.below), ("older", "newer"));
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }
    if p.lines.is_empty() {
        let empty = if log.failures_only && !log.events.is_empty() {
            "no failures yet"
        } else {
            "no requests yet"
        };
        let l = Line::from(Span::styled(empty, theme.fg(Role::Muted)));
        buf.set_line(inner.x, inner.y, &l, inner.width);
        return;
    }
    for (i, l) in p.lines.iter().enumerate() {
        buf.set_line(inner.x, inner.y + i as u16, l, inner.width);
    }
}
