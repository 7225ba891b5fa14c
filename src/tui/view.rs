//! Drawing: one function of the app state onto a buffer, pane by pane, then the overlay on
//! top. Small panes (composer, status line) are drawn here; the larger ones, and the live
//! pane, have their own modules. Nothing here changes state or does IO.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Widget};
use unicode_width::UnicodeWidthStr;

use crate::store::session::Entry;

use super::action::Command;
use super::app::{App, Focus, Overlay};
use super::conversation::{PageTop, Scroll};
use super::live::{live_summary, render_live};
use super::theme::Role;
use super::{glyphs, help, metrics, picker, routelog, sessions, statsview};
pub use crate::widgets::{pane_block, set_line_clipped, with_hidden};

/// Writes `lines` into `inner`, starting at line `scroll` (kept where the last page stays
/// full, so scrolling past the end shows the end).
pub fn render_scrolled(buf: &mut Buffer, inner: Rect, lines: &[Line], scroll: usize) {
    let max_scroll = lines.len().saturating_sub(inner.height as usize);
    for (i, l) in lines
        .iter()
        .skip(scroll.min(max_scroll))
        .take(inner.height as usize)
        .enumerate()
    {
        set_line_clipped(buf, inner.x, inner.y + i as u16, l, inner.width);
    }
}

/// An overlay's frame over `rect`: cleared, a border titled `title` (thick when `focused`)
/// with the keys it takes (`hint`) right-aligned on its bottom edge. Returns the area inside.
pub fn overlay_frame(
    buf: &mut Buffer,
    theme: &super::theme::Theme,
    rect: Rect,
    (title, focused): (&str, bool),
    hint: &str,
) -> Rect {
    Clear.render(rect, buf);
    let hint = Line::from(Span::styled(hint.to_string(), theme.fg(Role::Muted))).right_aligned();
    let block = pane_block(theme, title, focused).title_bottom(hint);
    let inner = block.inner(rect);
    block.style(theme.base_style()).render(rect, buf);
    inner
}

/// A `width` x `height` rectangle centered in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Lines of the last page kept on top when a streamed answer turns the page.
const PAGE_OVERLAP: usize = 2;

/// Where the conversation does not span the terminal's width, the terminal cannot scroll it
/// (scroll regions take whole rows), and following a streamed answer line by line would draw
/// the whole pane again for every line. There the view turns pages instead: the page stays
/// while what follows its top fits, and when a stream overflows it the next page starts at
/// the question being answered, or with the last [`PAGE_OVERLAP`] lines once the answer
/// alone is longer than the pane. Full width, `runtime`'s scroll regions make lines cheap
/// and the view follows the end as usual.
fn page_stream(app: &App, area: Rect) {
    let v = &app.view;
    let inner = Block::bordered().inner(area);
    let (width, height) = (
        inner.width,
        usize::from(inner.height.saturating_sub(app.pinned_lines())),
    );
    if v.scroll != Scroll::Bottom
        || area.width >= app.size.0
        || height == 0
        || app.entries.is_empty()
    {
        v.paged.set(None);
        return;
    }
    let ctx = app.ctx();
    let len = |i: usize| v.lines(&app.entries[i], width, ctx).len();
    let lines_from = |(e, l): (usize, usize)| -> usize {
        (e..app.entries.len())
            .map(len)
            .sum::<usize>()
            .saturating_sub(l)
    };
    if let Some(top) = v.paged.get().and_then(|p| p.pos(&app.entries))
        && lines_from(top) <= height
    {
        return;
    }
    if app.inflight.is_none() {
        // Nothing streams: the view follows the end as usual.
        v.paged.set(None);
        return;
    }
    if lines_from((0, 0)) <= height {
        // All of it fits: the page is the whole conversation until the stream overflows it.
        v.paged.set(PageTop::at(&app.entries, (0, 0)));
        return;
    }
    let question = app
        .entries
        .iter()
        .rposition(|e| matches!(e, Entry::User(_)))
        .map(|i| (i, 0));
    let top = match question {
        Some(q) if lines_from(q) < height => q,
        _ => {
            // The last lines: walk back from the end.
            let mut need = PAGE_OVERLAP.min(height);
            let mut top = (app.entries.len() - 1, 0);
            for i in (0..app.entries.len()).rev() {
                let n = len(i);
                if n >= need {
                    top = (i, n - need);
                    break;
                }
                need -= n;
                top = (i, 0);
            }
            top
        }
    };
    v.paged.set(PageTop::at(&app.entries, top));
}

/// Draws the whole screen.
pub fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    Block::new().style(theme.base_style()).render(area, buf);
    let a = app.areas();
    let title = format!("Conversation · {}", app.session);
    let hint = empty_hint(app);
    page_stream(app, a.conversation);
    app.view.render(
        &app.entries,
        a.conversation,
        buf,
        app.ctx(),
        app.focus == Focus::Conversation,
        &title,
        &hint,
        app.conversation_decor(),
    );
    if let Some(r) = a.models {
        picker::render_pane(
            &app.groups,
            &app.status,
            app.current,
            app.models_selected,
            app.strategy,
            r,
            buf,
            theme,
            app.focus == Focus::Models,
        );
    }
    if let Some(r) = a.metrics
        && app.stats.shown
    {
        statsview::render(
            &app.stats,
            &app.keymap,
            r,
            buf,
            theme,
            app.focus == Focus::Metrics,
            app.metrics_scroll,
        );
    } else if let Some(r) = a.metrics {
        metrics::render(
            &app.status,
            metrics::CostLine::Session(app.session_cost()),
            r,
            buf,
            theme,
            app.focus == Focus::Metrics,
            app.metrics_scroll,
        );
    }
    if let Some(r) = a.log {
        routelog::render(&app.log, r, buf, theme, app.focus == Focus::Log);
    }
    if a.wide {
        render_live(app, a.live, buf);
    } else {
        let line = live_summary(app);
        set_line_clipped(buf, a.live.x, a.live.y, &line, a.live.width);
    }
    render_composer(app, a.composer, buf);
    if app.overlay.is_none() && app.focus == Focus::Composer {
        super::palette::render_completions(app, a.composer, buf);
    }
    render_status(app, a.status, buf);
    match &app.overlay {
        Some(Overlay::Picker(p)) => picker::render_overlay(
            p,
            &app.groups,
            &app.status,
            app.current,
            app.strategy,
            area,
            buf,
            theme,
        ),
        Some(Overlay::Help { scroll }) => {
            help::render(&app.keymap, app.shift_enter, *scroll, area, buf, theme)
        }
        Some(Overlay::Sessions {
            list,
            selected,
            query,
            found,
        }) => sessions::render(
            &sessions::Shown {
                list: list.as_ref(),
                query,
                found: found.as_ref(),
            },
            *selected,
            &app.session,
            &app.list,
            area,
            buf,
            theme,
        ),
        Some(Overlay::Palette(p)) => {
            super::palette::render(p, &app.keymap, app.shift_enter, area, buf, theme)
        }
        None => {}
    }
    super::part_b::render(app, area, buf);
    if app.ascii {
        glyphs::fold(buf);
    }
}

fn render_composer(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let focused = app.focus == Focus::Composer;
    let (title, meter) = super::context::composer_title(app);
    let title = match app.editing {
        Some(_) => format!("Edit → {} · sends a new branch", app.current_group()),
        None => title,
    };
    let mut block = pane_block(theme, &title, focused);
    if let Some(m) = &meter {
        block = block.title(m.clone());
    }
    let keys = format!(
        " {} send · {} newline · {} editor ",
        app.keymap.label(Command::Send),
        app.keymap.newline_label(app.shift_enter),
        app.keymap.label(Command::EditExternal)
    );
    // The keys only where they fit beside the title (corners, title and a gap of one).
    let title_w =
        title.width() + if focused { 4 } else { 2 } + meter.as_ref().map_or(0, Line::width);
    if title_w + keys.width() + 3 <= usize::from(area.width) {
        block = block.title(Line::from(Span::styled(keys, theme.fg(Role::Muted))).right_aligned());
    }
    let inner = block.inner(area);
    // The text first: where it scrolled to says what the border reports as hidden.
    (&app.composer).render(inner, buf);
    let above = usize::from(app.composer.scroll_offset().0);
    let below = app
        .composer
        .lines()
        .len()
        .saturating_sub(above + usize::from(inner.height));
    block = with_hidden(block, theme, (above, below), ("more", "more"));
    block.render(area, buf);
}

/// The keys that show the side panes: `F2–F4` with the default keys.
pub fn pane_keys(app: &App) -> String {
    let keys = [
        app.keymap.label(Command::ToggleModels),
        app.keymap.label(Command::ToggleMetrics),
        app.keymap.label(Command::ToggleLog),
    ];
    if keys == ["F2", "F3", "F4"] {
        "F2–F4".to_string()
    } else {
        keys.join("/")
    }
}

/// What the empty conversation says: how to send and switch, where the folded panes are, and
/// on the demo config what it is (mock models, no network) and where a real config goes.
pub fn empty_hint(app: &App) -> String {
    let mut hint = format!(
        "Type below; Enter sends to {}. {} switches model, {} picks one, {} shows every key.",
        app.current_group(),
        app.keymap.label(Command::NextModel),
        app.keymap.label(Command::OpenPicker),
        app.keymap.label(Command::Help),
    );
    let (wanted, shown) = (app.wanted(), app.visible());
    if !(shown.models && shown.metrics && shown.log) && wanted == shown {
        hint.push_str(&format!(
            " {} show the models, metrics and routing log.",
            pane_keys(app)
        ));
    }
    if app.is_demo {
        hint.push_str(&format!(
            "\n\nDEMO: no config was found, so these models are mock deployments inside \
             llmux: made-up answers, no network, no keys, no cost. Put a LiteLLM config.yaml at \
             {} (or pass --config PATH) to route to real providers; `llmux check` tests it.",
            app.config_path
        ));
    }
    hint
}

/// One piece of the status line; pieces are dropped whole, least important first, where the
/// line is too short for all of them.
struct Piece {
    spans: Vec<Span<'static>>,
    /// Lower is more important.
    rank: u8,
}

impl Piece {
    fn width(&self) -> usize {
        self.spans.iter().map(Span::width).sum()
    }
}

fn render_status(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    Clear.render(area, buf);
    let base = theme.status();
    for x in area.x..area.x + area.width {
        if let Some(c) = buf.cell_mut((x, area.y)) {
            c.set_style(base);
        }
    }
    let width = usize::from(area.width);
    // Left, in the order shown.
    let mut pieces = Vec::new();
    if app.is_demo {
        pieces.push(Piece {
            spans: vec![
                Span::styled(" DEMO ", theme.badge(Role::Warning)),
                Span::styled(" ", base),
            ],
            rank: 2,
        });
    }
    pieces.push(Piece {
        spans: vec![
            Span::styled(
                format!(" {} ", app.current_group()),
                theme.badge(Role::Accent),
            ),
            Span::styled(" ", base),
        ],
        rank: 0,
    });
    let cost = format!("session {} ", app.session_cost());
    if app.toast.is_none() {
        pieces.push(Piece {
            spans: vec![Span::styled(
                format!(
                    "{}/{} · {cost}",
                    app.keymap.label(Command::NextModel),
                    app.keymap.label(Command::PrevModel)
                ),
                base,
            )],
            rank: 4,
        });
    }
    pieces.push(Piece {
        spans: vec![Span::styled(cost, base)],
        rank: 3,
    });
    // A budget past 80% stays on the status line until its period resets.
    if let Some(b) = app.status.budget_alert() {
        pieces.push(Piece {
            spans: vec![
                Span::styled(
                    format!(" budget {} {}% ", b.label, b.percent()),
                    theme.badge(b.role()),
                ),
                Span::styled(" ", base),
            ],
            rank: 1,
        });
    }
    let toast = app.toast.as_ref().map(|t| {
        Line::from(Span::styled(
            format!(" {} ", t.text),
            if t.error {
                theme.badge(Role::Error)
            } else {
                base.add_modifier(Modifier::BOLD)
            },
        ))
    });
    // The most important pieces that fit beside the toast (the hint with the session cost
    // stands in for the cost alone when both fit).
    let reserve = toast.as_ref().map_or(0, Line::width);
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    order.sort_by_key(|i| pieces[*i].rank);
    let mut keep = vec![false; pieces.len()];
    let mut used = 0;
    for i in order {
        let hint_with_cost = pieces[i].rank == 4;
        let alone_cost = pieces.iter().position(|p| p.rank == 3);
        let extra = match (hint_with_cost, alone_cost) {
            (true, Some(c)) if keep[c] => pieces[i].width() - pieces[c].width(),
            _ => pieces[i].width(),
        };
        if used + extra + reserve <= width || (pieces[i].rank == 0 && used == 0) {
            keep[i] = true;
            used += extra;
            if let (true, Some(c)) = (hint_with_cost, alone_cost) {
                keep[c] = false;
            }
        }
    }
    let left = Line::from(
        pieces
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .flat_map(|(p, _)| p.spans)
            .collect::<Vec<_>>(),
    );
    set_line_clipped(buf, area.x, area.y, &left, area.width);
    let room = width.saturating_sub(left.width());
    let right = match toast {
        Some(t) => t,
        None => {
            // As many hints as fit, most important first.
            let folded = {
                let v = app.visible();
                !(v.models && v.metrics && v.log)
            };
            let mut hints = vec![
                (app.keymap.label(Command::Help), "help"),
                (app.keymap.label(Command::OpenPicker), "models"),
            ];
            if folded {
                hints.push((pane_keys(app), "panes"));
            }
            hints.push((app.keymap.label(Command::Quit), "quit"));
            hints.push((app.keymap.label(Command::Cancel), "cancel"));
            let mut text = String::new();
            for (key, what) in hints {
                let piece = format!("{key} {what} · ");
                // (the last separator is trimmed, so it need not fit)
                if text.width() + piece.width() - 2 > room.saturating_sub(1) {
                    break;
                }
                text.push_str(&piece);
            }
            let text = text.trim_end_matches(" · ").to_string();
            if text.is_empty() {
                return;
            }
            Line::from(Span::styled(format!("{text} "), base))
        }
    };
    let rw = (right.width().min(room)) as u16;
    if rw > 0 {
        set_line_clipped(buf, area.x + area.width - rw, area.y, &right, rw);
    }
}
