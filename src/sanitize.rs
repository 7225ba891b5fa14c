//! Model output is text, never terminal commands: control characters and escape sequences in
//! it are shown escaped (`\x1b`, `\u{202e}`) so a model cannot clear the screen, set the
//! clipboard (OSC 52), retitle the window or hide text with bidi overrides. The same goes for
//! every other text that came from outside (a client's tags, an upstream's error, a server's
//! deployment names, a config file's model names).
//!
//! Text enters as `&str` and leaves escaped ([`escape_controls`]) for the TUI, for `ask` on a
//! terminal and for diagnostics; [`escape_line`] also escapes newlines and tabs, for a table
//! cell; [`to_safe_json`] writes JSON whose strings carry the same characters as `\u` escapes,
//! so `--json` output is inert on a terminal and means the same to a parser. The command line
//! prints through [`outln!`](crate::outln) and [`errln!`](crate::errln), which escape the
//! whole line (the modules that print deny `println!` and `eprintln!`, so nothing bypasses
//! them).

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

/// Replaces every control character except newline and tab, and every bidi override or
/// isolate, with a visible escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape_where(text, needs_escape)
}

/// [`escape_controls`] that escapes newlines and tabs as well: text that must stay on one
/// line, such as a table cell.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c == '\n' || c == '\t' || needs_escape(c))
}

fn escape_where(text: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escape(c) {
            if (c as u32) < 0x80 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes one line to stdout with [`escape_controls`] applied to all of it. A closed pipe
/// (`llmux stats | head -1`) ends the output quietly. Use [`outln!`](crate::outln).
pub fn print_line(args: fmt::Arguments<'_>) {
    write_line(&mut io::stdout().lock(), args);
}

/// [`print_line`] to stderr. Use [`errln!`](crate::errln).
pub fn eprint_line(args: fmt::Arguments<'_>) {
    write_line(&mut io::stderr().lock(), args);
}

fn write_line(out: &mut impl Write, args: fmt::Arguments<'_>) {
    let text = match args.as_str() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(args.to_string()),
    };
    let _ = writeln!(out, "{}", escape_controls(&text));
}

/// `println!` with every control character and bidi override escaped (see
/// [`print_line`]): what the command line prints to stdout.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::sanitize::print_line(::std::format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::sanitize::print_line(::std::format_args!($($arg)*))
    };
}

/// `eprintln!` with every control character and bidi override escaped (see
/// [`eprint_line`]): every diagnostic on stderr, which can quote an upstream or a client.
#[macro_export]
macro_rules! errln {
    () => {
        $crate::sanitize::eprint_line(::std::format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::sanitize::eprint_line(::std::format_args!($($arg)*))
    };
}

/// Escapes every string in `value`, keys included, with [`escape_controls`]: JSON from
/// another program (a server the monitor watches), made safe to show before it is read.
pub fn escape_json_strings(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(escaped) = escape_controls(s) {
                *s = escaped;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(escape_json_strings),
        Value::Object(map) => {
            if map.keys().any(|k| k.chars().any(needs_escape)) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (escape_controls(&k).into_owned(), v))
                    .collect();
            }
            map.values_mut().for_each(escape_json_strings);
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
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
    fn a_line_escape_keeps_text_on_one_line() {
        assert_eq!(escape_line("a\nb\tc\x1b"), "a\\x0ab\\x09c\\x1b");
        assert_eq!(escape_line("plain é"), "plain é");
    }

    #[test]
    fn printed_lines_are_escaped_whole() {
        let mut out = Vec::new();
        write_line(&mut out, format_args!("tag {}", "t\x1b]0;TITLE\x07"));
        write_line(&mut out, format_args!("plain"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "tag t\\x1b]0;TITLE\\x07\nplain\n"
        );
    }

    #[test]
    fn json_strings_and_keys_are_escaped_in_place() {
        let mut v = serde_json::json!({
            "id\u{202e}": ["a\x1b[2J", 1, null, {"k": "\u{9b}x"}],
            "n": 2,
        });
        escape_json_strings(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "id\\u{202e}": ["a\\x1b[2J", 1, null, {"k": "\\u{9b}x"}],
                "n": 2,
            })
        );
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
