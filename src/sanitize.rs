//! Model output is text, never terminal commands: control characters and escape sequences in
//! it are shown escaped (`\x1b`, `\u{202e}`) so a model cannot clear the screen, set the
//! clipboard (OSC 52), retitle the window or hide text with bidi overrides.

/// Replaces every control character except newline and tab, and every bidi override or
/// isolate, with a visible escape.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            if (c as u32) < 0x80 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_sequences_and_bidi() {
        assert_eq!(escape_controls("plain\nline\t"), "plain\nline\t");
        assert_eq!(escape_controls("\x1b[2J"), "\\x1b[2J");
        assert_eq!(
            escape_controls("\x1b]52;c;aGk=\x07"),
            "\\x1b]52;c;aGk=\\x07"
        );
        assert_eq!(escape_controls("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(escape_controls("\r\x08"), "\\x0d\\x08");
        assert_eq!(escape_controls("\u{9b}"), "\\u{9b}");
    }
}
