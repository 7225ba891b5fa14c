//! Saved conversations: one append-only JSONL file per conversation under
//! `<data dir>/sessions/` (`$LLMUX_DATA_DIR/sessions/` when set).
//!
//! The TUI appends a [`Record`] as things happen: the user's message when it is sent, the
//! streaming answer in [`Record::Chunk`]s (at least twice a second), the final
//! [`Record::Answer`] at the end (with the tool calls it asked for, if any), a
//! [`Record::ToolResult`] for each tool result, and the composer's draft on exit. [`SessionStore::load`]
//! folds the records back into [`Entry`]s; a torn last line (a crash mid-write, even one cut
//! inside a UTF-8 character) or any other unreadable line is skipped and reported as a
//! warning, never fatal. Files and the folder are private (see [`super::file`]). Nothing here
//! knows about the terminal.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::file::{self, PRIVATE_FILE_MODE, byte_lines};
use crate::calendar::civil_from_days;
use crate::money::Usd;
use crate::provider::{ToolCall, Usage};

pub use super::session_history::{Image, history};
pub use super::session_replay::parse_records;

/// The folder under the data dir.
pub const SESSIONS_DIR: &str = "sessions";
/// The file extension of a session.
pub const SESSION_EXT: &str = "jsonl";
/// Longest session name kept; longer names are cut.
const MAX_NAME_LEN: usize = 80;
/// How much of the first message a session listing shows.
const PREVIEW_CHARS: usize = 60;

/// One line of a session file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The user sent a message to `group`.
    User {
        id: u64,
        text: String,
        group: String,
        at_unix_ms: u64,
        /// The images sent with it, whole ([`Image`]), or named when an earlier message of
        /// the file holds them ([`Image::from`]): a reopened conversation sends them again.
        /// Files written before images were kept have none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<Image>,
    },
    /// More text of answer `id` while it streams.
    Chunk { id: u64, text: String },
    /// Who is answering `id`, written at its first token (and again if another deployment
    /// takes over): an answer cut by a crash keeps its group, deployment and time to first
    /// token instead of a header with none.
    Route {
        id: u64,
        group: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answered_group: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deployment: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttft_ms: Option<u64>,
    },
    /// The answer so far was discarded (mid-stream restart on another deployment).
    Restart { id: u64 },
    /// Answer `id` ended (done, cancelled or failed); `text` is the whole answer.
    Answer(Answer),
    /// The result of a tool call the answer before it asked for.
    ToolResult(ToolResult),
    /// The composer's unsent text; the last one wins, an empty one clears it.
    Draft { text: String },
    /// The conversation's settings from here on (system prompt, role, parameters); the last
    /// one wins. Files written before it existed have none: no system prompt, defaults.
    Settings(Settings),
    /// The next message replaces message `replaces` (edited and sent again): the branch
    /// shown is cut there and the old one kept ([`super::branches`]).
    Fork { replaces: u64 },
    /// The branch shown now ends at entry `leaf` (switched to another branch).
    Branch { leaf: u64 },
    /// Entries from `id` on are deleted (the last exchange, dropped).
    Drop { id: u64 },
}

/// A conversation's settings: its system prompt, the role it came from, and the request
/// parameters set with `/set` (unset ones are left to the deployment).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The role (`<config dir>/llmux/roles/NAME.md`) the prompt and parameters came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

impl Settings {
    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        *self == Settings::default()
    }

    /// The parameters as `temperature 0.2 · top_p 0.9 · max_tokens 500`, or `defaults`.
    pub fn params_text(&self) -> String {
        let mut v = Vec::new();
        if let Some(t) = self.temperature {
            v.push(format!("temperature {t}"));
        }
        if let Some(t) = self.top_p {
            v.push(format!("top_p {t}"));
        }
        if let Some(m) = self.max_tokens {
            v.push(format!("max_tokens {m}"));
        }
        if v.is_empty() {
            "defaults".to_string()
        } else {
            v.join(" · ")
        }
    }
}

/// How an answer ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerState {
    /// Still streaming.
    #[default]
    Streaming,
    Done,
    /// Esc: the partial answer is kept.
    Cancelled,
    /// Every route failed; any partial answer is kept.
    Failed,
    /// The program ended while it streamed (found on load without a final record).
    Interrupted,
}

/// What happened on the way to an answer, shown as badges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Badges {
    #[serde(default)]
    pub retried: bool,
    #[serde(default)]
    pub fell_back: bool,
    /// Continued by another deployment after a mid-stream failure.
    #[serde(default)]
    pub continued: bool,
    /// Restarted from scratch after a mid-stream failure.
    #[serde(default)]
    pub restarted: bool,
    /// Answered from the response cache (no upstream call, cost 0).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

/// One answer of the assistant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub id: u64,
    pub text: String,
    /// The group that was asked.
    pub group: String,
    /// The group that answered, when it differs (after a fallback) or is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What it cost; `None` when unknown (shown as "?", never $0). Stored as whole
    /// picodollars under `cost_pico`.
    #[serde(
        default,
        rename = "cost_pico",
        with = "crate::money::pico_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cost: Option<Usd>,
    #[serde(default)]
    pub badges: Badges,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub state: AnswerState,
    /// The tool calls the answer asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// What a tool returned for one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    pub id: u64,
    /// The call this answers ([`ToolCall::id`]).
    pub tool_call_id: String,
    /// The tool's name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// A message of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMessage {
    pub id: u64,
    pub text: String,
    pub group: String,
    /// The images sent with it (its text names each as `[image NAME · SIZE]`).
    pub images: Vec<Image>,
}

/// One item of a conversation, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    User(UserMessage),
    Answer(Answer),
    ToolResult(ToolResult),
}

impl Entry {
    pub fn id(&self) -> u64 {
        match self {
            Entry::User(u) => u.id,
            Entry::Answer(a) => a.id,
            Entry::ToolResult(t) => t.id,
        }
    }
}

/// A conversation as loaded from disk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedSession {
    pub name: String,
    pub entries: Vec<Entry>,
    pub draft: String,
    /// The conversation's settings (system prompt, role, parameters).
    pub settings: Settings,
    /// The branches not shown (`entries` is the one shown).
    pub branches: super::branches::Branches,
    /// Lines that could not be read (`line N: reason`).
    pub warnings: Vec<String>,
}

impl LoadedSession {
    /// The next free entry id.
    pub fn next_id(&self) -> u64 {
        self.entries
            .iter()
            .chain(self.branches.entries())
            .map(Entry::id)
            .max()
            .map_or(1, |m| m + 1)
    }
}

/// A saved conversation as the session list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub name: String,
    pub modified: Option<SystemTime>,
    pub bytes: u64,
    /// The start of the first user message.
    pub preview: String,
}

/// The session folder.
#[derive(Debug, Clone)]
pub struct SessionStore {
    dir: PathBuf,
}

impl SessionStore {
    pub fn new(dir: impl Into<PathBuf>) -> SessionStore {
        SessionStore { dir: dir.into() }
    }

    /// `<data dir>/sessions`.
    pub fn default_location() -> Option<SessionStore> {
        crate::config::data_dir().map(|d| SessionStore::new(d.join(SESSIONS_DIR)))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a session name (the name is made safe for a file name first).
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{}.{SESSION_EXT}", safe_name(name)))
    }

    /// Every saved session, most recently changed first.
    pub fn list(&self) -> io::Result<Vec<SessionInfo>> {
        let mut out = self.files()?;
        for info in &mut out {
            info.preview = first_user_line(&self.path_of(&info.name)).unwrap_or_default();
        }
        Ok(out)
    }

    /// [`list`](Self::list) without the previews (no file is opened), for callers that read
    /// the sessions whole anyway.
    pub fn files(&self) -> io::Result<Vec<SessionInfo>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != SESSION_EXT) {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let meta = entry.metadata().ok();
            out.push(SessionInfo {
                name: name.to_string(),
                modified: meta.as_ref().and_then(|m| m.modified().ok()),
                bytes: meta.map_or(0, |m| m.len()),
                preview: String::new(),
            });
        }
        out.sort_by(|a, b| {
            b.modified
                .cmp(&a.modified)
                .then_with(|| b.name.cmp(&a.name))
        });
        Ok(out)
    }

    /// Loads a session; a missing file is an empty session of that name. The file is made
    /// private if it was not.
    pub fn load(&self, name: &str) -> io::Result<LoadedSession> {
        let name = safe_name(name);
        let path = self.path_of(&name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        file::tighten(&path, PRIVATE_FILE_MODE);
        let mut session = parse_records(&bytes);
        session.name = name;
        Ok(session)
    }

    /// A writer appending to the session's file (created with its folder at the first write).
    pub fn writer(&self, name: &str) -> SessionWriter {
        SessionWriter {
            path: self.path_of(name),
            file: None,
        }
    }
}

/// Appends records to one session file, one whole line per write.
#[derive(Debug)]
pub struct SessionWriter {
    path: PathBuf,
    file: Option<File>,
}

impl SessionWriter {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record as one line and flushes it to the OS.
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_string(record).map_err(io::Error::other)?;
        line.push('\n');
        let file = match &mut self.file {
            Some(f) => f,
            // Private, and a torn last line ended first: the torn line is then the only one
            // skipped on load, not the torn line glued to the next good record.
            None => self.file.insert(file::open_append(&self.path)?),
        };
        file.write_all(line.as_bytes())?;
        file.flush()
    }
}

/// A name safe as a file name: letters, digits, `-`, `_` and `.` kept, the rest `_`.
pub fn safe_name(name: &str) -> String {
    let mut s: String = name
        .trim()
        .chars()
        .take(MAX_NAME_LEN)
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

/// A name for a new session from the wall clock: `YYYYMMDD-HHMMSS` (UTC).
pub fn new_session_name(now: SystemTime) -> String {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// What the session list shows of a first message: the start of its first line.
pub fn preview_of(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    first.chars().take(PREVIEW_CHARS).collect()
}

fn first_user_line(path: &Path) -> Option<String> {
    let f = File::open(path).ok()?;
    let mut found = None;
    let _ = byte_lines(io::BufReader::new(f), |line| {
        if let Ok(text) = line.text
            && let Ok(Record::User { text, .. }) = serde_json::from_str::<Record>(text)
        {
            found = Some(preview_of(&text));
            return false;
        }
        true
    });
    found
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(now: SystemTime) -> u64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_dated() {
        assert_eq!(safe_name("../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name(""), "_");
        assert_eq!(safe_name("my chat"), "my_chat");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(new_session_name(t), "20231114-221320");
    }

    #[test]
    fn a_write_after_a_torn_line_starts_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let user = |id, text: &str| Record::User {
            id,
            text: text.into(),
            group: "g".into(),
            at_unix_ms: 0,
            images: Vec::new(),
        };
        store.writer("s").append(&user(1, "before")).unwrap();
        let path = store.path_of("s");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"type\":\"chunk\",\"id\":2,\"te");
        std::fs::write(&path, text).unwrap();
        // The next run appends: its record must not be glued to the torn line.
        store.writer("s").append(&user(3, "after")).unwrap();
        let s = store.load("s").unwrap();
        let texts: Vec<&str> = s
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::User(u) => Some(u.text.as_str()),
                Entry::Answer(_) | Entry::ToolResult(_) => None,
            })
            .collect();
        assert_eq!(texts, ["before", "after"]);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    }

    #[test]
    fn an_answers_cost_is_stored_as_whole_picodollars_as_before() {
        let answer = Answer {
            id: 2,
            cost: Some(Usd::from_pico(49_000_000)),
            ..Answer::default()
        };
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["cost_pico"], 49_000_000, "{json}");
        let back: Answer = serde_json::from_value(json).unwrap();
        assert_eq!(back, answer);
        let unpriced = serde_json::to_value(Answer::default()).unwrap();
        assert!(unpriced.get("cost_pico").is_none(), "{unpriced}");
        assert_eq!(
            serde_json::from_value::<Answer>(unpriced).unwrap().cost,
            None
        );
    }
}
