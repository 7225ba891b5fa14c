//! ASCII in place of the TUI's glyphs, for terminals whose font lacks them: the Linux console
//! (`TERM=linux`) shows braille spinners, block sparklines, round markers and rounded corners
//! as diamonds. With `LLMUX_ASCII=1` (or on `TERM=linux` unless `LLMUX_ASCII=0`) the finished
//! frame is folded cell by cell through one table ([`ascii_of`]) just before it is sent, so
//! every pane gets the same substitutes without knowing about them; each substitute is one
//! column wide, like the glyph it replaces, so nothing moves. The spinner is the one glyph
//! chosen before drawing ([`SPINNER`]), since its frames must stay distinct.

use ratatui::buffer::Buffer;

/// Set to `1` for ASCII glyphs, `0` for the usual ones even on `TERM=linux`.
pub const ASCII_ENV: &str = "LLMUX_ASCII";

/// The spinner's frames in ASCII.
pub const SPINNER: [&str; 4] = ["|", "/", "-", "\\"];

/// Whether to draw in ASCII, from `$LLMUX_ASCII` and `$TERM`.
pub fn ascii_wanted() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    from_env(&var(ASCII_ENV), &var("TERM"))
}

pub fn from_env(ascii: &str, term: &str) -> bool {
    match ascii.trim() {
        "" => term == "linux" || term.starts_with("linux-"),
        "0" | "no" | "false" | "off" => false,
        _ => true,
    }
}

/// The ASCII stand-in for one of the TUI's glyphs (`None`: keep it; text of the conversation
/// in other scripts is left as it is).
pub fn ascii_of(c: char) -> Option<char> {
    Some(match c {
        // sparklines, lowest to highest
        '▁' => '_',
        '▂' => '.',
        '▃' => '-',
        '▄' => '~',
        '▅' => '=',
        '▆' => '+',
        '▇' => '*',
        '█' => '#',
        // health and state markers
        '●' | '◆' | '•' | '◉' | '★' => '*',
        '◐' | '○' | '◦' => 'o',
        '✖' | '×' => 'x',
        '✓' | '✔' => 'v',
        '↪' | '→' | '▸' | '▶' | '⟩' => '>',
        '◂' | '←' | '⟨' => '<',
        '↓' => 'v',
        '↑' => '^',
        '…' => '~',
        '·' | '–' | '—' => '-',
        '§' => 'S',
        '°' => 'o',
        // the gutters and quote bars
        '▍' | '▎' | '▏' => '|',
        // borders
        '─' | '┄' | '┈' => '-',
        '━' | '═' => '=',
        '│' | '┃' | '║' | '┆' | '┊' => '|',
        '╭' | '╮' | '╰' | '╯' | '┌' | '┐' | '└' | '┘' | '┏' | '┓' | '┗' | '┛' | '┼' | '├' | '┤'
        | '┬' | '┴' | '╔' | '╗' | '╚' | '╝' => '+',
        // spinner frames drawn by a pane that does not know the ASCII set
        '\u{2800}'..='\u{28FF}' => '*',
        _ => return None,
    })
}

/// Folds every glyph of `buf` that has an ASCII stand-in.
pub fn fold(buf: &mut Buffer) {
    for cell in &mut buf.content {
        let sym = cell.symbol();
        if sym.is_ascii() {
            continue;
        }
        let mut chars = sym.chars();
        if let (Some(c), None) = (chars.next(), chars.next())
            && let Some(a) = ascii_of(c)
        {
            cell.set_char(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_console_and_the_variable_choose_ascii() {
        assert!(from_env("", "linux"));
        assert!(!from_env("", "xterm-256color"));
        assert!(from_env("1", "xterm-256color"));
        assert!(!from_env("0", "linux"));
    }

    #[test]
    fn substitutes_are_ascii_and_one_column() {
        for c in "▁▂▃▄▅▆▇█●◐✖✓↪→▸…·╭─╮│╰╯┏━┓┃┗┛⠋▍".chars()
        {
            let a = ascii_of(c).unwrap_or_else(|| panic!("{c} has no stand-in"));
            assert!(a.is_ascii_graphic(), "{c} -> {a:?}");
        }
        assert_eq!(ascii_of('日'), None);
    }
}
