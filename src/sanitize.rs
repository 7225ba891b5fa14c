//! Model output is text, never terminal commands: control characters and escape sequences in
//! it are shown escaped (`\x1b`, `\u{202e}`) so a model cannot clear the screen, set the
//! clipboard (OSC 52), retitle the window or hide text with bidi overrides.
//!
//! Text enters as `&str` and leaves escaped ([`escape_controls`]) for the TUI, for `ask` on a
//! terminal and for diagnostics; [`to_safe_json`] writes JSON whose strings carry the same
//! characters as `\u` escapes, so `--json` output is inert on a terminal and means the same to
//! a parser.

use std::io::{self, Write};

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

/// True for what a terminal could act on or that reorders text: C0 and C1 controls and DEL
/// (newline and tab excepted), and the bidi embeddings, overrides, isolates and marks.
pub fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
        )
}

/// `value` as compact JSON in which every character [`needs_escape`] is written as a `\u`
/// escape (serde_json already does so for C0 controls; this adds DEL, C1 and bidi).
pub fn to_safe_json(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, SafeFormatter);
    // Serializing a `Value` into a Vec cannot fail.
    let _ = serde::Serialize::serialize(value, &mut ser);
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's compact output with [`needs_escape`] characters escaped in strings.
struct SafeFormatter;

impl serde_json::ser::Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if needs_escape(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // Every such character is in the Basic Multilingual Plane: one \u escape.
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
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
        assert_eq!(escape_controls("\u{61c}\x7f"), "\\u{61c}\\x7f");
    }

    #[test]
    fn safe_json_means_the_same_and_holds_nothing_a_terminal_acts_on() {
        let text = "a\x1b[2J\u{9b}1m\u{202e}é\x7f\"\\\n🦀";
        let v = serde_json::json!({ "text": text, "n": 1 });
        let s = to_safe_json(&v);
        assert!(!s.chars().any(needs_escape), "{s}");
        assert!(!s.contains('\n'));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
        assert!(
            s.contains("\\u009b") && s.contains("\\u202e") && s.contains('é'),
            "{s}"
        );
    }
}
