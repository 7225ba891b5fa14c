//! A string that must never be shown: API keys and the master key.
//!
//! `Debug` and `Display` print a fixed placeholder, and the type has no `Serialize`, so a key
//! cannot reach a log line, a session file or `--json` output by accident. The one way to read
//! it is [`Secret::expose`], used where the key is put on the wire.
//!
//! Text that came back from outside (an upstream's error body, a Redis error) goes through
//! [`Secret::scrub`] before it is kept; it finds the key as it was sent and as an upstream may
//! echo it: URL-encoded (`%2B`), JSON-escaped (`\u0073`, `\/`), any mix of those and plain
//! characters, and in base64 (standard or URL-safe, padded or not, alone or inside a longer
//! encoded string such as `Bearer <key>` or `user:<key>`, itself plain or escaped).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What a secret looks like wherever it is printed.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not searched for: they would match ordinary text.
const MIN_SCRUB_LEN: usize = 4;
/// The shortest piece of base64 taken for a secret inside a longer encoded string (shorter
/// pieces of short keys would match ordinary text).
const MIN_BASE64_PIECE: usize = 8;

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

    /// Replaces every occurrence of this secret in `text`, plain or encoded (see the module
    /// docs), with [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        let key = self.0.as_bytes();
        if key.len() < MIN_SCRUB_LEN {
            return text.to_string();
        }
        let mut out = redact_escaped(text, key);
        // The base64 forms can be escaped too (`%2B`, `%3D`, a JSON `\/`).
        let escapes = text.contains(['%', '\\']);
        for form in base64_forms(key) {
            if escapes || out.contains(&form) {
                out = redact_escaped(&out, form.as_bytes());
            }
        }
        out
    }
}

/// `text` with each run that spells `key` byte by byte, every byte plain or escaped (see
/// [`escaped_byte`]), replaced.
fn redact_escaped(text: &str, key: &[u8]) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        // A match starts with the key's first byte (a character's first byte) or an ASCII
        // escape, so `i` is on a character boundary whenever one is found.
        match spelled_at(bytes, i, key) {
            Some(end) if text.is_char_boundary(i) && text.is_char_boundary(end) => {
                out.push_str(&text[copied..i]);
                out.push_str(REDACTED);
                (i, copied) = (end, end);
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Where a run spelling `key` that starts at `i` ends, if one does.
fn spelled_at(bytes: &[u8], i: usize, key: &[u8]) -> Option<usize> {
    let mut j = i;
    for &b in key {
        j += match bytes.get(j) {
            Some(&c) if c == b => 1,
            Some(_) => escaped_byte(&bytes[j..], b)?,
            None => return None,
        };
    }
    Some(j)
}

/// How many bytes at the start of `rest` stand for `b` escaped: `%XX` (URL), `\u00XX` or
/// `\/` (JSON), `+` for a space (a form).
fn escaped_byte(rest: &[u8], b: u8) -> Option<usize> {
    let hex = |digits: &[u8]| {
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| u8::from_str_radix(d, 16).ok())
    };
    match rest {
        [b'%', h, l, ..] if hex(&[*h, *l]) == Some(b) => Some(3),
        [b'\\', b'u', b'0', b'0', h, l, ..] if hex(&[*h, *l]) == Some(b) => Some(6),
        [b'\\', b'/', ..] if b == b'/' => Some(2),
        [b'+', ..] if b == b' ' => Some(1),
        _ => None,
    }
}

/// What `key` looks like in base64, longest first: encoded alone (padded and not), and the
/// part that does not depend on its neighbours when it sits inside a longer encoded string
/// at each of the three alignments (the characters at its edges also carry bits of the
/// neighbours, so they differ from string to string). Standard and URL-safe alphabets.
fn base64_forms(key: &[u8]) -> Vec<String> {
    let mut forms = vec![
        STANDARD.encode(key),
        URL_SAFE.encode(key),
        STANDARD_NO_PAD.encode(key),
        URL_SAFE_NO_PAD.encode(key),
    ];
    for skip in 0..3 {
        let rest = key.get(skip..).unwrap_or_default();
        let whole = &rest[..rest.len() - rest.len() % 3];
        for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            let piece = engine.encode(whole);
            if piece.len() >= MIN_BASE64_PIECE {
                forms.push(piece);
            }
        }
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
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

    const KEY: &str = "sk-proj+SECRET/key=0123456789";

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(s.expose(), "sk-very-secret");
        assert_eq!(s.scrub("bad key sk-very-secret!"), "bad key [redacted]!");
    }

    #[test]
    fn url_and_json_escapes_are_found_in_any_mix() {
        let s = Secret::new(KEY);
        for echoed in [
            "sk-proj%2BSECRET%2Fkey%3D0123456789",
            "sk-proj%2bSECRET%2fkey%3d0123456789",
            // Every byte escaped, as some encoders do.
            &KEY.bytes().map(|b| format!("%{b:02X}")).collect::<String>(),
            &KEY.bytes()
                .map(|b| format!("\\u{b:04x}"))
                .collect::<String>(),
            "sk-proj+SECRET\\/key=0123456789",
        ] {
            assert_eq!(
                s.scrub(&format!("bad key «{echoed}» given")),
                "bad key «[redacted]» given",
                "{echoed}"
            );
        }
        let form = Secret::new("my secret key");
        assert_eq!(form.scrub("k=my+secret+key&x=1"), "k=[redacted]&x=1");
        // Something like the key is not it.
        assert_eq!(
            s.scrub("sk-proj%2BSECRET%2Fkey%3D012345678"),
            "sk-proj%2BSECRET%2Fkey%3D012345678"
        );
    }

    #[test]
    fn base64_is_found_alone_and_inside_longer_strings() {
        let s = Secret::new(KEY);
        for engine in [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            let alone = engine.encode(KEY);
            assert_eq!(s.scrub(&format!("[{alone}]")), "[[redacted]]", "{alone}");
            // Every alignment: 0, 1 and 2 bytes before the key in the encoded string.
            for before in ["Bearer ", "x:", "ab:"] {
                let blob = engine.encode(format!("{before}{KEY} tail"));
                let scrubbed = s.scrub(&blob);
                assert!(
                    scrubbed.contains(REDACTED),
                    "{before:?}: {blob} → {scrubbed}"
                );
                let left = scrubbed.replace(REDACTED, " ");
                let decoded: Vec<u8> = left
                    .split(' ')
                    .flat_map(|part| engine.decode(part).unwrap_or_default())
                    .collect();
                assert!(
                    !String::from_utf8_lossy(&decoded).contains("SECRET"),
                    "{before:?}: {scrubbed}"
                );
                assert!(left.len() < blob.len() / 2, "most of it went: {scrubbed}");
            }
        }
        // Base64 that was then URL-encoded or JSON-escaped (`+`, `/` and `=` are escaped).
        let key = "sk-~~~key???tail0";
        let s = Secret::new(key);
        let standard = STANDARD.encode(key);
        assert_eq!(standard, "c2stfn5+a2V5Pz8/dGFpbDA=");
        for echoed in [
            standard
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D"),
            standard.replace('/', "\\/"),
        ] {
            assert_eq!(s.scrub(&format!("<{echoed}>")), "<[redacted]>", "{echoed}");
        }
    }

    #[test]
    fn short_keys_and_ordinary_text_are_left_alone() {
        assert_eq!(Secret::new("abc").scrub("abc %61bc"), "abc %61bc");
        let s = Secret::new(KEY);
        let text = "an error: 100% of \\u0041 requests, base64 aGVsbG8gd29ybGQ= and é";
        assert_eq!(s.scrub(text), text);
    }
}
