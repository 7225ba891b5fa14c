//! llmux's own files under the data dir: a line cut inside a UTF-8 character (a crash
//! mid-write) costs that line only, in a session and in the request log, and the next run's
//! first record is not glued onto it; sessions, the request log and their directories are
//! private (0600 / 0700), created so and tightened when they were not.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use llmux::store::session::{Entry, Record, SessionStore};

/// The binary on the demo config with a private data dir under `home`.
fn llmux(home: &Path, args: &[&str]) -> Command {
    let mut cmd = crate::support::llmux(home);
    cmd.args(args);
    cmd
}

async fn run(cmd: Command) -> Output {
    let mut cmd = cmd;
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Appends bytes with no newline: what a crash in the middle of a write leaves.
fn append_torn(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// `llmux stats --json --by tag`: the exit code, the report and stderr.
async fn stats_by_tag(home: &Path) -> (Option<i32>, serde_json::Value, String) {
    let out = run(llmux(home, &["stats", "--json", "--by", "tag"])).await;
    let report = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.code(), report, text(&out.stderr))
}

fn row_keys(report: &serde_json::Value) -> Vec<String> {
    report["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r["key"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_log_torn_inside_a_character_costs_one_line_and_the_next_run_starts_a_line() {
    let home = tempfile::tempdir().unwrap();
    let out = run(llmux(
        home.path(),
        &["ask", "-m", "local", "--tag", "first", "hi"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let log = home.path().join("data/requests.jsonl");
    // A record cut after the first byte of "é" (C3 A9).
    append_torn(&log, b"{\"request_id\":9,\"group\":\"caf\xc3");

    let (code, report, stderr) = stats_by_tag(home.path()).await;
    assert_eq!(code, Some(0), "stats reads the log: {stderr}");
    assert!(stderr.contains("skipped 1 unreadable line"), "{stderr}");
    assert_eq!(report["total"]["requests"], 1, "{report}");
    assert_eq!(row_keys(&report), ["first"]);

    // The next run's first record is its `request` event, which carries the tag: glued onto
    // the torn line, it would be lost with it.
    let out = run(llmux(
        home.path(),
        &["ask", "-m", "local", "--tag", "second", "hi"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (code, report, stderr) = stats_by_tag(home.path()).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("skipped 1 unreadable line"), "{stderr}");
    assert_eq!(report["total"]["requests"], 2, "{report}");
    assert_eq!(row_keys(&report), ["first", "second"]);
    assert_eq!(report["skipped_lines"], 1);
}

fn user(id: u64, text: &str) -> Record {
    Record::User {
        id,
        text: text.into(),
        group: "local".into(),
        at_unix_ms: 0,
        images: Vec::new(),
    }
}

fn users(entries: &[Entry]) -> Vec<&str> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::User(u) => Some(u.text.as_str()),
            Entry::Answer(_) | Entry::ToolResult(_) => None,
        })
        .collect()
}

#[test]
fn a_session_line_that_is_not_utf8_costs_that_line_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    let mut w = store.writer("s");
    w.append(&user(1, "café one")).unwrap();
    drop(w);
    let path = store.path_of("s");
    // A whole line that is not UTF-8 in the middle, then a record cut inside "é".
    append_torn(&path, b"{\"type\":\"draft\",\"text\":\"\xff\"}\n");
    let mut w = store.writer("s");
    w.append(&user(2, "café two")).unwrap();
    drop(w);
    append_torn(&path, b"{\"type\":\"user\",\"id\":3,\"text\":\"caf\xc3");

    let s = store.load("s").unwrap();
    assert_eq!(users(&s.entries), ["café one", "café two"]);
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(
        s.warnings[0].starts_with("line 2: unreadable"),
        "{:?}",
        s.warnings
    );
    assert!(
        s.warnings[1].contains("line 4: torn last line"),
        "{:?}",
        s.warnings
    );
    // The session list still previews it.
    let listed = store.list().unwrap();
    assert_eq!(listed[0].preview, "café one");

    // The next write starts a line of its own.
    store.writer("s").append(&user(5, "after")).unwrap();
    let s = store.load("s").unwrap();
    assert_eq!(users(&s.entries), ["café one", "café two", "after"]);
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_and_the_data_dir_are_private_and_tightened() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let log = data.join("requests.jsonl");
    let out = run(llmux(home.path(), &["ask", "-m", "local", "hi"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(mode(&data), 0o700, "the data dir is created private");
    assert_eq!(mode(&log), 0o600, "the request log is created private");

    // Files from before (or made readable by hand) are tightened by the next run.
    set_mode(&data, 0o755);
    set_mode(&log, 0o644);
    let out = run(llmux(home.path(), &["ask", "-m", "local", "hi"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&log), 0o600);
}

#[test]
fn sessions_and_their_folder_are_private_and_tightened() {
    let home = tempfile::tempdir().unwrap();
    let store = SessionStore::new(home.path().join("data/sessions"));
    store.writer("a").append(&user(1, "hi")).unwrap();
    let path = store.path_of("a");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(store.dir()), 0o700);
    assert_eq!(mode(&home.path().join("data")), 0o700);

    // Opening an old, readable session (to show it, or to write to it) tightens it.
    set_mode(&path, 0o644);
    set_mode(store.dir(), 0o755);
    store.load("a").unwrap();
    assert_eq!(mode(&path), 0o600, "loading tightens the file");
    set_mode(&path, 0o644);
    store.writer("a").append(&user(2, "again")).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(store.dir()), 0o700);
}
