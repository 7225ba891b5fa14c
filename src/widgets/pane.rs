//! A pane's frame and lines, as every pane of the TUI and the monitor draws them: the
//! bordered block with its title ([`pane_block`]), what is out of sight said on its bottom
//! border ([`with_hidden`]), and a line cut with `…` where it does not fit
//! ([`set_line_clipped`]).

use ratatui::buffer::Buffer;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType};
use unicode_width::UnicodeWidthStr;

use super::theme::{Role, Theme};

/// `block` with what of its content is out of sight on its bottom border, right-aligned:
/// `↑ 2 more · ↓ 5 more` (`words` name the two directions: `more`/`more`, `older`/`newer`).
/// Nothing hidden, nothing said.
pub fn with_hidden<'a>(
    block: Block<'a>,
    theme: &Theme,
    (above, below): (usize, usize),
    words: (&str, &str),
) -> Block<'a> {
    let hidden: Vec<String> = [(above, "↑", words.0), (below, "↓", words.1)]
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, arrow, what)| format!("{arrow} {n} {what}"))
        .collect();
    if hidden.is_empty() {
        return block;
    }
    block.title_bottom(
        Line::from(Span::styled(
            format!(" {} ", hidden.join(" · ")),
            theme.fg(Role::Warning),
        ))
        .right_aligned(),
    )
}

/// A pane's border: thick and in the accent colour when focused (the shape shows focus even
/// without colour), rounded otherwise.
pub fn pane_block<'a>(theme: &Theme, title: &str, focused: bool) -> Block<'a> {
    let title_style = if focused {
        theme.fg(Role::Accent).add_modifier(Modifier::BOLD)
    } else {
        theme.fg(Role::Muted)
    };
    let marker = if focused { "▸ " } else { "" };
    Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Rounded
        })
        .border_style(theme.border(focused))
        .title(Line::from(Span::styled(
            format!(" {marker}{title} "),
            title_style,
        )))
}

/// Draws `line` in `width` columns; a line that does not fit ends in `…` in the last column,
/// so a cut value (`failing 1/mi`) does not pass for a whole one.
pub fn set_line_clipped(buf: &mut Buffer, x: u16, y: u16, line: &Line, width: u16) {
    let width = width.min(buf.area.right().saturating_sub(x));
    if !buf.area.contains(ratatui::layout::Position { x, y }) {
        return;
    }
    buf.set_line(x, y, line, width);
    if width == 0 || line.width() <= usize::from(width) {
        return;
    }
    let last = x + width - 1;
    // A wide character ending at the edge loses its first cell too, not only its second.
    if width >= 2 && buf[(last - 1, y)].symbol().width() > 1 {
        buf[(last - 1, y)].set_symbol("…");
        buf[(last, y)].set_symbol(" ");
    } else {
        buf[(last, y)].set_symbol("…");
    }
}

#[cfg(test)]
mod tests {
    use ratatui::layout::Rect;

    use super::*;

    fn drawn(text: &str, width: u16) -> String {
        let mut buf = Buffer::empty(Rect::new(0, 0, 8, 1));
        set_line_clipped(&mut buf, 0, 0, &Line::from(text.to_string()), width);
        (0..8).map(|x| buf[(x, 0)].symbol().to_string()).collect()
    }

    #[test]
    fn a_cut_line_ends_in_an_ellipsis_and_a_whole_one_does_not() {
        assert_eq!(drawn("abcdef", 6), "abcdef  ");
        assert_eq!(drawn("abcdefg", 6), "abcde…  ");
        // A wide character cut at the edge gives way whole, not half.
        assert_eq!(drawn("abcd日本", 6), "abcd…   ");
        // (the cell after a wide character is its hidden second half)
        assert_eq!(drawn("abc日本", 6), "abc日 …  ");
    }
}
