//! Search across saved conversations: which sessions hold a piece of text in a message or an
//! answer (case-insensitive), each with the words around its first match, for the TUI's
//! conversations overlay. Files are read and parsed at each search: a few hundred sessions
//! take milliseconds, and nothing has to be kept in step with the files.

use std::io;

use super::session::{Entry, SessionInfo, SessionStore, preview_of};

/// Characters of context shown on each side of a match.
const CONTEXT_CHARS: usize = 30;

/// A session that holds the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMatch {
    pub session: SessionInfo,
    /// The text around the first match, on one line, `…` where it was cut.
    pub snippet: String,
    /// Where the match is in `snippet` (byte range), for highlighting.
    pub at: std::ops::Range<usize>,
    /// Messages and answers that hold it.
    pub hits: usize,
}

impl SessionStore {
    /// Every session whose messages or answers contain `query` (ignoring case), most
    /// recently changed first. An unreadable file is skipped, not an error: one bad file
    /// should not hide the rest.
    pub fn search(&self, query: &str) -> io::Result<Vec<SessionMatch>> {
        self.search_while(query, || true)
    }

    /// [`search`](Self::search), stopping (with what it found so far) once `go_on` says no,
    /// which it asks before each file: a search overtaken by the next keystroke ends early.
    pub fn search_while(
        &self,
        query: &str,
        go_on: impl Fn() -> bool,
    ) -> io::Result<Vec<SessionMatch>> {
        let needle = needle_of(query);
        if needle.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        // Each file is read once: the preview comes from the loaded session, not a second open.
        for mut info in self.files()? {
            if !go_on() {
                break;
            }
            let Ok(loaded) = self.load(&info.name) else {
                continue;
            };
            if let Some(first) = loaded.entries.iter().find_map(|e| match e {
                Entry::User(u) => Some(u.text.as_str()),
                _ => None,
            }) {
                info.preview = preview_of(first);
            }
            let texts = loaded.entries.iter().filter_map(|e| match e {
                Entry::User(u) => Some(u.text.as_str()),
                Entry::Answer(a) => Some(a.text.as_str()),
                Entry::ToolResult(_) => None,
            });
            let mut first = None;
            let mut hits = 0;
            for text in texts {
                if let Some(at) = find_ignoring_case(text, &needle) {
                    hits += 1;
                    first.get_or_insert_with(|| snippet(text, at));
                }
            }
            if let Some((snippet, at)) = first {
                out.push(SessionMatch {
                    session: info,
                    snippet,
                    at,
                    hits,
                });
            }
        }
        Ok(out)
    }
}

/// What is searched for: each character lowercased on its own, as the text is compared (a
/// whole-string lowercase would make a final Σ into ς, and İ into two characters).
fn needle_of(query: &str) -> String {
    query
        .trim()
        .chars()
        .filter_map(|c| c.to_lowercase().next())
        .collect()
}

/// The byte range of the first occurrence of `needle` (already lowercase) in `text`,
/// compared character by character in lowercase so the range is one of `text`'s own.
fn find_ignoring_case(text: &str, needle: &str) -> Option<std::ops::Range<usize>> {
    if text.is_ascii() {
        // The usual case, and ten times faster: ASCII lowercases byte for byte, so offsets
        // in the lowered copy are the text's own (a non-ASCII needle cannot match here).
        let lowered = text.to_ascii_lowercase();
        let start = memchr::memmem::find(lowered.as_bytes(), needle.as_bytes())?;
        return Some(start..start + needle.len());
    }
    let want: Vec<char> = needle.chars().collect();
    let starts = text.char_indices().map(|(i, _)| i);
    for start in starts {
        let mut chars = text[start..].char_indices();
        let mut matched = 0;
        let mut end = start;
        for w in &want {
            let Some((i, c)) = chars.next() else { break };
            // One character may lowercase to several (İ); compare its first, as search boxes do.
            if c.to_lowercase().next() != Some(*w) {
                break;
            }
            matched += 1;
            end = start + i + c.len_utf8();
        }
        if matched == want.len() {
            return Some(start..end);
        }
    }
    None
}

/// The match with up to [`CONTEXT_CHARS`] characters each side, whitespace runs as one space.
fn snippet(text: &str, at: std::ops::Range<usize>) -> (String, std::ops::Range<usize>) {
    let before_all = &text[..at.start];
    let kept: Vec<char> = before_all.chars().rev().take(CONTEXT_CHARS).collect();
    let cut = kept.len() < before_all.chars().count();
    let before = context(
        &kept.into_iter().rev().collect::<String>(),
        cut,
        Side::Before,
    );
    let after_all = &text[at.end..];
    let kept: String = after_all.chars().take(CONTEXT_CHARS).collect();
    let cut = kept.chars().count() < after_all.chars().count();
    let after = context(&kept, cut, Side::After);
    let hit = flat(&text[at.clone()]);
    let start = before.len();
    let range = start..start + hit.len();
    (format!("{before}{hit}{after}"), range)
}

/// Which side of the match a piece of context is on.
#[derive(Clone, Copy)]
enum Side {
    Before,
    After,
}

/// Whitespace runs as one space.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One side's context on one line: whitespace next to the match stays one space (the match
/// does not glue to its context), and a side that was `cut` gets `…` at its far end.
fn context(kept: &str, cut: bool, side: Side) -> String {
    let gap = |spaced: bool| if spaced { " " } else { "" };
    let more = if cut { "…" } else { "" };
    let body = flat(kept);
    match side {
        Side::Before => format!("{more}{body}{}", gap(kept.ends_with(char::is_whitespace))),
        Side::After => format!("{}{body}{more}", gap(kept.starts_with(char::is_whitespace))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_is_ignored_and_the_range_is_the_texts_own() {
        let text = "Ask about Fallbacks today";
        let at = find_ignoring_case(text, "fallbacks").unwrap();
        assert_eq!(&text[at], "Fallbacks");
        let text = "Ünïcode ÄPFEL";
        let at = find_ignoring_case(text, "äpfel").unwrap();
        assert_eq!(&text[at], "ÄPFEL");
        assert_eq!(find_ignoring_case("abc", "abcd"), None);
        assert_eq!(find_ignoring_case("", "a"), None);
    }

    #[test]
    fn a_snippet_shows_the_match_in_context_on_one_line() {
        let text = "first line\n\nsecond line holds the word routing here and goes on for a long while after it";
        let at = find_ignoring_case(text, "routing").unwrap();
        let (s, r) = snippet(text, at);
        assert_eq!(&s[r], "routing");
        assert!(!s.contains('\n'), "{s}");
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("holds the word routing here"), "{s}");
        // Short text: nothing cut, nothing marked.
        let (s, r) = snippet("a routing b", 2..9);
        assert_eq!((s.as_str(), &s[r]), ("a routing b", "routing"));
    }

    #[test]
    fn non_ascii_needles_match_the_text_they_were_typed_from() {
        for (text, query) in [("İstanbul nights", "İstanbul"), ("ΟΔΟΣ ΜΕΓΑΛΗ", "ΟΔΟΣ")]
        {
            let at =
                find_ignoring_case(text, &needle_of(query)).unwrap_or_else(|| panic!("{query}"));
            assert_eq!(&text[at], query);
        }
    }

    #[test]
    fn a_cut_of_only_whitespace_keeps_the_match_apart_from_the_ellipsis() {
        let text = format!("{}word{}", " ".repeat(40), " ".repeat(40));
        let at = find_ignoring_case(&text, "word").unwrap();
        let (s, r) = snippet(&text, at);
        assert_eq!(s, "… word …");
        assert_eq!(&s[r], "word");
    }
}
