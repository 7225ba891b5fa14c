//! Text from outside shown escaped wherever the command line writes it (the TUI and `ask`
//! are `hostile.rs`'s). A serve client's tags, a config's model and deployment names, an
//! upstream's error, a served answer, a watched server's names: each carries terminal
//! sequences (OSC 0 title, OSC 52 clipboard, CSI, BEL, C1, bidi override), and each command
//! that prints it runs in a real pty (`stats`, `check`, `check --ping` and its `--json`,
//! `models`, `ask --json`, a failed `ask`'s last line, `ask --batch` with its progress line,
//! `serve`'s warnings on stderr: at start and a budget's while serving), or, for `monitor`,
//! renders what a real server sent into a TestBackend. On the terminal not one raw control
//! may arrive, and the escapes are visible as text.
//!
//! What a pipe gets: the same escaped tables and diagnostics (they are for people; a file
//! read later with `cat` is a terminal too), and from `--json` the raw data, as JSON whose
//! strings carry those characters as `\u` escapes, so it means the same to a parser.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use llmux::monitor::client::{decode, feed_events, open};
use llmux::monitor::{MonitorState, Update, render};
use llmux::router::{RouteEventKind, RouterOptions};
use llmux::store::RequestLog;
use llmux::tui::theme::{ColorDepth, Theme};
use serde_json::json;

use crate::hostile::dangerous;
use crate::recovery::pty::Pty;
use crate::support;
use crate::upstream::{FakeUpstream, Reply};

/// The tag of the issue: a window title change.
const TAG: &str = "team\u{1b}]0;TITLE\u{7}";
/// The same tag as it must be shown.
const TAG_SHOWN: &str = "team\\x1b]0;TITLE\\x07";
/// A group name with a clipboard write and a bidi override, as YAML (double-quoted escapes).
const GROUP_YAML: &str = r#""grp\e]52;c;cm0gLXJmIH4K\a\u202Eevil""#;
const GROUP: &str = "grp\u{1b}]52;c;cm0gLXJmIH4K\u{7}\u{202e}evil";
const GROUP_SHOWN: &str = "grp\\x1b]52;c;cm0gLXJmIH4K\\x07\\u{202e}evil";
/// A deployment id with a screen clear and a C1 CSI.
const DEPLOYMENT_YAML: &str = r#""dep\e[2J\u009B31mred""#;
const DEPLOYMENT_SHOWN: &str = "dep\\x1b[2J\\u{9b}31mred";
/// An upstream's error message.
const ERROR: &str = "bad\u{1b}]0;pwned\u{7}\u{1b}[2Jgone";
const ERROR_SHOWN: &str = "bad\\x1b]0;pwned\\x07\\x1b[2Jgone";

/// Fails naming the first raw control (other than the pty's CR LF) in terminal output.
fn assert_inert(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out).replace("\r\n", "\n");
    if let Some(c) = text.chars().find(|&c| c != '\n' && dangerous(c)) {
        panic!("{what}: {c:?} reached the terminal raw:\n{text:?}");
    }
}

/// The config: the hostile group of one deployment at `url`.
fn hostile_yaml(url: &str) -> String {
    format!(
        "model_list:\n  - model_name: {GROUP_YAML}\n    litellm_params: {{ model: openai/gpt-4o-mini, api_base: '{url}', api_key: sk-test }}\n    model_info: {{ id: {DEPLOYMENT_YAML} }}\nrouter_settings:\n  num_retries: 0\n"
    )
}

/// A temporary home: the hostile config (for `url`) and a data dir.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(url: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yaml"), hostile_yaml(url)).unwrap();
        Home { dir }
    }

    fn config(&self) -> String {
        self.dir.path().join("config.yaml").display().to_string()
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// `llmux --config <config> args…` in a pty; everything the terminal got, once it ended.
    async fn on_a_terminal(&self, args: &[&str]) -> Vec<u8> {
        let config = self.config();
        let data = self.data().display().to_string();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--config", config.as_str()];
            all.extend(args.iter().map(String::as_str));
            let pty = Pty::spawn(
                env!("CARGO_BIN_EXE_llmux"),
                &all,
                &[("LLMUX_DATA_DIR", data.as_str()), ("NO_COLOR", "1")],
                200,
                50,
            );
            let end = pty.wait_end(Duration::from_secs(30));
            assert!(
                end.as_deref().is_some_and(|e| e.starts_with("exit ")),
                "{all:?} ended with {end:?}: {}",
                String::from_utf8_lossy(&pty.output())
            );
            pty.output()
        })
        .await
        .unwrap()
    }

    /// The same through pipes: (exit code, stdout, stderr).
    async fn piped(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_llmux"));
        cmd.arg("--config")
            .arg(self.config())
            .args(args)
            .env("LLMUX_DATA_DIR", self.data())
            .stdin(std::process::Stdio::null());
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

/// A request through a real `serve` whose client tags it with [`TAG`], logged in `data`.
async fn serve_a_tagged_request(yaml: &str, data: &Path) {
    let log = RequestLog::open(&data.join("requests.jsonl")).unwrap();
    let router = support::router_with(
        yaml,
        RouterOptions {
            request_log: Some(std::sync::Arc::new(log)),
            ..RouterOptions::default()
        },
    );
    let server = llmux::serve::spawn(router.clone(), crate::serve::options())
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&json!({
            "model": GROUP,
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"tags": [TAG]},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    server.shutdown().await.unwrap();
    router.sync_request_log();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_shows_a_clients_tags_and_the_configs_names_escaped() {
    let up = FakeUpstream::start(vec![Reply::openai_json("hello", Some((3, 1)))]).await;
    let home = Home::new(&up.url);
    serve_a_tagged_request(&hostile_yaml(&up.url), &home.data()).await;

    for (by, shown) in [
        ("tag", TAG_SHOWN),
        ("model", GROUP_SHOWN),
        ("deployment", DEPLOYMENT_SHOWN),
    ] {
        let out = home.on_a_terminal(&["stats", "--by", by]).await;
        assert_inert(&format!("stats --by {by}"), &out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains(shown),
            "stats --by {by} shows {shown}: {text}"
        );
        // A pipe gets the same table.
        let (code, stdout, _) = home.piped(&["stats", "--by", by]).await;
        assert_eq!(code, Some(0));
        assert_inert(&format!("stats --by {by} | cat"), stdout.as_bytes());
        assert!(stdout.contains(shown), "{stdout}");
    }

    // --json: the raw data, as inert JSON.
    let (code, stdout, _) = home.piped(&["stats", "--by", "tag", "--json"]).await;
    assert_eq!(code, Some(0));
    assert_inert("stats --json", stdout.trim_end().as_bytes());
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["rows"][0]["key"], TAG, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_models_and_ping_show_names_and_upstream_errors_escaped() {
    let up = FakeUpstream::start(vec![
        Reply::json(json!({"error": {"message": ERROR, "type": "server_error"}})).with_status(500),
    ])
    .await;
    let home = Home::new(&up.url);
    for args in [&["check"][..], &["models"], &["check", "--ping"]] {
        let out = home.on_a_terminal(args).await;
        assert_inert(&format!("{args:?}"), &out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains(GROUP_SHOWN), "{args:?}: {text}");
        assert!(text.contains(DEPLOYMENT_SHOWN), "{args:?}: {text}");
        if args.contains(&"--ping") {
            assert!(text.contains(ERROR_SHOWN), "{args:?}: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_on_stderr_are_escaped_even_in_a_pipe() {
    // An unknown provider is a warning that quotes the model; a fallback to a missing group
    // an error naming it.
    let home = Home::new("http://127.0.0.1:9");
    std::fs::write(
        home.dir.path().join("config.yaml"),
        format!(
            "model_list:\n  - model_name: {GROUP_YAML}\n    litellm_params: {{ model: \"bedrock/x\\e]0;pwned\\a\" }}\n  - model_name: ok\n    litellm_params: {{ model: mock/ok }}\n"
        ),
    )
    .unwrap();
    let (_, stdout, stderr) = home.piped(&["check"]).await;
    assert!(stderr.contains("\\x1b]0;pwned\\x07"), "{stderr}");
    assert_inert("check's stderr", stderr.as_bytes());
    assert_inert("check's stdout", stdout.as_bytes());
    let (_, _, stderr) = home.piped(&["ask", "-v", "-m", "ok", "hi"]).await;
    assert!(stderr.contains("\\x1b]0;pwned\\x07"), "{stderr}");
    assert_inert("ask's warnings", stderr.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_on_a_terminal_shows_progress_and_results_escaped() {
    let up = FakeUpstream::start(vec![
        Reply::openai_stream(crate::hostile::HOSTILE, Some((5, 50))),
        Reply::json(json!({"error": {"message": ERROR}})).with_status(400),
    ])
    .await;
    let home = Home::new(&up.url);
    let input = home.dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        format!(
            "{}\n{}\n",
            json!({"prompt": "one"}),
            json!({"prompt": "two", "id": TAG})
        ),
    )
    .unwrap();
    let input = input.display().to_string();
    let out = home
        .on_a_terminal(&["ask", "--batch", &input, "-m", GROUP, "--concurrency", "1"])
        .await;
    // The progress line is redrawn with llmux's own "erase line" sequence; nothing else.
    let ours = String::from_utf8_lossy(&out).replace("\r\x1b[2K", "");
    assert_inert("ask --batch", ours.as_bytes());
    assert!(ours.contains("batch: 2/2 done"), "{ours}");
    assert!(
        ours.contains("\\u001b]0;TITLE"),
        "the results are inert JSON: {ours}"
    );
}

/// Renders the monitor's state wide enough that the metrics pane shows whole names (a narrower
/// pane cuts long ids with `…`); every cell's symbol, row by row.
fn monitor_screen(state: &MonitorState) -> Vec<String> {
    let theme = Theme::builtin_default(ColorDepth::Mono);
    let buf = support::drawn(260, 30, |area, buf| render(state, &theme, area, buf));
    support::cells(&buf)
        .iter()
        .map(|row| row.concat())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_shows_what_the_server_sent_escaped() {
    let up = FakeUpstream::start(vec![
        Reply::json(json!({"error": {"message": ERROR}})).with_status(500),
    ])
    .await;
    let yaml = hostile_yaml(&up.url);
    let server = crate::serve::start(&yaml).await;
    let http = reqwest::Client::new();
    let events = feed_events(open(&http, &server.url(), None).await.unwrap());
    futures::pin_mut!(events);
    let mut state = MonitorState::new(server.url());
    let r = http
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&json!({
            "model": GROUP,
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"tags": [TAG]},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502, "an upstream 500 is a bad gateway");
    // Until the failure is in the log and a snapshot counted it.
    let (mut failed, mut counted) = (false, false);
    while !(failed && counted) {
        let ev = events.next().await.unwrap().unwrap();
        let Some(u) = decode(&ev) else { continue };
        match &u {
            Update::Route(e) => failed |= matches!(e.kind, RouteEventKind::Failed { .. }),
            Update::Snapshot(s) => {
                counted |= s.metrics.deployments.iter().any(|d| !d.failures.is_empty());
            }
            _ => {}
        }
        state.apply(u);
    }
    server.shutdown().await.unwrap();
    let rows = monitor_screen(&state);
    let all = rows.join("\n");
    assert_inert("the monitor's screen", all.as_bytes());
    // The metrics pane's row of the deployment (the TUI's pane, fed from the snapshot) and
    // the routing log's failure line.
    let row = rows
        .iter()
        .find(|r| r.contains("1 req"))
        .unwrap_or_else(|| panic!("a metrics row:\n{all}"));
    // The row keeps its numbers in sight, so a group this long is cut there (the log has
    // it whole).
    assert!(
        row.contains(DEPLOYMENT_SHOWN),
        "{DEPLOYMENT_SHOWN} in the metrics pane:\n{all}"
    );
    assert!(row.contains("failing 1/min"), "{all}");
    assert!(all.contains(GROUP_SHOWN), "{GROUP_SHOWN} on screen:\n{all}");
    assert!(all.contains(ERROR_SHOWN), "the error in the log:\n{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_json_and_a_failed_ask_on_a_terminal_are_inert() {
    // The hostile answer once, then the hostile error for every later request.
    let up = FakeUpstream::start(vec![
        Reply::openai_stream(crate::hostile::HOSTILE, Some((5, 50))),
        Reply::json(json!({"error": {"message": ERROR}})).with_status(400),
    ])
    .await;
    let home = Home::new(&up.url);

    // --json on a terminal: the answer's controls as JSON \u escapes.
    let out = home
        .on_a_terminal(&["ask", "--json", "-m", GROUP, "hi"])
        .await;
    assert_inert("ask --json", &out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("clear:\\u001b[2J"), "{text}");

    // Every route failed: the last line on stderr quotes the upstream, escaped.
    let out = home.on_a_terminal(&["ask", "-m", GROUP, "hi"]).await;
    assert_inert("a failed ask", &out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("llmux ask: ") && l.contains(ERROR_SHOWN)),
        "{text}"
    );

    // The same failure as --json, and check --ping --json quoting it too.
    for args in [
        &["ask", "--json", "-m", GROUP, "hi"][..],
        &["check", "--ping", "--json"],
    ] {
        let out = home.on_a_terminal(args).await;
        assert_inert(&format!("{args:?}"), &out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("bad\\u001b]0;pwned\\u0007"),
            "{args:?}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_a_terminal_shows_its_warnings_escaped() {
    let up = FakeUpstream::start(vec![Reply::openai_json("hello", Some((1000, 1000)))]).await;
    let home = Home::new(&up.url);
    // The hostile deployment with a budget one request uses up (a warning naming it while
    // serving), and an unknown provider quoted at start.
    std::fs::write(
        home.dir.path().join("config.yaml"),
        format!(
            "model_list:\n  - model_name: {GROUP_YAML}\n    litellm_params: {{ model: openai/gpt-4o-mini, api_base: '{}', api_key: sk-test, max_budget: 0.000001, budget_duration: 1d }}\n    model_info: {{ id: {DEPLOYMENT_YAML} }}\n  - model_name: other\n    litellm_params: {{ model: \"bedrock/x\\e]0;pwned\\a\" }}\n",
            up.url
        ),
    )
    .unwrap();
    let config = home.config();
    let data = home.data().display().to_string();
    let pty = tokio::task::spawn_blocking(move || {
        let pty = Pty::spawn(
            env!("CARGO_BIN_EXE_llmux"),
            &["--config", &config, "serve", "--bind", "127.0.0.1:0"],
            &[("LLMUX_DATA_DIR", data.as_str()), ("NO_COLOR", "1")],
            200,
            50,
        );
        assert!(
            // The whole line, address and all.
            pty.wait_for(Duration::from_secs(30), |out| {
                String::from_utf8_lossy(out)
                    .split_once("listening on http://")
                    .is_some_and(|(_, rest)| rest.contains('\n'))
            }),
            "{}",
            String::from_utf8_lossy(&pty.output())
        );
        pty
    })
    .await
    .unwrap();
    let started = String::from_utf8_lossy(&pty.output()).into_owned();
    let url = started
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    // No router in this process to install the TLS provider reqwest needs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    // A tagged request that spends the budget, and one for a hostile model that is not there.
    for model in [GROUP, "nope\u{1b}]0;x\u{7}"] {
        let r = http
            .post(format!("{url}/v1/chat/completions"))
            .json(&json!({
                "model": model,
                "messages": [{"role": "user", "content": "hi"}],
                "metadata": {"tags": [TAG]},
            }))
            .send()
            .await
            .unwrap();
        assert!(r.status() == 200 || r.status() == 404, "{}", r.status());
    }
    let out = tokio::task::spawn_blocking(move || {
        assert!(
            pty.wait_for_text(Duration::from_secs(30), "used up"),
            "the budget warning: {}",
            String::from_utf8_lossy(&pty.output())
        );
        pty.signal("TERM");
        assert!(pty.wait_end(Duration::from_secs(30)).is_some());
        pty.output()
    })
    .await
    .unwrap();
    assert_inert("serve", &out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("\\x1b]0;pwned\\x07"),
        "the start warning: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("used up") && l.contains(DEPLOYMENT_SHOWN)),
        "{text}"
    );
}
