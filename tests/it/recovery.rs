//! Nothing is lost: the real `llmux` binary in a real pty, killed with SIGKILL mid-stream and
//! restarted (the sent message and the answer up to the last flush are on disk and on
//! screen); a torn last line from a crash mid-write costs that line only, also when the next
//! run appends; SIGTERM and SIGHUP save the draft and give the terminal back.
//!
//! Each test has its own data and config directories. Waiting is on observable conditions
//! with deadlines: text in the pty's output, records in the session file.

pub(crate) mod pty;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use llmux::store::session::{AnswerState, Entry, LoadedSession, Record, SessionStore};

use self::pty::{Pty, in_order, visible_text};

/// The mock's answer, streamed a word at a time.
const ANSWER: &str = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu and that is the whole alphabet spelled out slowly";
/// Words per second of the mock: slow enough to kill it half-way.
const SLOW: u32 = 12;
/// Words per second where the answer only has to finish.
const FAST: u32 = 400;
/// How long anything observable may take (a debug build on a loaded 2-core machine).
const LIMIT: Duration = Duration::from_secs(20);
/// How often the session file is looked at while waiting for a flush.
const POLL: Duration = Duration::from_millis(20);
/// The pty's size.
const COLS: u16 = 100;
const ROWS: u16 = 30;
/// Entering and leaving the alternate screen; showing the cursor.
const ALT_ON: &[u8] = b"\x1b[?1049h";
const ALT_OFF: &[u8] = b"\x1b[?1049l";
const CURSOR_ON: &[u8] = b"\x1b[?25h";

struct Home {
    _dir: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
    xdg: PathBuf,
}

impl Home {
    fn new(tokens_per_s: u32) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "model_list:\n  - model_name: slow\n    litellm_params: {{ model: mock/slow, mock_response: '{ANSWER}', mock_tokens_per_s: {tokens_per_s}, mock_ttft_ms: 50 }}\n"
            ),
        )
        .unwrap();
        Home {
            data: dir.path().join("data"),
            xdg: dir.path().join("xdg"),
            config,
            _dir: dir,
        }
    }

    fn store(&self) -> SessionStore {
        SessionStore::new(self.data.join("sessions"))
    }

    fn start(&self) -> Pty {
        let pty = Pty::spawn(
            env!("CARGO_BIN_EXE_llmux"),
            &["--config", self.config.to_str().unwrap()],
            &[
                ("LLMUX_DATA_DIR", self.data.to_str().unwrap()),
                ("XDG_CONFIG_HOME", self.xdg.to_str().unwrap()),
                ("XDG_DATA_HOME", self.xdg.to_str().unwrap()),
            ],
            COLS,
            ROWS,
        );
        assert!(
            pty.wait_for_text(LIMIT, "Conversation"),
            "no first frame: {}",
            String::from_utf8_lossy(&pty.output())
        );
        pty
    }

    /// The one session file's path.
    fn session_file(&self) -> Option<PathBuf> {
        let list = self.store().list().ok()?;
        let first = list.first()?;
        Some(self.store().path_of(&first.name))
    }

    fn load(&self) -> LoadedSession {
        let name = self.store().list().unwrap()[0].name.clone();
        self.store().load(&name).unwrap()
    }

    /// Polls the session file until `cond` holds for its records.
    fn wait_for_records(&self, cond: impl Fn(&[Record]) -> bool) -> Vec<Record> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let records = self.session_file().map(|p| records(&p)).unwrap_or_default();
            if cond(&records) {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "the session file never got there: {records:?}"
            );
            std::thread::sleep(POLL);
        }
    }
}

/// The readable records of a session file (a line that is not UTF-8 is not one).
fn records(path: &Path) -> Vec<Record> {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default())
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn streamed(records: &[Record]) -> String {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Chunk { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn user_and_answer(s: &LoadedSession) -> (String, llmux::store::session::Answer) {
    match &s.entries[..] {
        [Entry::User(u), Entry::Answer(a)] => (u.text.clone(), a.clone()),
        other => panic!("expected a message and its answer: {other:?}"),
    }
}

#[test]
fn sigkill_mid_stream_keeps_the_message_and_the_flushed_answer_and_shows_them_again() {
    let home = Home::new(SLOW);
    let mut tui = home.start();
    tui.write(b"remember the walrus\r");
    let on_disk = home.wait_for_records(|r| streamed(r).contains("charlie"));
    assert!(matches!(&on_disk[0], Record::User { text, .. } if text == "remember the walrus"));
    tui.signal("KILL");
    assert_eq!(tui.wait_end(LIMIT).as_deref(), Some("signal 9"));
    drop(tui);

    let loaded = home.load();
    let (question, answer) = user_and_answer(&loaded);
    assert_eq!(question, "remember the walrus");
    assert_eq!(answer.state, AnswerState::Interrupted);
    assert!(answer.text.starts_with("alpha bravo charlie"), "{answer:?}");
    assert!(
        ANSWER.starts_with(&answer.text) && answer.text.len() < ANSWER.len(),
        "a prefix of the answer, killed before its end: {:?}",
        answer.text
    );
    assert!(loaded.warnings.len() <= 1, "{:?}", loaded.warnings);
    println!(
        "killed after {} of {} chars of the answer were flushed",
        answer.text.len(),
        ANSWER.len()
    );

    let mut again = home.start();
    for text in ["remember the walrus", "alpha bravo charlie", "interrupted"] {
        assert!(
            again.wait_for_text(LIMIT, text),
            "{text:?} is not on screen after the restart"
        );
    }
    again.write(b"\x11");
    assert_eq!(again.wait_end(LIMIT).as_deref(), Some("exit 0"));
}

#[test]
fn a_torn_last_line_costs_that_line_only_even_when_the_next_run_appends() {
    let home = Home::new(FAST);
    let mut tui = home.start();
    tui.write(b"first question\r");
    home.wait_for_records(|r| {
        r.iter()
            .any(|r| matches!(r, Record::Answer(a) if a.state == AnswerState::Done))
    });
    tui.write(b"\x11");
    assert_eq!(tui.wait_end(LIMIT).as_deref(), Some("exit 0"));
    drop(tui);

    // A crash in the middle of writing a record leaves half a line, here cut inside a
    // character ("é" is C3 A9): the file is no longer UTF-8 as a whole.
    let path = home.session_file().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"type\":\"chunk\",\"id\":99,\"text\":\"half a caf\xc3");
    std::fs::write(&path, bytes).unwrap();
    let torn = home.load();
    assert_eq!(torn.entries.len(), 2, "{torn:?}");
    assert!(torn.warnings[0].contains("torn"), "{:?}", torn.warnings);

    // The next run shows the conversation and says what it skipped, then appends to it.
    let mut tui = home.start();
    assert!(tui.wait_for_text(LIMIT, "first question"));
    assert!(tui.wait_for_text(LIMIT, "torn last line skipped"));
    tui.write(b"second question\r");
    home.wait_for_records(|r| {
        r.iter()
            .filter(|r| matches!(r, Record::Answer(a) if a.state == AnswerState::Done))
            .count()
            == 2
    });
    tui.write(b"\x11");
    assert_eq!(tui.wait_end(LIMIT).as_deref(), Some("exit 0"));
    let after = home.load();
    let users: Vec<&str> = after
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::User(u) => Some(u.text.as_str()),
            Entry::Answer(_) | Entry::ToolResult(_) => None,
        })
        .collect();
    assert_eq!(users, ["first question", "second question"]);
    assert_eq!(
        after.warnings.len(),
        1,
        "only the torn line: {:?}",
        after.warnings
    );
}

/// Whether the last thing written left the alternate screen (after last entering it), then
/// showed the cursor, with nothing after but more cursor-showing.
fn ends_restored(out: &[u8]) -> bool {
    let last = |needle: &[u8]| out.windows(needle.len()).rposition(|w| w == needle);
    let (Some(on), Some(off)) = (last(ALT_ON), last(ALT_OFF)) else {
        return false;
    };
    let mut tail = &out[off + ALT_OFF.len()..];
    let mut shown = false;
    while let Some(rest) = tail.strip_prefix(CURSOR_ON) {
        tail = rest;
        shown = true;
    }
    off > on && shown && tail.is_empty()
}

/// A signal that ends the TUI: the draft is saved and the terminal restored.
fn signal_saves_the_draft_and_restores_the_terminal(signal: &str) {
    let home = Home::new(FAST);
    let mut tui = home.start();
    let draft = format!("unsent words before SIG{signal}");
    let mark = tui.output().len();
    tui.write(draft.as_bytes());
    // The composer is redrawn a few cells at a time as the keys arrive: wait until every
    // typed character has been drawn.
    assert!(
        tui.wait_for(LIMIT, |out| in_order(&visible_text(&out[mark..]), &draft)),
        "the draft is not on screen: {:?}",
        String::from_utf8_lossy(&tui.output()[mark..])
    );
    tui.signal(signal);
    assert_eq!(
        tui.wait_end(LIMIT).as_deref(),
        Some("exit 0"),
        "SIG{signal}"
    );
    let out = tui.output();
    assert!(
        ends_restored(&out),
        "SIG{signal}: the output does not end by leaving the alternate screen and showing the cursor: {:?}",
        String::from_utf8_lossy(&out[out.len().saturating_sub(120)..])
    );
    assert_eq!(home.load().draft, draft, "SIG{signal}: the draft is saved");
}

#[test]
fn sigterm_saves_the_draft_and_restores_the_terminal() {
    signal_saves_the_draft_and_restores_the_terminal("TERM");
}

#[test]
fn sighup_saves_the_draft_and_restores_the_terminal() {
    signal_saves_the_draft_and_restores_the_terminal("HUP");
}
