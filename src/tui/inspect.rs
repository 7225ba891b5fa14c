//! The inspector: for an answer, what actually went over the wire — its routing events, then
//! every attempt: the request as sent (method, URL, headers with keys redacted, JSON body), the
//! status and how it ended (with Retry-After), the response's status line and headers as
//! received (credentials redacted), the stream events as decoded, each with its time since the
//! attempt began, and the body's bytes as they came. "Why did it fall back" has its answer
//! here.
//!
//! The router captures attempts only for the TUI (`router::capture`). When an answer ends, the
//! app asks the runner to save its request's attempts with the routing events
//! ([`Effect::SaveWire`], into the session's `.wire` file, `wirefile`); `inspect` (Ctrl+G)
//! asks for the last answer's record ([`Effect::LoadWire`]), which comes back as
//! [`Action::WireLoaded`](super::action::Action::WireLoaded). ↑↓ PgUp PgDn Home End scroll,
//! `n`/`p` jump to the next/previous attempt, Esc closes.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::provider::http::RawResponse;
use crate::sanitize::escape_controls;
use crate::store::session::Entry;

use super::action::{Command, Effect};
use super::app::App;
use super::theme::{Role, Theme};
use super::view::{overlay_frame, render_scrolled};
use super::wirefile::WireRecord;
use crate::widgets::wrap::{Piece, pieces_line, wrap_pieces};

/// The inspector's state.
#[derive(Debug, Default)]
pub struct Inspect {
    /// The answer shown, while the inspector is open.
    pub answer_id: Option<u64>,
    /// Its record: `None` while it loads; `Ok(None)` when none was kept.
    pub found: Option<Result<Option<WireRecord>, String>>,
    pub scroll: usize,
    /// The request in flight as last seen: (answer id, router request id).
    pub watching: Option<(u64, Option<u64>)>,
    /// Answers of this run and their router request ids.
    pub requests: Vec<(u64, u64)>,
}

impl Inspect {
    pub fn shown(&self) -> bool {
        self.answer_id.is_some()
    }
}

/// Answers whose request ids are remembered (the latest ones).
const REMEMBER: usize = 512;

impl App {
    /// `inspect`: opens the inspector on the last answer.
    pub(crate) fn open_inspect(&mut self) -> Vec<Effect> {
        let Some(answer_id) = self.entries.iter().rev().find_map(|e| match e {
            Entry::Answer(a) => Some(a.id),
            _ => None,
        }) else {
            self.toast("no answer to inspect yet", true);
            return Vec::new();
        };
        let request_id = self
            .b
            .inspect
            .requests
            .iter()
            .rev()
            .find(|(a, _)| *a == answer_id)
            .map(|(_, r)| *r)
            .or_else(|| {
                self.inflight
                    .as_ref()
                    .filter(|f| f.answer_id == answer_id)
                    .and_then(|f| f.request_id)
            });
        let i = &mut self.b.inspect;
        i.answer_id = Some(answer_id);
        i.found = None;
        i.scroll = 0;
        let route = request_id.map_or_else(Vec::new, |r| self.route_lines(r));
        vec![Effect::LoadWire {
            answer_id,
            request_id,
            route,
        }]
    }

    /// The routing log's lines of request `request_id` (as the log shows them, with time).
    pub(crate) fn route_lines(&self, request_id: u64) -> Vec<String> {
        self.log
            .events
            .iter()
            .filter(|e| e.request_id == request_id)
            .map(|e| format!("{} {}", super::routelog::stamp(e.at_unix_ms), e.describe()))
            .collect()
    }

    /// The save of answer `answer_id`'s wire record (its request's attempts, taken by the
    /// runner from the capture, and its routing events).
    pub(crate) fn save_wire(&mut self, answer_id: u64, request_id: u64) -> Vec<Effect> {
        let r = &mut self.b.inspect.requests;
        r.push((answer_id, request_id));
        let n = r.len();
        r.drain(..n.saturating_sub(REMEMBER));
        vec![Effect::SaveWire {
            answer_id,
            request_id,
            route: self.route_lines(request_id),
        }]
    }

    /// After each action: when the request in flight has ended (finished, failed, cancelled,
    /// replaced), its wire record is saved.
    pub(crate) fn follow_wire(&mut self, mut fx: Vec<Effect>) -> Vec<Effect> {
        let now = self.inflight.as_ref().map(|f| (f.answer_id, f.request_id));
        let before = std::mem::replace(&mut self.b.inspect.watching, now);
        if let Some((answer_id, Some(request_id))) = before
            && now.is_none_or(|(a, _)| a != answer_id)
        {
            fx.extend(self.save_wire(answer_id, request_id));
        }
        fx
    }

    /// The record asked for arrived.
    pub(crate) fn wire_loaded(
        &mut self,
        answer_id: u64,
        found: Result<Option<WireRecord>, String>,
    ) -> Vec<Effect> {
        let i = &mut self.b.inspect;
        match found {
            _ if i.answer_id == Some(answer_id) => i.found = Some(found),
            // A save that failed (the runner says so this way).
            Err(e) => self.toast(e, true),
            Ok(_) => self.unchanged(),
        }
        Vec::new()
    }

    /// A key while the inspector is open.
    pub(crate) fn inspect_key(
        &mut self,
        ev: crossterm::event::KeyEvent,
        bound: Option<Command>,
    ) -> Vec<Effect> {
        use crossterm::event::{KeyCode, KeyModifiers};
        match bound {
            Some(Command::Inspect | Command::Cancel) => {
                self.b.inspect.answer_id = None;
                self.b.inspect.found = None;
                return Vec::new();
            }
            Some(Command::Quit) => return self.quit(),
            _ => {}
        }
        if ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            self.unchanged();
            return Vec::new();
        }
        // The pane's inner height: the screen less the status line and the borders.
        let height = usize::from(self.size.1.saturating_sub(3)).max(1);
        let (marks, count) = self.attempt_marks();
        let max = count.saturating_sub(height);
        let i = &mut self.b.inspect;
        match ev.code {
            KeyCode::Esc | KeyCode::Char('q') => {
                i.answer_id = None;
                i.found = None;
            }
            KeyCode::Up | KeyCode::Char('k') => i.scroll = i.scroll.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => i.scroll += 1,
            KeyCode::PageUp => i.scroll = i.scroll.saturating_sub(height),
            KeyCode::PageDown | KeyCode::Char(' ') => i.scroll += height,
            KeyCode::Home | KeyCode::Char('g') => i.scroll = 0,
            KeyCode::End | KeyCode::Char('G') => i.scroll = max,
            KeyCode::Char('n') => {
                if let Some(m) = marks.iter().find(|m| **m > i.scroll) {
                    i.scroll = *m;
                }
            }
            KeyCode::Char('p') => {
                if let Some(m) = marks.iter().rev().find(|m| **m < i.scroll) {
                    i.scroll = *m;
                }
            }
            _ => self.unchanged(),
        }
        let i = &mut self.b.inspect;
        i.scroll = i.scroll.min(max);
        Vec::new()
    }

    /// The lines where each attempt starts, and how many lines there are, as drawn.
    fn attempt_marks(&self) -> (Vec<usize>, usize) {
        let Some(Ok(Some(r))) = &self.b.inspect.found else {
            return (Vec::new(), 0);
        };
        // The overlay's inner width: the screen less its borders.
        let width = usize::from(self.size.0.saturating_sub(2));
        let (lines, marks) = laid_out(r, &self.theme, width);
        (marks, lines.len())
    }
}

/// The first span of an attempt's heading line.
const ATTEMPT_MARK: &str = "▌ ";

/// The record's [`lines`] broken to `width` columns (a routing event, a header, raw bytes or
/// JSON that reaches the edge goes on under itself, indented two more), and the line each
/// attempt starts on.
pub fn laid_out(r: &WireRecord, theme: &Theme, width: usize) -> (Vec<Line<'static>>, Vec<usize>) {
    let width = width.max(8);
    let mut out = Vec::new();
    let mut marks = Vec::new();
    for line in lines(r, theme) {
        if line
            .spans
            .first()
            .is_some_and(|s| s.content == ATTEMPT_MARK)
        {
            marks.push(out.len());
        }
        if line.width() <= width {
            out.push(line);
            continue;
        }
        let pieces: Vec<Piece> = line
            .spans
            .iter()
            .map(|s| (s.content.to_string(), s.style))
            .collect();
        let text: String = pieces.iter().map(|(t, _)| t.as_str()).collect();
        // What goes on under the line is indented two more than it.
        let indent = ((text.len() - text.trim_start().len()) + 2).min(width / 2);
        for (n, mut row) in wrap_pieces(&pieces, width - indent).into_iter().enumerate() {
            if n > 0 {
                row.insert(0, (" ".repeat(indent), ratatui::style::Style::new()));
            }
            out.push(pieces_line(row));
        }
    }
    (out, marks)
}

/// The record as lines, each as long as it is ([`laid_out`] breaks them to the pane).
pub fn lines(r: &WireRecord, theme: &Theme) -> Vec<Line<'static>> {
    let muted = theme.fg(Role::Muted);
    let fg = theme.fg(Role::Fg);
    let head = theme.fg(Role::Heading).add_modifier(Modifier::BOLD);
    let text = |s: &str, style| Span::styled(escape_controls(s).into_owned(), style);
    let mut out = vec![Line::from(Span::styled(
        format!("Routing · request #{}", r.request_id),
        head,
    ))];
    if r.route.is_empty() {
        out.push(Line::from(Span::styled(
            "  (the routing events were not seen by this run)",
            muted,
        )));
    }
    for l in &r.route {
        out.push(Line::from(vec![Span::raw("  "), text(l, fg)]));
    }
    for a in &r.attempts {
        out.push(Line::default());
        let ok = a.outcome == "ok";
        let status = match (a.status, a.in_process) {
            (Some(s), false) => format!("{s} · "),
            (Some(s), true) => format!("simulated {s} · "),
            (None, false) => String::new(),
            (None, true) => "in-process · ".to_string(),
        };
        let style = if ok {
            theme.fg(Role::Success)
        } else {
            theme.fg(Role::Error)
        };
        out.push(Line::from(vec![
            Span::styled(ATTEMPT_MARK, style),
            Span::styled(
                format!("Attempt {} · {} · {}", a.attempt, a.deployment, a.group),
                head,
            ),
            Span::styled(
                format!(
                    "  {} UTC · {status}{} · {} ms",
                    super::routelog::stamp(a.at_unix_ms),
                    if ok { "ok" } else { "failed" },
                    a.total_ms
                ),
                muted,
            ),
        ]));
        if !ok {
            let mut why = a.outcome.clone();
            if let Some(ms) = a.retry_after_ms {
                why.push_str(&format!(" · Retry-After {}", super::fmt::ms(ms)));
            }
            out.push(Line::from(vec![Span::raw("  "), text(&why, style)]));
        }
        out.push(Line::from(Span::styled("  → request as sent", muted)));
        out.push(Line::from(vec![
            Span::raw("    "),
            text(&format!("{} {}", a.request.method, a.request.url), fg),
        ]));
        for (name, value) in &a.request.headers {
            out.push(Line::from(vec![
                Span::raw("    "),
                text(&format!("{name}: "), muted),
                text(value, fg),
            ]));
        }
        for body_line in a.request.body.lines() {
            out.push(Line::from(vec![
                Span::raw("    "),
                text(body_line, theme.fg(Role::Code)),
            ]));
        }
        out.push(Line::from(Span::styled(
            format!(
                "  ← received{}",
                a.ttft_ms
                    .map(|t| format!(" · first token after {t} ms"))
                    .unwrap_or_default()
            ),
            muted,
        )));
        if let Some(r) = &a.response {
            out.push(Line::from(vec![
                Span::raw("    "),
                text(&r.status_line, fg),
            ]));
            for (name, value) in &r.headers {
                out.push(Line::from(vec![
                    Span::raw("    "),
                    text(&format!("{name}: "), muted),
                    text(value, fg),
                ]));
            }
        }
        if a.events.is_empty() && a.response.is_none() {
            out.push(Line::from(Span::styled("    (nothing)", muted)));
        }
        for e in &a.events {
            out.push(Line::from(vec![
                Span::styled(format!("    {:>7} ", format!("+{}ms", e.ms)), muted),
                text(&e.what, fg),
            ]));
        }
        if a.events_dropped > 0 {
            out.push(Line::from(Span::styled(
                format!("    … {} more events, not kept", a.events_dropped),
                muted,
            )));
        }
        if let Some(r) = a.response.as_ref().filter(|r| !r.body.is_empty()) {
            raw_body(&mut out, r, theme);
        }
    }
    if r.shrunk {
        out.push(Line::default());
        out.push(Line::from(Span::styled(
            "Cut to fit the record's size limit (256 KiB per answer).",
            muted,
        )));
    }
    out
}

/// A response's body as it came (an SSE stream's lines, an error's JSON), bytes counted.
fn raw_body(out: &mut Vec<Line<'static>>, r: &RawResponse, theme: &Theme) {
    let muted = theme.fg(Role::Muted);
    let size = r.body.len() as u64 + r.body_dropped;
    out.push(Line::from(Span::styled(
        format!(
            "  ← body as received · {}",
            super::attach::human_bytes(size)
        ),
        muted,
    )));
    for line in r.body.lines() {
        out.push(Line::from(vec![
            Span::raw("    "),
            Span::styled(escape_controls(line).into_owned(), theme.fg(Role::Code)),
        ]));
    }
    if r.body_dropped > 0 {
        out.push(Line::from(Span::styled(
            format!(
                "    … {} more, not kept",
                super::attach::human_bytes(r.body_dropped)
            ),
            muted,
        )));
    }
}

/// Draws the inspector over everything but the status line.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let i = &app.b.inspect;
    let Some(answer_id) = i.answer_id else {
        return;
    };
    let theme = &app.theme;
    let area = Rect {
        height: area.height.saturating_sub(1),
        ..area
    };
    let who = app
        .answer(answer_id)
        .map(|a| {
            let dep = a.deployment.as_deref().unwrap_or("?");
            match &a.answered_group {
                Some(g) if *g != a.group => format!("{dep} · {} → {g}", a.group),
                _ => format!("{dep} · {}", a.group),
            }
        })
        .unwrap_or_default();
    let title = format!("Inspect · {who}");
    let hint = " ↑↓ PgUp PgDn scroll · n/p next/previous attempt · Esc close ";
    let inner = overlay_frame(buf, theme, area, (&title, true), hint);
    let muted = theme.fg(Role::Muted);
    let lines = match &i.found {
        None => vec![Line::from(Span::styled("reading…", muted))],
        Some(Err(e)) => vec![Line::from(Span::styled(
            format!("cannot read the wire record: {}", escape_controls(e)),
            theme.fg(Role::Error),
        ))],
        Some(Ok(None)) => vec![Line::from(Span::styled(
            "Nothing was kept for this answer: it was answered before llmux kept wire records, \
             or its attempts are still under way.",
            muted,
        ))],
        Some(Ok(Some(r))) => laid_out(r, theme, usize::from(inner.width)).0,
    };
    let max = lines.len().saturating_sub(usize::from(inner.height));
    let scroll = i.scroll.min(max);
    render_scrolled(buf, inner, &lines, scroll);
    // What is out of sight, on the bottom border's left.
    let (above, below) = (scroll, max - scroll);
    let hidden: Vec<String> = [(above, "↑"), (below, "↓")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, arrow)| format!("{arrow} {n} more"))
        .collect();
    if !hidden.is_empty() {
        let l = Line::from(Span::styled(
            format!(" {} ", hidden.join(" · ")),
            theme.fg(Role::Warning),
        ));
        let y = area.y + area.height.saturating_sub(1);
        super::view::set_line_clipped(buf, area.x + 1, y, &l, area.width.saturating_sub(2));
    }
}
