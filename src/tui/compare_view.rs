//! Compare on screen: the chooser of groups, and the columns of a run side by side (each
//! headed by who answered, its TTFT, tokens per second and cost, then the answer or why it
//! failed). Functions of the app's state ([`super::compare`]), drawn over the panes.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use tokio::time::Instant;

use crate::sanitize::escape_controls;
use crate::store::session::{self, AnswerState};

use super::app::App;
use super::compare::{Column, CompareRun};
use super::conversation::header;
use super::fmt;
use super::markdown::{self, wrap_pieces};
use super::theme::{Role, Theme};
use super::view::{centered, overlay_frame, pane_block, render_scrolled, set_line_clipped};

/// Narrowest the chooser is drawn.
const CHOOSER_WIDTH: u16 = 60;

/// Draws compare when it has the screen: the chooser, or the columns.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if let Some(row) = app.b.compare.choosing {
        render_chooser(app, row, area, buf);
    } else if let Some(run) = &app.b.compare.run {
        render_run(app, run, area, buf);
    }
}

fn render_chooser(app: &App, row: usize, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let width = CHOOSER_WIDTH.min(area.width.saturating_sub(2));
    let height = (app.groups.len() as u16 + 4).min(area.height.saturating_sub(2));
    let rect = centered(area, width, height);
    let hint = " Space/1..9 mark · Enter ask · Esc close ";
    let inner = overlay_frame(buf, theme, rect, ("Compare on", true), hint);
    let muted = theme.fg(Role::Muted);
    let question = app.draft();
    let what = if question.trim().is_empty() {
        "the last question again".to_string()
    } else {
        format!("“{}”", session::preview_of(&question))
    };
    let mut lines = vec![Line::from(Span::styled(format!("Ask {what}"), muted))];
    for (i, g) in app.groups.iter().enumerate() {
        let mark = match app.b.compare.marked.iter().position(|m| *m == i) {
            Some(p) => format!("[{}]", p + 1),
            None => "[ ]".to_string(),
        };
        let style = if i == row {
            theme.selected()
        } else {
            theme.fg(Role::Fg)
        };
        let deps = g.deployments.len();
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} {}. {}", i + 1, g.name), style),
            Span::styled(
                format!("  {deps} deployment{}", if deps == 1 { "" } else { "s" }),
                muted,
            ),
        ]));
    }
    render_scrolled(buf, inner, &lines, 0);
}

fn render_run(app: &App, run: &CompareRun, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    // Over everything but the status line.
    let area = Rect {
        height: area.height.saturating_sub(1),
        ..area
    };
    let title = format!("Compare · {}", session::preview_of(&run.question));
    let hint = " ←/→ choose · Enter keep · Esc leave (keeps nothing) · ↑↓ scroll ";
    let inner = overlay_frame(buf, theme, area, (&title, false), hint);
    let n = run.columns.len().max(1) as u16;
    let w = inner.width / n;
    for (i, col) in run.columns.iter().enumerate() {
        let x = inner.x + w * i as u16;
        // The last column takes what division left over.
        let width = if i as u16 + 1 == n {
            inner.width - w * i as u16
        } else {
            w
        };
        let rect = Rect::new(x, inner.y, width, inner.height);
        render_column(app, col, i, i == run.selected, run.scroll, rect, buf, theme);
    }
}

#[allow(clippy::too_many_arguments)]
fn render_column(
    app: &App,
    col: &Column,
    i: usize,
    selected: bool,
    scroll: usize,
    rect: Rect,
    buf: &mut Buffer,
    theme: &Theme,
) {
    let a = &col.answer;
    let block = pane_block(theme, &format!("{} {}", i + 1, a.group), selected);
    let inner = block.inner(rect);
    block.render(rect, buf);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let muted = theme.fg(Role::Muted);
    let mut y = inner.y;
    // Who answered, with its badges.
    let mut who = a.clone();
    who.total_ms = None;
    who.state = match a.state {
        AnswerState::Done => AnswerState::Streaming,
        s => s,
    };
    for line in wrap_pieces(&header(&who, theme), inner.width as usize)
        .into_iter()
        .take(2)
    {
        if y >= inner.y + inner.height {
            return;
        }
        let l = Line::from(
            line.into_iter()
                .map(|(t, s)| Span::styled(t, s))
                .collect::<Vec<_>>(),
        );
        set_line_clipped(buf, inner.x, y, &l, inner.width);
        y += 1;
    }
    let figures = figures_line(col, app.now);
    set_line_clipped(
        buf,
        inner.x,
        y,
        &Line::from(Span::styled(figures, muted)),
        inner.width,
    );
    y += 1;
    if let Some(news) = &col.news {
        let l = Line::from(Span::styled(
            escape_controls(news).into_owned(),
            theme.fg(Role::Warning),
        ));
        set_line_clipped(buf, inner.x, y, &l, inner.width);
        y += 1;
    }
    if y >= inner.y + inner.height {
        return;
    }
    let body = Rect::new(inner.x, y, inner.width, inner.y + inner.height - y);
    let lines = column_lines(app, col, inner.width);
    render_scrolled(buf, body, &lines, scroll.min(lines.len().saturating_sub(1)));
}

/// `ttft 250 ms · 61 tok/s · $0.000049 · 80 tok`, or what is known so far.
pub fn figures_line(col: &Column, now: Instant) -> String {
    let a = &col.answer;
    let mut parts = Vec::new();
    match (a.ttft_ms, col.first_token) {
        (Some(t), _) => parts.push(format!("ttft {}", fmt::ms(t))),
        (None, Some(t)) => parts.push(format!(
            "ttft {}",
            fmt::ms(t.duration_since(col.started).as_millis() as u64)
        )),
        (None, None) if col.streaming() => parts.push(format!(
            "waiting {}",
            fmt::ms(now.duration_since(col.started).as_millis() as u64)
        )),
        (None, None) => {}
    }
    if let Some(r) = col.tokens_per_s(now) {
        parts.push(format!("{r:.0} tok/s"));
    }
    if a.state == AnswerState::Done {
        parts.push(fmt::cost(a.cost));
    }
    if col.streaming() && col.first_token.is_some() {
        parts.push("streaming…".to_string());
    }
    match a.usage {
        Some(u) => parts.push(format!("{} tok", u.output)),
        None if !a.text.is_empty() => parts.push(format!(
            "~{} tok",
            crate::provider::estimate_tokens(&a.text)
        )),
        None => {}
    }
    parts.join(" · ")
}

/// The answer's body lines (markdown; the error of a failed one), cached once it is final.
fn column_lines(app: &App, col: &Column, width: u16) -> Vec<Line<'static>> {
    let a = &col.answer;
    if !col.streaming()
        && let Some((w, len, lines)) = &*col.cache.borrow()
        && *w == width
        && *len == a.text.len()
    {
        return lines.clone();
    }
    let theme = &app.theme;
    let mut out = Vec::new();
    let text = escape_controls(&a.text);
    if text.is_empty() && col.streaming() {
        out.push(Line::from(Span::styled("…", theme.fg(Role::Muted))));
    } else {
        let hl = (!col.streaming()).then_some(&app.highlighter);
        out.extend(markdown::render(&text, width as usize, theme, hl));
    }
    if let Some(err) = &a.error {
        let pieces = vec![(
            format!("✖ {}", escape_controls(err)),
            theme.fg(Role::Error).add_modifier(Modifier::BOLD),
        )];
        for line in wrap_pieces(&pieces, width as usize) {
            out.push(Line::from(
                line.into_iter()
                    .map(|(t, s)| Span::styled(t, s))
                    .collect::<Vec<_>>(),
            ));
        }
    }
    if !col.streaming() {
        *col.cache.borrow_mut() = Some((width, a.text.len(), out.clone()));
    }
    out
}
