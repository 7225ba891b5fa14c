//! Files, images and large pastes in the composer.
//!
//! - `@path` in a message attaches the file when it is sent: a text file's content goes after
//!   the message in a `<file name="path">…</file>` block (the conversation shows it folded to
//!   `[file path · N lines]`); a png, jpeg, gif or webp image goes as an image part, to a group
//!   with a deployment that takes images (the router's own capability check, `params`), and
//!   is refused with a clear message otherwise. Binaries, directories and files over the size
//!   limits are refused with what was wrong; the draft stays. A word after `@` that names no
//!   file and does not look like a path (`@alice`) is left as text.
//! - Tab after `@part` completes the path (a unique match whole, several to their common
//!   start, listed on the status line).
//! - A paste of more than [`FOLD_LINES`] lines shows as `[pasted 300 lines]` in the composer
//!   and is put back in full when the message is sent.
//!
//! Reading files and listing directories is IO: the app asks for it with
//! [`Effect::ReadAttachments`] and [`Effect::CompletePath`], and the runner calls
//! [`read_all`] and [`complete`], whose results come back as actions.

use std::path::PathBuf;

use base64::Engine;

use crate::store::session::Image;

use super::action::Effect;
use super::app::{App, Focus};

/// A paste of more lines than this is folded in the composer.
pub const FOLD_LINES: usize = 8;
/// Largest text file attached.
pub const MAX_TEXT_BYTES: u64 = 256 * 1024;
/// Largest image attached (Anthropic's limit per image).
pub const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;
/// Candidates named on the status line when a completion is ambiguous.
const SHOW_CANDIDATES: usize = 8;
/// The slash command that attaches a file.
const FILE_COMMAND: &str = "/file ";
/// Bytes looked at for a NUL to call a file binary.
const SNIFF: usize = 8192;

/// The composer's folded pastes.
#[derive(Debug, Default)]
pub struct Attach {
    /// Each placeholder shown and the text it stands for.
    pub pastes: Vec<(String, String)>,
}

/// One file read for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The path as typed after `@`.
    pub name: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Text(String),
    Image {
        media_type: String,
        /// base64
        data: String,
        bytes: u64,
    },
}

impl Attach {
    /// The text to put in the composer for a paste: itself, or a placeholder when long.
    pub fn fold_paste(&mut self, text: &str) -> String {
        let lines = text.lines().count();
        if lines <= FOLD_LINES {
            return text.to_string();
        }
        let base = format!("[pasted {lines} lines]");
        let same = self
            .pastes
            .iter()
            .filter(|(p, _)| p.starts_with(&base[..base.len() - 1]))
            .count();
        let shown = match same {
            0 => base,
            n => format!("[pasted {lines} lines #{}]", n + 1),
        };
        self.pastes.push((shown.clone(), text.to_string()));
        shown
    }

    /// A message as sent, for the composer: each file's block folded to its
    /// `[file NAME · N lines]` line, which [`expand`](Self::expand) puts back.
    pub fn fold_files(&mut self, text: &str) -> String {
        fold_file_blocks(text, |shown, block| {
            self.pastes.push((shown.to_string(), block.to_string()));
        })
        .into_owned()
    }

    /// Forgets the folded pastes and files whose placeholder is in `text` (it went, or was
    /// dropped).
    pub fn forget_in(&mut self, text: &str) {
        self.pastes
            .retain(|(shown, _)| !text.contains(shown.as_str()));
    }

    /// `draft` with every placeholder still in it replaced by its paste.
    pub fn expand(&self, draft: &str) -> String {
        let mut out = draft.to_string();
        for (shown, text) in &self.pastes {
            out = out.replace(shown.as_str(), text);
        }
        out
    }
}

/// The `@path` words of a message, in order, once each (`@` at the start or after
/// whitespace; an e-mail address is not one).
pub fn mentions(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        // Punctuation after a path ends the sentence, not the path.
        let word = word.trim_end_matches(['.', ',', ';', ':', '!', '?', ')']);
        if let Some(path) = word.strip_prefix('@')
            && !path.is_empty()
            && !out.iter().any(|p| p == path)
        {
            out.push(path.to_string());
        }
    }
    out
}

/// `~/x` as the home directory's `x`.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Whether a word after `@` is meant as a path even when nothing is there.
fn looks_like_path(word: &str) -> bool {
    word.contains('/') || word.contains('.')
}

/// Reads the files of `paths` (relative to the working directory); the first that cannot be
/// attached fails them all, with why. Words that name nothing and do not look like paths are
/// skipped.
pub fn read_all(paths: &[String]) -> Result<Vec<Attachment>, String> {
    let mut out = Vec::new();
    for p in paths {
        if let Some(a) = read_one(p)? {
            out.push(a);
        }
    }
    Ok(out)
}

fn read_one(name: &str) -> Result<Option<Attachment>, String> {
    let path = expand_home(name);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(_) if !looks_like_path(name) => return Ok(None),
        Err(e) => {
            let cwd = std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            return Err(format!(
                "@{name}: cannot read it ({e}); paths are relative to {cwd}"
            ));
        }
    };
    if meta.is_dir() {
        return Err(format!(
            "@{name} is a directory: attach its files one by one (Tab completes)"
        ));
    }
    let size = meta.len();
    if size > MAX_IMAGE_BYTES {
        return Err(format!(
            "@{name} is {}: images over {} and text files over {} are not attached",
            human_bytes(size),
            human_bytes(MAX_IMAGE_BYTES),
            human_bytes(MAX_TEXT_BYTES)
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("@{name}: cannot read it: {e}"))?;
    if let Some(media_type) = image_type(&bytes) {
        return Ok(Some(Attachment {
            name: name.to_string(),
            kind: Kind::Image {
                media_type: media_type.to_string(),
                data: base64::engine::general_purpose::STANDARD.encode(&bytes),
                bytes: size,
            },
        }));
    }
    if size > MAX_TEXT_BYTES {
        return Err(format!(
            "@{name} is {}: text files over {} are not attached (paste the part that matters)",
            human_bytes(size),
            human_bytes(MAX_TEXT_BYTES)
        ));
    }
    let binary = bytes[..bytes.len().min(SNIFF)].contains(&0);
    match String::from_utf8(bytes) {
        Ok(text) if !binary => Ok(Some(Attachment {
            name: name.to_string(),
            kind: Kind::Text(text),
        })),
        _ => Err(format!(
            "@{name} is a binary file: only text files and png, jpeg, gif or webp images can \
             be attached"
        )),
    }
}

/// The media type of an image llmux sends, from its first bytes.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// `812 B`, `12.4 KiB`, `3.1 MiB`.
pub fn human_bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

/// The paths that complete `word` (what follows `@`): entries of its directory starting with
/// its last part, directories with a `/` after them, sorted; hidden ones only when asked for.
pub fn complete(word: &str) -> Vec<String> {
    let (dir, prefix) = match word.rfind('/') {
        Some(i) => (&word[..=i], &word[i + 1..]),
        None => ("", word),
    };
    let read_from = if dir.is_empty() {
        PathBuf::from(".")
    } else {
        expand_home(dir)
    };
    let Ok(rd) = std::fs::read_dir(&read_from) else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            let slash = if e.path().is_dir() { "/" } else { "" };
            Some(format!("{dir}{name}{slash}"))
        })
        .collect();
    out.sort();
    out
}

/// The longest start all of `words` share.
fn common_prefix(words: &[String]) -> String {
    let Some(first) = words.first() else {
        return String::new();
    };
    let mut end = first.len();
    for w in &words[1..] {
        end = end.min(
            first
                .char_indices()
                .zip(w.chars())
                .find(|((_, a), b)| a != b)
                .map_or(end.min(w.len()), |((i, _), _)| i),
        );
    }
    first[..end].to_string()
}

/// The message `text` with `files` in it: each text file's content in a `<file>` block after
/// it, each image as an `[image NAME · SIZE]` line there and whole in the images returned.
pub fn expand_files(text: &str, files: Vec<Attachment>) -> (String, Vec<Image>) {
    let mut full = text.to_string();
    let mut images = Vec::new();
    for f in files {
        match f.kind {
            Kind::Text(content) => {
                full.push_str(&format!(
                    "\n\n<file name=\"{}\">\n{}\n</file>",
                    f.name,
                    content.trim_end_matches('\n')
                ));
            }
            Kind::Image {
                media_type,
                data,
                bytes,
            } => {
                full.push_str(&format!("\n\n[image {} · {}]", f.name, human_bytes(bytes)));
                images.push(Image {
                    name: f.name,
                    media_type,
                    data,
                    from: None,
                });
            }
        }
    }
    (full, images)
}

/// A message's text for the conversation: each attached file's block folded to one line.
pub fn folded(text: &str) -> std::borrow::Cow<'_, str> {
    fold_file_blocks(text, |_, _| {})
}

/// `text` with each `<file>` block after a line break folded to `[file NAME · N lines]`;
/// `each` is given every placeholder with the block it stands for.
fn fold_file_blocks<'a>(
    text: &'a str,
    mut each: impl FnMut(&str, &str),
) -> std::borrow::Cow<'a, str> {
    const OPEN: &str = "\n<file name=\"";
    const CLOSE: &str = "\n</file>";
    if !text.contains(OPEN) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(1024));
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(name_end) = after.find("\">\n") else {
            break;
        };
        let Some(body_end) = after.find(CLOSE) else {
            break;
        };
        let name = &after[..name_end];
        let lines = after[name_end..body_end].lines().count().saturating_sub(1);
        let placeholder = format!("[file {name} · {lines} lines]");
        let end = start + OPEN.len() + body_end + CLOSE.len();
        // The line break before the block stays; the block from `<file` is folded.
        each(&placeholder, &rest[start + 1..end]);
        out.push_str(&rest[..=start]);
        out.push_str(&placeholder);
        rest = &rest[end..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

impl App {
    /// `send`, with attachments: pastes are put back, `@path`s are read (by the runner) and
    /// the message goes when they are.
    pub(crate) fn send_attached(&mut self) -> Vec<Effect> {
        let draft = self.draft();
        if self.inflight.is_some() || draft.trim().is_empty() {
            return self.send();
        }
        let text = self.b.attach.expand(&draft);
        let paths = mentions(&draft);
        if paths.is_empty() {
            return self.send_expanded(&text, &text, Vec::new());
        }
        vec![Effect::ReadAttachments { text, paths }]
    }

    /// The files of the message `text` were read.
    pub(crate) fn attachments_read(
        &mut self,
        text: String,
        read: Result<Vec<Attachment>, String>,
    ) -> Vec<Effect> {
        let for_compare = self.compare_reading(&text);
        let draft = self.draft();
        if self.b.attach.expand(&draft) != text {
            // The message changed meanwhile: sent by the next Enter.
            self.unchanged();
            return Vec::new();
        }
        let files = match read {
            Ok(f) => f,
            Err(e) => {
                self.toast(e, true);
                return Vec::new();
            }
        };
        if for_compare {
            return self.compare_attached(text, files);
        }
        let images = files
            .iter()
            .filter(|f| matches!(f.kind, Kind::Image { .. }))
            .count();
        if images > 0
            && let Err(e) = self.b.windows.images_ok(self.current_group())
        {
            self.toast(e, true);
            return Vec::new();
        }
        if self.editing.is_some() {
            return self.send_edit(text, files);
        }
        let (full, images) = expand_files(&text, files);
        self.send_expanded(&text, &full, images)
    }

    /// Sends `text` as the message typed as `typed` (what Up recalls: the pastes in full,
    /// the `@path`s as typed), with `images` after its text.
    fn send_expanded(&mut self, typed: &str, text: &str, images: Vec<Image>) -> Vec<Effect> {
        self.set_composer_text(text);
        let draft = self.draft();
        let fx = self.send_message(draft, images);
        self.b.attach.pastes.clear();
        if let Some(last) = self.sent.last_mut() {
            *last = typed.to_string();
        }
        fx
    }

    /// `/file PATH`: the composer becomes `@PATH ` for the question to follow; the file is
    /// read, checked and attached when the message is sent.
    pub(crate) fn file_command(&mut self, arg: &str) -> Result<(), String> {
        if arg.is_empty() {
            return Err("which file? /file PATH (Tab completes), or @PATH in a message".into());
        }
        if arg.contains(char::is_whitespace) {
            return Err(format!("{arg:?}: a path with spaces cannot be attached"));
        }
        self.set_composer_text(&format!("@{arg} "));
        self.toast(
            format!("@{arg} is attached when you send: type your question"),
            false,
        );
        Ok(())
    }

    /// Tab in the composer after `@part`, or in `/file part`: asks for its completions
    /// (`None`: not after either).
    pub(crate) fn complete_key(&mut self) -> Option<Vec<Effect>> {
        if self.focus != Focus::Composer || self.overlay.is_some() {
            return None;
        }
        let word = self.word_before_cursor();
        let path = match word.strip_prefix('@') {
            Some(p) => p,
            None if self.draft().starts_with(FILE_COMMAND) && !self.draft().contains('\n') => {
                word.as_str()
            }
            None => return None,
        };
        Some(vec![Effect::CompletePath {
            word: path.to_string(),
        }])
    }

    fn word_before_cursor(&self) -> String {
        let tui_textarea::DataCursor(row, col) = self.composer.cursor();
        let line: Vec<char> = self.composer.lines()[row].chars().collect();
        let col = col.min(line.len());
        let start = line[..col]
            .iter()
            .rposition(|c| c.is_whitespace())
            .map_or(0, |i| i + 1);
        line[start..col].iter().collect()
    }

    /// The completions of `word` arrived.
    pub(crate) fn paths_completed(&mut self, word: String, found: Vec<String>) -> Vec<Effect> {
        let before = self.word_before_cursor();
        let in_file_command = self.draft().starts_with(FILE_COMMAND) && before == word;
        if before != format!("@{word}") && !in_file_command {
            self.unchanged();
            return Vec::new();
        }
        let with = match found.len() {
            0 => {
                self.toast(format!("no file matches @{word}"), true);
                return Vec::new();
            }
            1 => found[0].clone(),
            _ => {
                let shown: Vec<&str> = found
                    .iter()
                    .take(SHOW_CANDIDATES)
                    .map(String::as_str)
                    .collect();
                let more = found.len().saturating_sub(SHOW_CANDIDATES);
                let more = if more > 0 {
                    format!(" … {more} more")
                } else {
                    String::new()
                };
                self.toast(format!("{}{more}", shown.join("  ")), false);
                common_prefix(&found)
            }
        };
        let typed = word.chars().count();
        for _ in 0..typed {
            self.composer.move_cursor(tui_textarea::CursorMove::Back);
        }
        self.composer.delete_str(typed);
        self.composer.insert_str(&with);
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_pastes_and_folding() {
        assert_eq!(
            mentions("see @src/a.rs and @b.txt, not me@x.org @src/a.rs"),
            ["src/a.rs", "b.txt"]
        );
        let mut a = Attach::default();
        assert_eq!(a.fold_paste("short\ntext"), "short\ntext");
        let long = "x\n".repeat(300);
        assert_eq!(a.fold_paste(&long), "[pasted 300 lines]");
        assert_eq!(a.fold_paste(&long), "[pasted 300 lines #2]");
        assert_eq!(a.expand("a [pasted 300 lines] b"), format!("a {long} b"));
        let text = "look\n\n<file name=\"a.rs\">\nfn a() {}\nfn b() {}\n</file>\n\nend";
        assert_eq!(folded(text), "look\n\n[file a.rs · 2 lines]\n\nend");
        assert_eq!(common_prefix(&["src/ab".into(), "src/ac".into()]), "src/a");
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"hello"), None);
    }
}
