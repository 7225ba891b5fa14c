//! Wrapping styled text to a width: at spaces where it can, inside words where it must,
//! measured in terminal columns (wide characters count two). Used by the markdown renderer,
//! the live pane and the routing log.

use ratatui::style::Style;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// A styled piece of text.
pub type Piece = (String, Style);

/// A line of styled pieces, each a span.
pub fn pieces_line(pieces: Vec<Piece>) -> ratatui::text::Line<'static> {
    ratatui::text::Line::from(
        pieces
            .into_iter()
            .map(|(t, s)| ratatui::text::Span::styled(t, s))
            .collect::<Vec<_>>(),
    )
}

/// Wraps styled pieces into lines of at most `width` columns, breaking at spaces where it
/// can and inside words where it must. `\n` in a piece forces a break.
pub fn wrap_pieces(pieces: &[Piece], width: usize) -> Vec<Vec<Piece>> {
    let width = width.max(1);
    let mut lines: Vec<Vec<Piece>> = Vec::new();
    let mut cur: Vec<Piece> = Vec::new();
    let mut cur_w = 0usize;
    // Tokens: words and runs of spaces, each with its style.
    for (text, style) in pieces {
        for (i, segment) in text.split('\n').enumerate() {
            if i > 0 {
                lines.push(std::mem::take(&mut cur));
                cur_w = 0;
            }
            for token in split_keep_spaces(segment) {
                let tw = token.width();
                let is_space = token.starts_with(' ');
                if cur_w + tw <= width {
                    push_piece(&mut cur, token, *style);
                    cur_w += tw;
                    continue;
                }
                if is_space {
                    // A break here: the spaces vanish.
                    lines.push(std::mem::take(&mut cur));
                    cur_w = 0;
                    continue;
                }
                if tw <= width && cur_w > 0 {
                    lines.push(std::mem::take(&mut cur));
                    push_piece(&mut cur, token, *style);
                    cur_w = tw;
                    continue;
                }
                // A word longer than a line starts on its own line and is split by characters.
                if cur_w > 0 {
                    lines.push(std::mem::take(&mut cur));
                    cur_w = 0;
                }
                for ch in token.chars() {
                    let cw = ch.width().unwrap_or(0);
                    if cur_w + cw > width && cur_w > 0 {
                        lines.push(std::mem::take(&mut cur));
                        cur_w = 0;
                    }
                    let mut buf = [0u8; 4];
                    push_piece(&mut cur, ch.encode_utf8(&mut buf), *style);
                    cur_w += cw;
                }
            }
        }
    }
    lines.push(cur);
    for l in &mut lines {
        trim_trailing_spaces(l);
    }
    lines
}

fn trim_trailing_spaces(line: &mut Vec<Piece>) {
    while let Some((t, _)) = line.last_mut() {
        let trimmed = t.trim_end_matches(' ').len();
        if trimmed == 0 {
            line.pop();
        } else {
            t.truncate(trimmed);
            break;
        }
    }
}

pub fn push_piece(line: &mut Vec<Piece>, text: &str, style: Style) {
    match line.last_mut() {
        Some((t, s)) if *s == style => t.push_str(text),
        _ => line.push((text.to_string(), style)),
    }
}

fn split_keep_spaces(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = None;
    for (i, c) in s.char_indices() {
        let sp = c == ' ';
        if in_space.is_some_and(|prev| prev != sp) {
            out.push(&s[start..i]);
            start = i;
        }
        in_space = Some(sp);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Cuts pieces to at most `width` columns.
pub fn truncate_pieces(pieces: Vec<Piece>, width: usize) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut w = 0;
    for (t, s) in pieces {
        let tw = t.width();
        if w + tw <= width {
            w += tw;
            out.push((t, s));
            continue;
        }
        let mut cut = String::new();
        for ch in t.chars() {
            let cw = ch.width().unwrap_or(0);
            if w + cw > width {
                break;
            }
            w += cw;
            cut.push(ch);
        }
        out.push((cut, s));
        break;
    }
    out
}

/// Breaks a line of code at exactly `width` columns (code is not reflowed at spaces).
pub fn hard_wrap(row: Vec<Piece>, width: usize) -> Vec<Vec<Piece>> {
    let mut lines = vec![Vec::new()];
    let mut w = 0;
    for (text, style) in row {
        for ch in text.chars() {
            let cw = ch.width().unwrap_or(0);
            if w + cw > width && w > 0 {
                lines.push(Vec::new());
                w = 0;
            }
            if let Some(line) = lines.last_mut() {
                let mut buf = [0u8; 4];
                push_piece(line, ch.encode_utf8(&mut buf), style);
            }
            w += cw;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_and_splits_long_words() {
        let p = vec![("hello wide world abcdefghij".to_string(), Style::new())];
        let lines: Vec<String> = wrap_pieces(&p, 8)
            .into_iter()
            .map(|l| l.into_iter().map(|(t, _)| t).collect())
            .collect();
        assert_eq!(lines, ["hello", "wide", "world", "abcdefgh", "ij"]);
    }
}
