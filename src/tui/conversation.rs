//! The conversation pane: every message with its header (who answered, TTFT, tokens, cost,
//! badges), markdown bodies, and scrolling.
//!
//! Long histories stay fast: each entry's wrapped lines are cached by entry id, width and a
//! fingerprint of its content, and a frame lays out only the entries it shows. The scroll
//! position is the first visible line as (entry, line), or `Bottom` to follow new text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::sanitize::escape_controls;
use crate::store::session::{Answer, AnswerState, Entry};

use super::fmt;
use super::highlight::Highlighter;
use super::markdown::{self, Piece, wrap_pieces};
use super::theme::{Role, Theme};
use super::toolblock;
use crate::widgets::wrap::pieces_line;

/// The gutter in front of the user's messages.
const USER_GUTTER: &str = "▍ ";
/// Lines shown above a message or match scrolled to.
const REVEAL_CONTEXT: usize = 2;
/// The pane's inner height from which the system prompt keeps a line of its own.
pub const PINNED_MIN_HEIGHT: u16 = 3;
/// The most cached layouts kept; beyond it the cache is cleared (it refills from what is seen).
const CACHE_LIMIT: usize = 4096;

/// Where the view starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scroll {
    /// Follow the end.
    #[default]
    Bottom,
    /// The first visible line is line `line` of entry `entry`.
    At { entry: usize, line: usize },
}

#[derive(Debug)]
struct Cached {
    width: u16,
    key: u64,
    lines: Rc<Vec<Line<'static>>>,
}

/// Scroll position and the layout cache.
#[derive(Debug, Default)]
pub struct ConversationView {
    pub scroll: Scroll,
    cache: RefCell<HashMap<u64, Cached>>,
    /// While following the end: the first line shown when `view` pages a stream (a page at a
    /// time instead of a line at a time, where the pane cannot be scrolled cheaply).
    pub paged: std::cell::Cell<Option<PageTop>>,
    /// The selected message (an index into the entries), with the conversation focused.
    pub selected: Option<usize>,
}

/// Where a page of a streamed answer starts: line `line` of the entry at `entry`, which had
/// the id `id` (after a branch, a delete or another session the index names another entry,
/// and the page is taken again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageTop {
    pub entry: usize,
    pub line: usize,
    pub id: u64,
}

impl PageTop {
    pub fn at(entries: &[Entry], (entry, line): (usize, usize)) -> Option<PageTop> {
        let id = entries.get(entry)?.id();
        Some(PageTop { entry, line, id })
    }

    /// The position, when it still names the entry it was taken at.
    pub fn pos(self, entries: &[Entry]) -> Option<(usize, usize)> {
        (entries.get(self.entry)?.id() == self.id).then_some((self.entry, self.line))
    }
}

/// What is drawn over the entries: the pinned system prompt, the selected message, branch
/// labels and search matches. Applied at draw time, so the cached layouts stay valid.
#[derive(Debug, Default)]
pub struct Decor {
    /// The line pinned on top (the system prompt).
    pub pinned: Option<Line<'static>>,
    pub selected: Option<usize>,
    /// Right-aligned on an entry's first row: `(entry, text)`.
    pub labels: Vec<(usize, String)>,
    /// Text to highlight wherever it shows (lowercase).
    pub find: Option<String>,
    /// The match being looked at: (entry, line).
    pub current: Option<(usize, usize)>,
    /// Said on the bottom border, left (the search).
    pub footer: Option<String>,
}

/// What rendering needs besides the entries.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub theme: &'a Theme,
    pub highlighter: &'a Highlighter,
}

impl ConversationView {
    /// Forgets every cached layout (theme change, new conversation).
    pub fn clear_cache(&self) {
        self.cache.borrow_mut().clear();
    }

    /// The lines of one entry at `width`, from the cache when nothing changed.
    pub fn lines(&self, e: &Entry, width: u16, ctx: Ctx<'_>) -> Rc<Vec<Line<'static>>> {
        let key = fingerprint(e);
        let id = e.id();
        if let Some(c) = self.cache.borrow().get(&id)
            && c.width == width
            && c.key == key
        {
            return c.lines.clone();
        }
        let lines = Rc::new(entry_lines(e, width, ctx));
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(
            id,
            Cached {
                width,
                key,
                lines: lines.clone(),
            },
        );
        lines
    }

    fn len(&self, entries: &[Entry], i: usize, width: u16, ctx: Ctx<'_>) -> usize {
        entries
            .get(i)
            .map_or(0, |e| self.lines(e, width, ctx).len())
    }

    /// The first visible line when following the end.
    fn bottom_top(
        &self,
        entries: &[Entry],
        width: u16,
        height: usize,
        ctx: Ctx<'_>,
    ) -> (usize, usize) {
        let mut need = height;
        for i in (0..entries.len()).rev() {
            let n = self.len(entries, i, width, ctx);
            if n >= need {
                return (i, n - need);
            }
            need -= n;
        }
        (0, 0)
    }

    fn top(&self, entries: &[Entry], width: u16, height: usize, ctx: Ctx<'_>) -> (usize, usize) {
        match self.scroll {
            Scroll::Bottom => self.bottom_top(entries, width, height, ctx),
            Scroll::At { entry, line } => (entry, line),
        }
    }

    /// Scrolls by `delta` lines (negative is up); reaching the end follows it again.
    pub fn scroll_by(
        &mut self,
        entries: &[Entry],
        width: u16,
        height: usize,
        delta: i64,
        ctx: Ctx<'_>,
    ) {
        let (mut entry, mut line) = self.top(entries, width, height, ctx);
        if delta < 0 {
            let mut n = delta.unsigned_abs() as usize;
            while n > 0 {
                if line > 0 {
                    let take = line.min(n);
                    line -= take;
                    n -= take;
                } else if entry > 0 {
                    entry -= 1;
                    line = self.len(entries, entry, width, ctx);
                } else {
                    break;
                }
            }
            self.scroll = Scroll::At { entry, line };
        } else {
            let mut n = delta as usize;
            while n > 0 && entry < entries.len() {
                let len = self.len(entries, entry, width, ctx);
                if line + n < len {
                    line += n;
                    n = 0;
                } else {
                    n -= len - line;
                    entry += 1;
                    line = 0;
                }
            }
            self.scroll = Scroll::At { entry, line };
        }
        let bottom = self.bottom_top(entries, width, height, ctx);
        if let Scroll::At { entry, line } = self.scroll
            && (entry, line) >= bottom
        {
            self.scroll = Scroll::Bottom;
        }
    }

    /// Scrolls so line `at.1` of entry `at.0` shows, with a little context above it when it
    /// was out of sight; nothing moves when it already shows.
    pub fn reveal(
        &mut self,
        entries: &[Entry],
        width: u16,
        height: usize,
        at: (usize, usize),
        ctx: Ctx<'_>,
    ) {
        if at.0 >= entries.len() || height == 0 {
            return;
        }
        let top = self.top(entries, width, height, ctx);
        let shows = if at < top {
            false
        } else {
            // Lines from the top of the view to `at`.
            let mut n = 0usize;
            let (mut e, mut l) = top;
            while (e, l) < at && n < height {
                let len = self.len(entries, e, width, ctx);
                if e == at.0 {
                    n += at.1 - l;
                    break;
                }
                n += len.saturating_sub(l);
                e += 1;
                l = 0;
            }
            n < height
        };
        if shows {
            return;
        }
        self.scroll = Scroll::At {
            entry: at.0,
            line: at.1,
        };
        self.scroll_by(entries, width, height, -(REVEAL_CONTEXT as i64), ctx);
    }

    pub fn scroll_top(&mut self) {
        self.scroll = Scroll::At { entry: 0, line: 0 };
    }

    pub fn scroll_bottom(&mut self) {
        self.scroll = Scroll::Bottom;
    }

    /// Draws the pane: a bordered block titled `title`, the visible lines, and an empty-state
    /// hint when there is nothing yet.
    #[allow(clippy::too_many_arguments)]
    pub fn render(
        &self,
        entries: &[Entry],
        area: Rect,
        buf: &mut Buffer,
        ctx: Ctx<'_>,
        focused: bool,
        title: &str,
        empty_hint: &str,
        decor: Decor,
    ) {
        let theme = ctx.theme;
        let mut block = super::view::pane_block(theme, title, focused);
        // Where the lines start, and whether the end shows: a position scrolled up that
        // reaches the end (the pane grew, or everything fits) draws as following it.
        let (top, end_shows) = {
            let mut inner = block.inner(area);
            if decor.pinned.is_some() && inner.height > PINNED_MIN_HEIGHT {
                inner.height -= 1;
            }
            let (width, height) = (inner.width, usize::from(inner.height));
            // (a streamed page needs no walk to the end)
            let bottom = || self.bottom_top(entries, width, height, ctx);
            match (self.scroll, self.paged.get().and_then(|p| p.pos(entries))) {
                (Scroll::Bottom, Some(page)) => (page, true),
                (Scroll::Bottom, None) => (bottom(), true),
                (Scroll::At { entry, line }, _) => {
                    let bottom = bottom();
                    if (entry, line) >= bottom {
                        (bottom, true)
                    } else {
                        ((entry, line), false)
                    }
                }
            }
        };
        if !end_shows {
            block = block.title_bottom(
                Line::from(Span::styled(
                    " ↓ more below · Ctrl+End follows ",
                    theme.fg(Role::Warning),
                ))
                .right_aligned(),
            );
        }
        if let Some(f) = &decor.footer {
            block = block.title_bottom(Line::from(Span::styled(
                f.clone(),
                theme.fg(Role::Accent).add_modifier(Modifier::BOLD),
            )));
        }
        let mut inner = block.inner(area);
        block.render(area, buf);
        if inner.width == 0 || inner.height == 0 {
            return;
        }
        // The system prompt stays on the pane's first line.
        if let Some(line) = decor
            .pinned
            .clone()
            .filter(|_| inner.height > PINNED_MIN_HEIGHT)
        {
            super::view::set_line_clipped(buf, inner.x, inner.y, &line, inner.width);
            inner.y += 1;
            inner.height -= 1;
        }
        if entries.is_empty() {
            let hint = Paragraph::new(ratatui::text::Text::styled(
                empty_hint.to_string(),
                theme.fg(Role::Muted),
            ))
            .wrap(Wrap { trim: true });
            hint.render(inner, buf);
            return;
        }
        let width = inner.width;
        let height = inner.height as usize;
        let (mut entry, mut skip) = top;
        let mut row = 0usize;
        while row < height && entry < entries.len() {
            let lines = self.lines(&entries[entry], width, ctx);
            for (n, l) in lines.iter().enumerate().skip(skip) {
                if row >= height {
                    break;
                }
                let y = inner.y + row as u16;
                buf.set_line(inner.x, y, l, width);
                decorate(
                    buf,
                    Rect {
                        y,
                        height: 1,
                        ..inner
                    },
                    (entry, n),
                    &decor,
                    theme,
                );
                row += 1;
            }
            skip = 0;
            entry += 1;
        }
    }
}

fn fingerprint(e: &Entry) -> u64 {
    match e {
        Entry::User(u) => u.text.len() as u64,
        Entry::Answer(a) => {
            let flags = u64::from(a.badges.retried)
                | u64::from(a.badges.fell_back) << 1
                | u64::from(a.badges.continued) << 2
                | u64::from(a.badges.restarted) << 3
                | u64::from(a.deployment.is_some()) << 4
                | u64::from(a.usage.is_some()) << 5
                | u64::from(a.error.is_some()) << 6
                | u64::from(a.badges.cached) << 7
                | (a.state as u64) << 8;
            let calls: usize = a.tool_calls.iter().map(|c| c.arguments.len() + 1).sum();
            (a.text.len() as u64) << 16 | flags | (calls as u64) << 40
        }
        Entry::ToolResult(t) => t.text.len() as u64,
    }
}

/// The lines of one entry, ending with a blank separator line.
pub fn entry_lines(e: &Entry, width: u16, ctx: Ctx<'_>) -> Vec<Line<'static>> {
    let theme = ctx.theme;
    let w = width as usize;
    let mut out = Vec::new();
    match e {
        Entry::User(u) => {
            let gutter = (USER_GUTTER.to_string(), theme.fg(Role::User));
            out.push(Line::from(vec![
                Span::styled(USER_GUTTER, theme.fg(Role::User)),
                Span::styled("you", theme.fg(Role::User).add_modifier(Modifier::BOLD)),
                Span::styled(format!(" → {}", u.group), theme.fg(Role::Muted)),
            ]));
            let text = escape_controls(&super::attach::folded(&u.text)).replace('\t', "    ");
            let body = vec![(text, theme.fg(Role::Fg))];
            for line in wrap_pieces(&body, w.saturating_sub(2).max(1)) {
                let mut pieces = vec![gutter.clone()];
                pieces.extend(line);
                out.push(pieces_line(pieces));
            }
        }
        Entry::Answer(a) => {
            for line in wrap_pieces(&header(a, theme), w) {
                out.push(pieces_line(line));
            }
            let text = escape_controls(&a.text);
            if text.is_empty() && a.tool_calls.is_empty() && a.state == AnswerState::Streaming {
                out.push(Line::from(Span::styled("…", theme.fg(Role::Muted))));
            } else if !text.is_empty() {
                let hl = (a.state != AnswerState::Streaming).then_some(ctx.highlighter);
                out.extend(markdown::render(&text, w, theme, hl));
            }
            for call in &a.tool_calls {
                out.push(toolblock::call_line(call, w, theme));
            }
            if let Some(err) = &a.error {
                let pieces = vec![(format!("✖ {}", escape_controls(err)), theme.fg(Role::Error))];
                for line in wrap_pieces(&pieces, w) {
                    out.push(pieces_line(line));
                }
            }
        }
        Entry::ToolResult(t) => out.push(toolblock::result_line(t, w, theme)),
    }
    out.push(Line::default());
    out
}

/// `◆ fast-steady · fast  ttft 250 ms · 80 tok · 1.3 s · $0.000049  retried  fell back`.
pub fn header(a: &Answer, theme: &Theme) -> Vec<Piece> {
    let muted = theme.fg(Role::Muted);
    let accent = theme.fg(Role::Accent).add_modifier(Modifier::BOLD);
    let mut p: Vec<Piece> = Vec::new();
    let who = match (&a.deployment, a.state) {
        (Some(d), _) => d.clone(),
        (None, AnswerState::Streaming) => "…".to_string(),
        (None, _) => a.group.clone(),
    };
    p.push(("◆ ".to_string(), accent));
    let group = match &a.answered_group {
        Some(g) if *g != a.group => format!(" · {} → {g}", a.group),
        _ if who == a.group => String::new(),
        _ => format!(" · {}", a.group),
    };
    p.push((who, accent));
    p.push((group, muted));
    let mut badge = |text: &str, role: Role| {
        p.push((" ".to_string(), Style::new()));
        p.push((format!(" {text} "), theme.badge(role)));
    };
    if a.badges.retried {
        badge("retried", Role::Warning);
    }
    if a.badges.fell_back {
        badge("fell back", Role::Warning);
    }
    if a.badges.continued {
        badge("continued", Role::Info);
    }
    if a.badges.restarted {
        badge("restarted", Role::Info);
    }
    if a.badges.cached {
        badge("cached", Role::Success);
    }
    match a.state {
        AnswerState::Cancelled => badge("cancelled", Role::Muted),
        AnswerState::Failed => badge("failed", Role::Error),
        AnswerState::Interrupted => badge("interrupted", Role::Muted),
        AnswerState::Streaming | AnswerState::Done => {}
    }
    if a.state == AnswerState::Streaming {
        return p;
    }
    let total = a
        .total_ms
        .map(|t| format!(" · {}", fmt::ms(t)))
        .unwrap_or_default();
    if a.text.is_empty() && a.tool_calls.is_empty() && a.usage.is_none() {
        // Nothing came back: only how long it took (if it was asked at all).
        if !total.is_empty() {
            p.push((format!("  after{}", total.trim_start_matches(" ·")), muted));
        }
        return p;
    }
    // Unknown (an answer cut before it was saved, a plain call): said by leaving it out.
    let ttft = a
        .ttft_ms
        .map(|t| format!("ttft {} · ", fmt::ms(t)))
        .unwrap_or_default();
    let tokens = match a.usage {
        Some(u) if u.estimated => format!("~{} tok", u.output),
        Some(u) => format!("{} tok", u.output),
        None => format!("~{} tok", crate::provider::estimate_tokens(&a.text)),
    };
    p.push((
        format!("  {ttft}{tokens}{total} · {}", fmt::cost(a.cost)),
        muted,
    ));
    p
}

/// The line pinned on top of the conversation while it has a system prompt (or parameters):
/// `⚙ coder · temperature 0.2 │ You review Rust code…`, the prompt on one line.
pub fn settings_line(s: &crate::store::session::Settings, theme: &Theme) -> Option<Line<'static>> {
    if s.is_empty() {
        return None;
    }
    let label = match (&s.role, &s.system) {
        (Some(r), _) => format!("⚙ role {r}"),
        (None, Some(_)) => "⚙ system".to_string(),
        (None, None) => "⚙".to_string(),
    };
    let mut spans = vec![Span::styled(
        label,
        theme.fg(Role::Accent).add_modifier(Modifier::BOLD),
    )];
    let params = s.params_text();
    if params != "defaults" {
        spans.push(Span::styled(format!(" · {params}"), theme.fg(Role::Muted)));
    }
    if let Some(p) = &s.system {
        let flat = p.split_whitespace().collect::<Vec<_>>().join(" ");
        spans.push(Span::styled(" │ ", theme.fg(Role::Muted)));
        spans.push(Span::styled(
            escape_controls(&flat).into_owned(),
            theme.fg(Role::Muted).add_modifier(Modifier::ITALIC),
        ));
    }
    Some(Line::from(spans))
}

/// Draws the decor of one row (line `at.1` of entry `at.0`): the selection, a branch label on
/// an entry's first row, search matches.
fn decorate(buf: &mut Buffer, row: Rect, at: (usize, usize), decor: &Decor, theme: &Theme) {
    if decor.selected == Some(at.0) && at.1 == 0 {
        buf.set_style(row, theme.selected());
    }
    if at.1 == 0
        && let Some((_, label)) = decor.labels.iter().find(|(e, _)| *e == at.0)
    {
        let w = label.chars().count() as u16;
        if w < row.width {
            let x = row.x + row.width - w;
            buf.set_string(x, row.y, label, theme.badge(Role::Info));
        }
    }
    if let Some(needle) = decor.find.as_deref().filter(|n| !n.is_empty()) {
        let current = decor.current == Some(at);
        highlight(buf, row, needle, current, theme);
    }
}

/// Styles every occurrence of `needle` (lowercase) in the row's cells.
fn highlight(buf: &mut Buffer, row: Rect, needle: &str, current: bool, theme: &Theme) {
    // The row as characters, each with its column.
    let mut cols: Vec<(u16, char)> = Vec::with_capacity(usize::from(row.width));
    for x in row.x..row.x + row.width {
        let sym = buf[(x, row.y)].symbol();
        if let Some(c) = sym.chars().next() {
            if sym.is_empty() {
                continue;
            }
            cols.push((x, c.to_lowercase().next().unwrap_or(c)));
        }
    }
    let want: Vec<char> = needle.chars().collect();
    if want.is_empty() || cols.len() < want.len() {
        return;
    }
    let style = if current {
        theme.badge(Role::Warning).add_modifier(Modifier::BOLD)
    } else {
        theme.selected()
    };
    let mut i = 0;
    while i + want.len() <= cols.len() {
        if cols[i..i + want.len()]
            .iter()
            .map(|(_, c)| *c)
            .eq(want.iter().copied())
        {
            for (x, _) in &cols[i..i + want.len()] {
                buf[(*x, row.y)].set_style(style);
            }
            i += want.len();
        } else {
            i += 1;
        }
    }
}
