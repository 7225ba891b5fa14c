//! Hostile model output: escape sequences (CSI clear screen, OSC 52 clipboard, OSC 0 title,
//! OSC 8 links, bells, backspace and carriage-return overprinting, bidi overrides and
//! isolates, C1 controls, DEL), streamed by a fake upstream through a real router, split
//! across chunks, and quoted in upstream error messages.
//!
//! In the TUI (the app on a `TestBackend`), not one cell may hold a character a terminal
//! could act on; the escapes are shown as text. `llmux ask` (the real binary) passes the
//! bytes through to a pipe, escapes them on a terminal (a real pty), and passes them raw to a
//! terminal only with `--raw`; its stderr diagnostics are escaped either way.

use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use llmux::config::Config;
use llmux::router::{Router, RouterOptions};
use llmux::sanitize::needs_escape;
use llmux::tui::action::{Action, Effect};
use llmux::tui::app::App;
use llmux::tui::metrics::StatusView;
use llmux::tui::theme::{ColorDepth, Theme};
use llmux::tui::view;
use ratatui::buffer::Buffer;
use serde_json::json;
use tokio::time::Instant;

use crate::recovery::pty::{Pty, contains};
use crate::support;
use crate::upstream::{FakeUpstream, Reply};

/// The answer, in the pieces it is streamed in: each attack once, some split mid-sequence.
pub(crate) const HOSTILE: &[&str] = &[
    "clear:\x1b[2J\x1b[H ",
    "clipboard:\x1b]52;c;cm0gLXJmIH4K\x07 ",
    "title:\x1b]0;pwned\x07 ",
    "link:\x1b]8;;https://evil.example/\x1b\\here\x1b]8;;\x1b\\ ",
    "bell:\x07\x07 ",
    "backspace:safe\x08\x08\x08\x08evil cr:rm -rf ~\rls ",
    "bidi:\u{202e}gnp.exe\u{202c} \u{2066}iso\u{2069} \u{200f}\u{61c} ",
    "c1:\u{9b}31m\u{9d}0;t\u{9c}\u{85} ",
    "split:\x1b",
    "[31mred\x1b",
    "]0;x\x07 del:\x7f end",
];

/// An upstream error message carrying the same kind of payload.
pub(crate) const HOSTILE_ERROR: &str = "boom\x1b]0;pwned-by-error\x07\x1b[2J\u{202e}gnp.exe";

/// A character no terminal cell or terminal-bound byte stream may carry raw.
pub(crate) fn dangerous(c: char) -> bool {
    c.is_control() || needs_escape(c)
}

/// The app on a test backend, driven with actions; requests go through a real router.
pub(crate) struct Screen {
    pub app: App,
    width: u16,
    height: u16,
}

impl Screen {
    pub fn new(cfg: &Config, width: u16, height: u16) -> Screen {
        let theme = Theme::builtin_default(ColorDepth::TrueColor);
        let (mut app, _) = App::new(cfg, theme, Instant::now(), SystemTime::now);
        app.update(Action::Resize(width, height));
        Screen { app, width, height }
    }

    pub fn act(&mut self, a: Action) -> Vec<Effect> {
        self.app.update(a)
    }

    pub fn type_text(&mut self, s: &str) {
        for c in s.chars() {
            self.act(Action::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
    }

    /// Sends `text` from the composer and runs the request on `group` of `router`, feeding
    /// every chat and route event back to the app. Returns every effect.
    pub async fn ask(&mut self, router: &Router, group: &str, text: &str) -> Vec<Effect> {
        let mut sub = router.subscribe();
        self.type_text(text);
        let mut effects = self.act(Action::Key(KeyEvent::new(
            KeyCode::Enter,
            KeyModifiers::NONE,
        )));
        let (tag, request) = effects
            .iter()
            .find_map(|e| match e {
                Effect::StartChat { tag, request, .. } => Some((*tag, request.clone())),
                _ => None,
            })
            .expect("a request started");
        let mut stream = router.chat(group, request);
        while let Some(event) = stream.next_event().await {
            effects.extend(self.act(Action::Chat {
                tag,
                event,
                at: Instant::now(),
            }));
        }
        while let Ok(ev) = sub.try_recv() {
            effects.extend(self.act(Action::Route(ev)));
        }
        effects.extend(self.act(Action::Status(StatusView::from_router(router))));
        effects
    }

    /// One frame of the app.
    fn frame(&self) -> Buffer {
        support::drawn(self.width, self.height, |area, buf| {
            view::draw(&self.app, area, buf)
        })
    }

    /// Draws a frame; returns the cells' symbols, row by row.
    pub fn draw(&self) -> Vec<Vec<String>> {
        support::cells(&self.frame())
    }

    /// Draws a frame; returns it as text, one line per row.
    pub fn text(&self) -> String {
        support::text(&self.frame())
    }

    /// Draws a frame and fails on any cell holding a dangerous character.
    pub fn assert_inert(&self, what: &str) {
        for (y, row) in self.draw().iter().enumerate() {
            for (x, sym) in row.iter().enumerate() {
                assert!(
                    !sym.chars().any(dangerous),
                    "{what}: cell ({x},{y}) holds {sym:?}\n{}",
                    self.text()
                );
            }
        }
    }
}

fn hostile_router(up: &FakeUpstream, failing: &FakeUpstream) -> Router {
    let yaml = format!(
        "model_list:\n  - model_name: chat\n    litellm_params: {{ model: openai/x, api_base: '{}', api_key: sk-hostile-test-key }}\n  - model_name: broken\n    litellm_params: {{ model: openai/y, api_base: '{}', api_key: sk-hostile-test-key }}\nrouter_settings:\n  num_retries: 1\n",
        up.url, failing.url
    );
    support::router_with(
        &yaml,
        RouterOptions {
            seed: Some(3),
            ..RouterOptions::default()
        },
    )
}

fn error_reply() -> Reply {
    Reply::raw(
        500,
        "application/json",
        vec![json!({"error": {"message": HOSTILE_ERROR}}).to_string()],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tui_shows_hostile_output_escaped_and_no_cell_holds_a_control() {
    let up = FakeUpstream::start(vec![
        error_reply(),
        Reply::openai_stream(HOSTILE, Some((5, 50))),
    ])
    .await;
    let failing = FakeUpstream::start(vec![error_reply()]).await;
    let router = hostile_router(&up, &failing);
    for (w, h) in [(160, 48), (80, 24)] {
        let mut s = Screen::new(router.config(), w, h);
        s.ask(&router, "chat", "say something nasty").await;
        s.assert_inert(&format!("answer at {w}x{h}"));
        let text = s.text();
        for shown in ["\\x1b[2J", "\\x07", "\\u{202e}", "\\u{9b}"] {
            assert!(text.contains(shown), "{shown} is shown at {w}x{h}:\n{text}");
        }
        // A failed request: the error (quoting the upstream) is in the answer and the log.
        s.ask(&router, "broken", "and fail nastily").await;
        s.assert_inert(&format!("failure at {w}x{h}"));
        assert!(s.text().contains("pwned-by-error"), "{}", s.text());
        // A pasted draft and a hostile session preview are inert too.
        s.act(Action::Paste(HOSTILE.concat()));
        s.assert_inert(&format!("pasted draft at {w}x{h}"));
        s.act(Action::Key(KeyEvent::new(
            KeyCode::Char('o'),
            KeyModifiers::CONTROL,
        )));
        s.act(Action::SessionsListed(Ok(vec![
            llmux::store::session::SessionInfo {
                name: "evil\x1b[2J".into(),
                modified: None,
                bytes: 1,
                preview: HOSTILE.concat(),
            },
        ])));
        s.assert_inert(&format!("session list at {w}x{h}"));
    }
    // What was streamed is kept as it came (the screen escapes, the store does not alter).
    let mut s = Screen::new(router.config(), 80, 24);
    s.ask(&router, "chat", "again").await;
    let Some(llmux::store::session::Entry::Answer(a)) = s.app.entries.last() else {
        panic!("no answer")
    };
    assert_eq!(a.text, HOSTILE.concat());
}

// ---- llmux ask, the real binary ----

/// A config file for `ask` against `up`, and a data dir; kept alive by the returned guard.
fn ask_home(up: &FakeUpstream) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: chat\n    litellm_params: {{ model: openai/x, api_base: '{}', api_key: sk-hostile-test-key }}\nrouter_settings:\n  num_retries: 1\n",
            up.url
        ),
    )
    .unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_string();
    (dir, config.to_str().unwrap().to_string(), data)
}

/// A failed attempt with a hostile message (seen by `-v`), then the hostile answer.
async fn ask_upstream() -> FakeUpstream {
    FakeUpstream::start(vec![
        error_reply(),
        Reply::openai_stream(HOSTILE, Some((5, 50))),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_passes_hostile_bytes_through_to_a_pipe() {
    let up = ask_upstream().await;
    let (_dir, config, data) = ask_home(&up);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_llmux"))
            .args(["--config", &config, "ask", "-v", "-m", "chat", "hi"])
            .env("LLMUX_DATA_DIR", &data)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", HOSTILE.concat()),
        "a pipe gets the answer byte for byte"
    );
    // Diagnostics are escaped even when piped: they go to whoever reads the log later.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("pwned-by-error"), "{stderr}");
    assert!(
        !stderr.chars().any(|c| c != '\n' && dangerous(c)),
        "{stderr:?}"
    );
}

/// Runs `ask` in a pty with these extra arguments; returns everything the terminal got.
async fn ask_on_a_terminal(extra: &'static [&'static str]) -> Vec<u8> {
    let up = ask_upstream().await;
    let (_dir, config, data) = ask_home(&up);
    tokio::task::spawn_blocking(move || {
        let mut args = vec!["--config", config.as_str(), "ask", "-v", "-m", "chat"];
        args.extend_from_slice(extra);
        args.push("hi");
        let pty = Pty::spawn(
            env!("CARGO_BIN_EXE_llmux"),
            &args,
            &[("LLMUX_DATA_DIR", &data)],
            100,
            30,
        );
        assert_eq!(
            pty.wait_end(Duration::from_secs(20)).as_deref(),
            Some("exit 0"),
            "{}",
            String::from_utf8_lossy(&pty.output())
        );
        pty.output()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_escapes_hostile_output_on_a_terminal() {
    let out = String::from_utf8(ask_on_a_terminal(&[]).await).unwrap();
    // The pty turns each newline into CR LF; any other CR or control came from the model.
    let bare = out.replace("\r\n", "\n");
    assert!(
        !bare.chars().any(|c| c != '\n' && dangerous(c)),
        "a raw control reached the terminal: {bare:?}"
    );
    for shown in [
        "\\x1b[2J",
        "\\x1b]52;c;",
        "\\x07",
        "\\x08",
        "\\x0d",
        "\\u{202e}",
        "\\u{9b}",
        "\\x7f",
    ] {
        assert!(bare.contains(shown), "{shown} is shown: {bare:?}");
    }
    assert!(
        bare.contains("pwned-by-error"),
        "the -v failure line is there, escaped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_raw_passes_hostile_output_to_a_terminal() {
    let out = ask_on_a_terminal(&["--raw"]).await;
    assert!(
        contains(&out, HOSTILE.concat().as_bytes()),
        "--raw writes the answer unchanged: {:?}",
        String::from_utf8_lossy(&out)
    );
}
