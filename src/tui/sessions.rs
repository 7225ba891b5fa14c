//! The saved-conversations overlay: every session file, newest first, with its date, model
//! groups, cost and the start of its first message; Enter reopens one, F2 renames, Del
//! deletes (`sessionlist`). Typing searches them all: the sessions holding the text, each with its first match in context. The list and the matches arrive
//! from the runner (`Effect::ListSessions` → `Action::SessionsListed`,
//! `Effect::SearchSessions` → `Action::SessionsFound`).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::sanitize::escape_controls;
use crate::store::session::SessionInfo;
use crate::store::session_search::SessionMatch;

use super::sessionlist::ListEdit;
use super::sessionlist::ListExtra;
use super::theme::{Role, Theme};

/// Widest the overlay gets.
const WIDTH: u16 = 110;
/// From this inner width the rows show the year and the model groups.
const WIDE_ROWS: u16 = 100;

/// What the overlay lists: every session, or, with a query, those holding it.
pub struct Shown<'a> {
    pub list: Option<&'a Result<Vec<SessionInfo>, String>>,
    pub query: &'a str,
    pub found: Option<&'a Result<Vec<SessionMatch>, String>>,
}

/// Draws the overlay centered in `area`.
pub fn render(
    shown: &Shown,
    selected: usize,
    current: &str,
    extra: &ListExtra,
    area: Rect,
    buf: &mut Buffer,
    theme: &Theme,
) {
    let width = WIDTH.min(area.width.saturating_sub(2));
    let searching = !shown.query.is_empty();
    let n = match (searching, shown.list, shown.found) {
        (false, Some(Ok(l)), _) => l.len(),
        (true, _, Some(Ok(f))) => f.len(),
        _ => 1,
    };
    // One line more for the search line.
    // `max` then `min`, not `clamp`: a terminal under 7 rows must not panic.
    let height = (n as u16 + 3).max(5).min(area.height.saturating_sub(2));
    let rect = super::view::centered(area, width, height);
    let hint = if searching {
        " ↑↓ · Enter open · F2 rename · Del delete · Esc all "
    } else {
        " type to search · ↑↓ · Enter open · F2 rename · Del delete · Esc close "
    };
    let inner = super::view::overlay_frame(buf, theme, rect, ("Conversations", true), hint);
    let muted = theme.fg(Role::Muted);
    let search = if let Some(edit) = &extra.edit {
        edit_line(edit, theme)
    } else if searching {
        Line::from(vec![
            Span::styled("search: ", muted),
            Span::styled(
                escape_controls(shown.query).into_owned(),
                theme.fg(Role::Accent),
            ),
            Span::styled("▏", theme.fg(Role::Accent)),
        ])
    } else {
        Line::from(Span::styled(
            "search: type to find text in any conversation",
            muted,
        ))
    };
    super::view::set_line_clipped(buf, inner.x, inner.y, &search, inner.width);
    let inner = Rect {
        y: inner.y + 1,
        height: inner.height.saturating_sub(1),
        ..inner
    };
    let say = |buf: &mut Buffer, text: String, role: Role| {
        let l = Line::from(Span::styled(text, theme.fg(role)));
        super::view::set_line_clipped(buf, inner.x, inner.y, &l, inner.width);
    };
    if searching {
        match shown.found {
            None => say(buf, "searching…".to_string(), Role::Muted),
            Some(Err(e)) => say(buf, format!("cannot search: {e}"), Role::Error),
            Some(Ok(found)) if found.is_empty() => say(
                buf,
                "no conversation holds this text (Backspace to change it)".to_string(),
                Role::Muted,
            ),
            Some(Ok(found)) => render_found(found, selected, current, inner, buf, theme),
        }
        return;
    }
    let items = match shown.list {
        None => {
            say(buf, "reading…".to_string(), Role::Muted);
            return;
        }
        Some(Err(e)) => {
            say(buf, format!("cannot list sessions: {e}"), Role::Error);
            return;
        }
        Some(Ok(items)) if items.is_empty() => {
            say(buf, "no saved conversations yet".to_string(), Role::Muted);
            return;
        }
        Some(Ok(items)) => items,
    };
    let wide = inner.width >= WIDE_ROWS;
    draw_rows(items, selected, inner, buf, theme, |s| {
        let d = extra.details.get(&s.name);
        let models = d.map_or(String::new(), |d| d.models.join(","));
        let cost = d.map_or(String::new(), |d| {
            super::fmt::Spend {
                known: d.spent,
                unpriced: d.unpriced,
            }
            .to_string()
        });
        let when = s.modified.map(date).unwrap_or_default();
        let mut row = vec![
            mark(&s.name, current, theme),
            Span::styled(format!("{:<20} ", s.name), theme.fg(Role::Fg)),
        ];
        if wide {
            row.push(Span::styled(format!("{when:<16}  "), muted));
            row.push(Span::styled(
                format!("{:<12} ", clip(&models, 12)),
                theme.fg(Role::Info),
            ));
        } else {
            // Without the year; the models only where there is room.
            row.push(Span::styled(
                format!("{:<11}  ", when.get(5..).unwrap_or("")),
                muted,
            ));
        }
        row.push(Span::styled(format!("{cost:>9}  "), muted));
        row.push(Span::styled(
            escape_controls(&s.preview).into_owned(),
            theme.fg(Role::Fg),
        ));
        row
    });
}

/// `2023-11-14 22:13` (UTC).
pub fn date(t: std::time::SystemTime) -> String {
    let n = crate::store::session::new_session_name(t);
    format!(
        "{}-{}-{} {}:{}",
        &n[0..4],
        &n[4..6],
        &n[6..8],
        &n[9..11],
        &n[11..13]
    )
}

/// At most `n` characters, `…` where cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return escape_controls(s).into_owned();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    escape_controls(&out).into_owned()
}

/// The top line while renaming or deleting.
fn edit_line(edit: &ListEdit, theme: &Theme) -> Line<'static> {
    match edit {
        ListEdit::Rename { from, to } => Line::from(vec![
            Span::styled(
                format!("rename {} to: ", escape_controls(from)),
                theme.fg(Role::Muted),
            ),
            Span::styled(escape_controls(to).into_owned(), theme.fg(Role::Accent)),
            Span::styled("▏ Enter renames · Esc keeps", theme.fg(Role::Muted)),
        ]),
        ListEdit::Delete(name) => Line::from(Span::styled(
            format!(
                "delete {}? Enter or y deletes its file · any other key keeps it",
                escape_controls(name)
            ),
            theme.fg(Role::Error).add_modifier(Modifier::BOLD),
        )),
    }
}

/// `▶` before the conversation open now.
fn mark(name: &str, current: &str, theme: &Theme) -> Span<'static> {
    Span::styled(
        if name == current { "▶ " } else { "  " },
        theme.fg(Role::Accent),
    )
}

/// One row per item, scrolled so `selected` shows, and highlighted.
fn draw_rows<T>(
    items: &[T],
    selected: usize,
    inner: Rect,
    buf: &mut Buffer,
    theme: &Theme,
    spans: impl Fn(&T) -> Vec<Span<'static>>,
) {
    let h = inner.height as usize;
    let skip = selected.saturating_sub(h.saturating_sub(1));
    for (i, item) in items.iter().enumerate().skip(skip).take(h) {
        let mut line = Line::from(spans(item));
        if i == selected {
            line = line.style(theme.selected());
        }
        let y = inner.y + (i - skip) as u16;
        super::view::set_line_clipped(buf, inner.x, y, &line, inner.width);
    }
}

/// The sessions holding the query: name, how many messages hold it, and the first match in
/// its context, highlighted.
fn render_found(
    found: &[SessionMatch],
    selected: usize,
    current: &str,
    inner: Rect,
    buf: &mut Buffer,
    theme: &Theme,
) {
    let muted = theme.fg(Role::Muted);
    draw_rows(found, selected, inner, buf, theme, |m| {
        let (before, rest) = m.snippet.split_at(m.at.start);
        let (hit, after) = rest.split_at(m.at.len());
        vec![
            mark(&m.session.name, current, theme),
            Span::styled(format!("{:<20}", m.session.name), theme.fg(Role::Fg)),
            Span::styled(format!("{:>4}×  ", m.hits), muted),
            Span::styled(escape_controls(before).into_owned(), theme.fg(Role::Fg)),
            Span::styled(
                escape_controls(hit).into_owned(),
                theme.fg(Role::Accent).add_modifier(Modifier::BOLD),
            ),
            Span::styled(escape_controls(after).into_owned(), theme.fg(Role::Fg)),
        ]
    });
}
