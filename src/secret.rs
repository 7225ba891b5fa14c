//! A string that must never be shown: API keys and the master key.
//!
//! `Debug` and `Display` print a fixed placeholder, and the type has no `Serialize`, so a key
//! cannot reach a log line, a session file or `--json` output by accident. The one way to read
//! it is [`Secret::expose`], used where the key is put on the wire.

use std::fmt;

/// What a secret looks like wherever it is printed.
pub const REDACTED: &str = "[redacted]";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The key itself, for an HTTP header. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces every occurrence of this secret in `text` (for upstream error bodies that
    /// echo the key back).
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, REDACTED)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(s.expose(), "sk-very-secret");
        assert_eq!(s.scrub("bad key sk-very-secret!"), "bad key [redacted]!");
    }
}
