//! The saved-conversations overlay: every session file, newest first, with its size and the
//! start of its first message; Enter reopens one. The list arrives from the runner
//! (`Effect::ListSessions` → `Action::SessionsListed`).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use crate::sanitize::escape_controls;
use crate::store::session::SessionInfo;

use super::theme::{Role, Theme};

/// Widest the overlay gets.
const WIDTH: u16 = 90;
/// Bytes in a kilobyte, for sizes.
const KB: f64 = 1024.0;

/// Draws the overlay centered in `area`.
pub fn render(
    list: Option<&Result<Vec<SessionInfo>, String>>,
    selected: usize,
    current: &str,
    area: Rect,
    buf: &mut Buffer,
    theme: &Theme,
) {
    let width = WIDTH.min(area.width.saturating_sub(2));
    let n = match list {
        Some(Ok(l)) => l.len(),
        _ => 1,
    };
    let height = (n as u16 + 2).clamp(4, area.height.saturating_sub(2));
    let rect = super::view::centered(area, width, height);
    Clear.render(rect, buf);
    let block = super::view::pane_block(theme, "Conversations", true).title_bottom(
        Line::from(Span::styled(
            " ↑↓ · Enter open · Esc close ",
            theme.fg(Role::Muted),
        ))
        .right_aligned(),
    );
    let inner = block.inner(rect);
    block.style(theme.base_style()).render(rect, buf);
    let muted = theme.fg(Role::Muted);
    let items = match list {
        None => {
            buf.set_line(
                inner.x,
                inner.y,
                &Line::from(Span::styled("reading…", muted)),
                inner.width,
            );
            return;
        }
        Some(Err(e)) => {
            let l = Line::from(Span::styled(
                format!("cannot list sessions: {e}"),
                theme.fg(Role::Error),
            ));
            buf.set_line(inner.x, inner.y, &l, inner.width);
            return;
        }
        Some(Ok(items)) if items.is_empty() => {
            buf.set_line(
                inner.x,
                inner.y,
                &Line::from(Span::styled("no saved conversations yet", muted)),
                inner.width,
            );
            return;
        }
        Some(Ok(items)) => items,
    };
    let h = inner.height as usize;
    let skip = selected.saturating_sub(h.saturating_sub(1));
    for (i, s) in items.iter().enumerate().skip(skip).take(h) {
        let mark = if s.name == current { "▶ " } else { "  " };
        let mut line = Line::from(vec![
            Span::styled(mark, theme.fg(Role::Accent)),
            Span::styled(format!("{:<20}", s.name), theme.fg(Role::Fg)),
            Span::styled(
                format!("{:>8}  ", format!("{:.1} KB", s.bytes as f64 / KB)),
                muted,
            ),
            Span::styled(escape_controls(&s.preview).into_owned(), theme.fg(Role::Fg)),
        ]);
        if i == selected {
            line = line.style(theme.selected());
        }
        buf.set_line(inner.x, inner.y + (i - skip) as u16, &line, inner.width);
    }
}
