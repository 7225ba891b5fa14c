//! The inspector: what went over the wire for an answer. A real router with a capture calls a
//! fake upstream over HTTP (a 429 with Retry-After, then another deployment's stream); the
//! app saves the request's record when the answer ends, and Ctrl+G shows every attempt's
//! request as sent (key redacted), status, the events as received and the routing events.

use std::sync::Arc;

use crossterm::event::KeyCode;
use llmux::provider::ChatRequest;
use llmux::provider::http::RawResponse;
use llmux::router::capture::{AttemptWire, Capture, WireEvent};
use llmux::router::{Router, RouterOptions};
use llmux::tui::action::{Action, Effect};
use llmux::tui::wirefile::{self, WireKeeper, WireRecord};
use tokio::time::Instant;

use super::{Harness, outcome};
use crate::upstream::{FakeUpstream, Reply};

const KEY: &str = "sk-inspect-secret-4242";

/// Runs the effects the inspector needs the runner for: saves and loads of wire records.
fn run_wire_effects(
    h: &mut Harness,
    fx: Vec<Effect>,
    keeper: &mut WireKeeper,
    session: &std::path::Path,
) {
    for e in fx {
        match e {
            Effect::SaveWire {
                answer_id,
                request_id,
                route,
            } => keeper
                .save(Some(session), answer_id, request_id, route)
                .unwrap(),
            Effect::LoadWire {
                answer_id,
                request_id,
                route,
            } => {
                let found = match keeper.recent(answer_id, request_id, &route) {
                    Some(r) => Ok(Some(r)),
                    None => wirefile::find(&wirefile::path_for(session), answer_id)
                        .map_err(|e| e.to_string()),
                };
                h.act(Action::WireLoaded { answer_id, found });
            }
            _ => {}
        }
    }
}

/// The app on a group of two deployments at `url` (tried in order, one retry) with a router
/// that captures, after one question went through it; its wire records go next to a session
/// file in a temporary folder.
struct Wired {
    h: Harness,
    capture: Arc<Capture>,
    keeper: WireKeeper,
    session: std::path::PathBuf,
    /// The effects of the question.
    fx: Vec<Effect>,
    _dir: tempfile::TempDir,
}

async fn fallback_asked(url: &str) -> Wired {
    let yaml = format!(
        r#"
model_list:
  - model_name: fast
    litellm_params: {{ model: openai/gpt-a, api_base: "{url}", api_key: {KEY}, order: 1 }}
  - model_name: fast
    litellm_params: {{ model: openai/gpt-b, api_base: "{url}", api_key: {KEY}, order: 2 }}
router_settings: {{ num_retries: 1 }}
"#
    );
    let (router, capture) = capturing(&yaml);
    let mut h = Harness::with_yaml(160, 48, &yaml);
    let dir = tempfile::tempdir().unwrap();
    let fx = ask(&mut h, &router, "hello").await;
    Wired {
        h,
        keeper: WireKeeper::new(Some(capture.clone())),
        capture,
        session: dir.path().join("s.jsonl"),
        fx,
        _dir: dir,
    }
}

#[tokio::test]
async fn a_fallback_s_attempts_show_with_the_request_sent_and_the_events_received() {
    let up = FakeUpstream::start(vec![
        Reply::status(429).retry_after("2"),
        Reply::openai_stream(&["Hel", "lo"], Some((12, 2))),
    ])
    .await;
    let Wired {
        mut h,
        capture,
        mut keeper,
        session,
        fx,
        _dir,
    } = fallback_asked(&up.url).await;
    assert!(
        fx.iter().any(|e| matches!(e, Effect::SaveWire { .. })),
        "the answer's end saves its record: {fx:?}"
    );
    run_wire_effects(&mut h, fx, &mut keeper, &session);
    assert!(capture.peek(1).is_empty(), "taken from memory once saved");
    let seen = inspected(&mut h, &mut keeper, &session, 6);
    assert!(!seen.contains(KEY), "{seen}");
    assert!(seen.contains("Inspect · openai/gpt-b · fast"), "{seen}");
    assert!(seen.contains("Attempt 1 · openai/gpt-a"), "{seen}");
    assert!(seen.contains("429 · failed"), "{seen}");
    assert!(
        seen.contains("Retry-After 2.0 s") || seen.contains("Retry-After 2 s"),
        "{seen}"
    );
    assert!(seen.contains("Attempt 2 · openai/gpt-b"), "{seen}");
    assert!(seen.contains("authorization: [redacted]"), "{seen}");
    assert!(
        seen.contains(&format!("POST {}/chat/completions", up.url)),
        "{seen}"
    );
    assert!(seen.contains("\"content\": \"hello\""), "{seen}");
    assert!(
        seen.contains("delta \"Hel\"") && seen.contains("usage 12 in / 2 out"),
        "{seen}"
    );
    assert!(seen.contains("done stop"), "{seen}");
    assert!(
        seen.contains("attempt 2 → openai/gpt-b"),
        "the routing events: {seen}"
    );
    // Esc closes; the record is on disk, private, and a new keeper (a restart) finds it.
    h.press(KeyCode::Esc);
    assert!(!h.app.b.inspect.shown());
    let path = wirefile::path_for(&session);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(KEY), "no key on disk");
    let record = wirefile::find(&path, 2)
        .unwrap()
        .expect("answer 2's record");
    assert_eq!(record.attempts.len(), 2);
    assert_eq!(record.attempts[0].status, Some(429));
    assert_eq!(record.attempts[0].retry_after_ms, Some(2000));
    assert_eq!(record.attempts[1].status, Some(200));
}

#[tokio::test]
async fn each_attempt_keeps_its_response_head_and_bytes_as_received_with_credentials_out() {
    let limited = Reply::raw(
        429,
        "application/json",
        vec![format!(
            r#"{{"error":{{"message":"slow down, key {KEY}","code":429}}}}"#
        )],
    )
    .retry_after("2")
    .header("x-request-id", "req-429")
    .header("set-cookie", "session=s3cr3t-cookie");
    let stream = Reply::openai_stream(&["Hel", "lo"], Some((12, 2)))
        .header("x-request-id", "req-200")
        .header("set-cookie", "session=s3cr3t-cookie");
    let sent_bytes: Vec<u8> = stream.chunks().concat();
    let up = FakeUpstream::start(vec![limited, stream]).await;
    let Wired {
        mut h,
        capture: _,
        mut keeper,
        session,
        fx,
        _dir,
    } = fallback_asked(&up.url).await;
    run_wire_effects(&mut h, fx, &mut keeper, &session);

    // On disk: each attempt's status line, headers and body, as they came.
    let path = wirefile::path_for(&session);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(KEY) && !text.contains("s3cr3t"), "{text}");
    let record = wirefile::find(&path, 2)
        .unwrap()
        .expect("answer 2's record");
    let failed = record.attempts[0]
        .response
        .as_ref()
        .expect("the 429's head");
    assert_eq!(failed.status_line, "HTTP/1.1 429 Too Many Requests");
    let header = |r: &llmux::provider::http::RawResponse, name: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(failed, "retry-after").as_deref(), Some("2"));
    assert_eq!(header(failed, "x-request-id").as_deref(), Some("req-429"));
    assert_eq!(header(failed, "set-cookie").as_deref(), Some("[redacted]"));
    assert!(
        failed
            .body
            .starts_with(r#"{"error":{"message":"slow down, key "#)
    );
    let ok = record.attempts[1]
        .response
        .as_ref()
        .expect("the stream's head");
    assert_eq!(ok.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        header(ok, "content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(header(ok, "x-request-id").as_deref(), Some("req-200"));
    assert_eq!(
        ok.body.as_bytes(),
        &sent_bytes[..],
        "the SSE bytes, exactly as sent"
    );
    assert_eq!(ok.body_dropped, 0);

    // On screen.
    let seen = inspected(&mut h, &mut keeper, &session, 8);
    assert!(!seen.contains(KEY) && !seen.contains("s3cr3t"), "{seen}");
    assert!(seen.contains("HTTP/1.1 429 Too Many Requests"), "{seen}");
    assert!(seen.contains("x-request-id: req-429"), "{seen}");
    assert!(seen.contains("set-cookie: [redacted]"), "{seen}");
    assert!(seen.contains("HTTP/1.1 200 OK"), "{seen}");
    assert!(seen.contains("← body as received"), "{seen}");
    assert!(seen.contains("data: [DONE]"), "{seen}");
    assert!(seen.contains(r#""content":"Hel""#), "{seen}");
}

#[tokio::test]
async fn a_long_stream_s_bytes_are_kept_up_to_the_bound_and_counted() {
    use llmux::provider::http::tap::MAX_RAW_BODY;
    let words: Vec<String> = (0..3000).map(|i| format!("word{i:05} ")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let reply = Reply::openai_stream(&words, Some((12, 3000)));
    let total = reply.chunks().concat().len();
    assert!(total > MAX_RAW_BODY, "{total}");
    let up = FakeUpstream::start(vec![reply]).await;
    let yaml = format!(
        "model_list:\n{}",
        crate::support::deployment("fast", "fast-1", &up.url, "")
    );
    let (router, capture) = capturing(&yaml);
    let run = crate::support::run(&router, "fast", crate::support::ask("hi")).await;
    let attempts = capture.take(run.outcome().request_id);
    let raw = attempts[0].response.as_ref().expect("its response");
    assert!(raw.body.len() <= MAX_RAW_BODY, "{}", raw.body.len());
    assert_eq!(raw.body.len() as u64 + raw.body_dropped, total as u64);
    assert!(raw.body.starts_with("data: {"), "{}", &raw.body[..40]);
}

#[tokio::test]
async fn without_a_capture_nothing_is_kept_and_inspect_says_so() {
    let router = crate::support::router_from(llmux::config::demo().unwrap(), Default::default());
    assert!(router.capture().is_none(), "serve and ask capture nothing");
    let mut h = Harness::new(80, 24);
    assert!(h.ctrl('g').is_empty(), "no answer yet");
    assert!(h.screen().contains("no answer to inspect yet"));
    let (tag, _, _) = h.send("hi");
    let o = outcome("hey", "fast", "mock/fast-steady", 10, 20, 1, Some(1));
    h.act(Action::Chat {
        tag,
        event: llmux::router::ChatEvent::Finished(Box::new(Ok(o))),
        at: Instant::now(),
    });
    let fx = h.ctrl('g');
    let answer_id = match &fx[..] {
        [Effect::LoadWire { answer_id, .. }] => *answer_id,
        other => panic!("{other:?}"),
    };
    assert!(h.screen().contains("reading…"));
    h.act(Action::WireLoaded {
        answer_id,
        found: Ok(None),
    });
    assert!(h.screen().contains("Nothing was kept for this answer"));
    h.ctrl('g');
    assert!(!h.app.b.inspect.shown(), "the same key closes it");
}

/// Opens the inspector on the last answer and reads `pages` pages of it.
fn inspected(
    h: &mut Harness,
    keeper: &mut WireKeeper,
    session: &std::path::Path,
    pages: usize,
) -> String {
    let fx = h.ctrl('g');
    run_wire_effects(h, fx, keeper, session);
    let mut seen = String::new();
    for _ in 0..pages {
        seen.push_str(&h.screen());
        h.press(KeyCode::PageDown);
    }
    seen
}

/// A router over `yaml` that captures what goes over the wire, and its capture.
fn capturing(yaml: &str) -> (Router, Arc<Capture>) {
    let capture = Arc::new(Capture::new());
    let options = RouterOptions {
        capture: Some(capture.clone()),
        ..RouterOptions::default()
    };
    (crate::support::router_with(yaml, options), capture)
}

/// Sends `question` and runs it through `router` into the app, with its routing events as
/// the runner feeds them; returns the effects.
async fn ask(h: &mut Harness, router: &Router, question: &str) -> Vec<Effect> {
    let mut sub = router.subscribe();
    let (tag, group, messages) = h.send(question);
    let request = (tag, group, ChatRequest::new(messages));
    h.run_request(router, request, Some(&mut sub)).await
}

#[tokio::test(start_paused = true)]
async fn a_mock_deployment_s_attempts_say_no_http_was_made_and_invent_no_status() {
    let yaml = r#"
model_list:
  - model_name: fast
    litellm_params: { model: mock/flaky, mock_error: 503, mock_error_rate: 1.0, order: 1 }
  - model_name: fast
    litellm_params: { model: mock/steady, mock_response: "hi there", order: 2 }
router_settings: { num_retries: 1 }
"#;
    let (router, capture) = capturing(yaml);
    let mut h = Harness::with_yaml(160, 48, yaml);
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("s.jsonl");
    let mut keeper = WireKeeper::new(Some(capture.clone()));
    let fx = ask(&mut h, &router, "hello").await;
    run_wire_effects(&mut h, fx, &mut keeper, &session);
    let record = wirefile::find(&wirefile::path_for(&session), 2)
        .unwrap()
        .expect("answer 2's record");
    let (Some(flaky), Some(steady)) = (record.attempts.first(), record.attempts.last()) else {
        panic!("{record:?}")
    };
    assert_eq!(steady.deployment, "mock/steady");
    assert!(record.attempts.iter().all(|a| a.in_process), "{record:?}");
    assert_eq!(flaky.status, Some(503), "the status it simulated");
    assert_eq!(steady.status, None, "no HTTP: no status");
    let seen = inspected(&mut h, &mut keeper, &session, 4);
    assert!(!seen.contains("opened: 200"), "{seen}");
    assert!(seen.contains("simulated 503 · failed"), "{seen}");
    assert!(seen.contains("in-process · ok"), "{seen}");
    assert!(
        seen.contains("mock deployment: no HTTP, answered in-process"),
        "{seen}"
    );
    assert!(seen.contains("in-process mock/steady"), "{seen}");
}

fn head(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// A record with fixed times, for the snapshots.
fn fixed_record(answer_id: u64) -> WireRecord {
    let at = 1_700_000_000_000;
    let request = llmux::provider::preview::SentRequest {
        method: "POST".into(),
        url: "https://api.example.com/v1/chat/completions".into(),
        headers: vec![
            ("accept".into(), "text/event-stream".into()),
            ("authorization".into(), "[redacted]".into()),
        ],
        body: "{\n  \"model\": \"gpt-4o-mini\",\n  \"messages\": [\n    {\n      \"role\": \"user\",\n      \"content\": \"How does Rust manage memory?\"\n    }\n  ],\n  \"stream\": true\n}".into(),
    };
    WireRecord {
        answer_id,
        request_id: 7,
        route: vec![
            "22:13:20.000 #7 request fast → group fast (~12 prompt tokens)".into(),
            "22:13:20.005 #7 attempt 1 → fast-flaky".into(),
            "22:13:20.155 #7 fast-flaky failed: server 503: mock failure".into(),
            "22:13:20.157 #7 attempt 2 → fast-steady".into(),
            "22:13:20.900 #7 done by fast-steady: ttft 237 ms, 900 ms, 12 in / 3 out".into(),
        ],
        attempts: vec![
            AttemptWire {
                request_id: 7,
                attempt: 1,
                group: "fast".into(),
                deployment: "fast-flaky".into(),
                at_unix_ms: at + 5,
                request: request.clone(),
                in_process: false,
                status: Some(503),
                outcome: "server (HTTP 503): mock failure".into(),
                retry_after_ms: None,
                response: Some(RawResponse {
                    status_line: "HTTP/1.1 503 Service Unavailable".into(),
                    headers: head(&[("content-type", "application/json")]),
                    body: r#"{"error":{"message":"mock failure","code":503}}"#.into(),
                    body_dropped: 0,
                }),
                events: Vec::new(),
                events_dropped: 0,
                ttft_ms: None,
                total_ms: 150,
            },
            AttemptWire {
                request_id: 7,
                attempt: 2,
                group: "fast".into(),
                deployment: "fast-steady".into(),
                at_unix_ms: at + 157,
                request,
                in_process: false,
                status: Some(200),
                outcome: "ok".into(),
                retry_after_ms: None,
                response: Some(RawResponse {
                    status_line: "HTTP/1.1 200 OK".into(),
                    headers: head(&[
                        ("content-type", "text/event-stream"),
                        ("x-request-id", "req-7"),
                        ("set-cookie", "[redacted]"),
                    ]),
                    body: [
                        r#"data: {"choices":[{"delta":{"content":"Rust frees"}}]}"#,
                        "",
                        r#"data: {"choices":[{"delta":{"content":" memory when"}}]}"#,
                        "",
                        r#"data: {"choices":[{"delta":{"content":" owners go."}}]}"#,
                        "",
                        "data: [DONE]",
                        "",
                    ]
                    .join("\n"),
                    body_dropped: 0,
                }),
                events: [
                    (60, "opened: 200"),
                    (80, "delta \"Rust frees\""),
                    (95, "delta \" memory when\""),
                    (120, "delta \" owners go.\""),
                    (130, "usage 12 in / 3 out"),
                    (131, "done stop"),
                ]
                .into_iter()
                .map(|(ms, what)| WireEvent {
                    ms,
                    what: what.into(),
                })
                .collect(),
                events_dropped: 0,
                ttft_ms: Some(80),
                total_ms: 743,
            },
        ],
        shrunk: false,
    }
}

#[tokio::test(start_paused = true)]
async fn snapshot_inspector() {
    for (w, hh) in [(80, 24), (160, 48)] {
        let mut h = Harness::new(w, hh);
        let (tag, _, _) = h.send("How does Rust manage memory?");
        let o = outcome(
            "Rust frees memory when owners go.",
            "fast",
            "fast-steady",
            237,
            900,
            3,
            Some(4_200_000),
        );
        h.chat(
            tag,
            900,
            llmux::router::ChatEvent::Finished(Box::new(Ok(o))),
        )
        .await;
        let fx = h.ctrl('g');
        let answer_id = match &fx[..] {
            [Effect::LoadWire { answer_id, .. }] => *answer_id,
            other => panic!("{other:?}"),
        };
        h.act(Action::WireLoaded {
            answer_id,
            found: Ok(Some(fixed_record(answer_id))),
        });
        insta::assert_snapshot!(format!("inspector_{w}x{hh}"), h.screen());
        // `n` jumps to the next attempt (as far as the pane scrolls).
        h.press(KeyCode::Char('n'));
        h.press(KeyCode::Char('n'));
        let s = h.screen();
        let first = s.lines().nth(1).unwrap_or_default().to_string();
        if hh == 24 {
            assert!(first.contains("Attempt 2"), "{s}");
        }
        h.press(KeyCode::End);
        let s = h.screen();
        assert!(s.contains("data: [DONE]"), "{s}");
        insta::assert_snapshot!(format!("inspector_end_{w}x{hh}"), s);
    }
}

#[tokio::test(start_paused = true)]
async fn at_80_columns_long_lines_go_on_under_themselves_and_n_still_finds_each_attempt() {
    let mut h = Harness::new(80, 24);
    let (tag, _, _) = h.send("How does Rust manage memory?");
    let o = outcome("It frees.", "fast", "fast-steady", 237, 900, 3, None);
    h.chat(tag, 900, llmux::router::ChatEvent::finished(Ok(o)))
        .await;
    let fx = h.ctrl('g');
    let answer_id = match &fx[..] {
        [Effect::LoadWire { answer_id, .. }] => *answer_id,
        other => panic!("{other:?}"),
    };
    let mut record = fixed_record(answer_id);
    record.route[4] = "22:13:20.900 #7 done by fast-steady: ttft 237 ms, 900 ms, 12 in / 3 out, \
                       $0.0000445"
        .into();
    h.act(Action::WireLoaded {
        answer_id,
        found: Ok(Some(record)),
    });
    let s = h.screen();
    // Cut at the edge once; now the figures at its end show on the next line, indented.
    assert!(s.contains("3 out,"), "{s}");
    assert!(
        s.lines().any(|l| l.contains("┃    $0.0000445")),
        "the rest under it, indented:\n{s}"
    );
    for attempt in ["Attempt 1", "Attempt 2"] {
        h.press(KeyCode::Char('n'));
        let s = h.screen();
        assert!(
            s.lines().nth(1).is_some_and(|l| l.contains(attempt)),
            "n scrolls to {attempt}:\n{s}"
        );
    }
}
