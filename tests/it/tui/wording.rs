//! Issue 16's wording: what the TUI and the router say reads as a sentence and states what is
//! true ("no code block", "1 failure", one pair of parentheses and one rounding for a wait,
//! a cancel before any text keeps nothing, an answer cut by a crash keeps its header), and a
//! message does not repeat one failure six times.

use crossterm::event::KeyCode;
use llmux::provider::ChatRequest;
use llmux::router::{ChatEvent, RouteEventKind};
use llmux::store::session::{Record, parse_records};
use llmux::tui::action::{Action, Effect};

use super::{Harness, route};
use crate::support::router;

#[tokio::test(start_paused = true)]
async fn copying_a_code_block_from_an_answer_without_one_says_so_in_english() {
    let mut h = Harness::new(120, 40);
    let (tag, _, _) = h.send("hi");
    let o = super::outcome("no code here", "fast", "mock/fast-steady", 5, 9, 3, Some(1));
    h.chat(tag, 10, ChatEvent::finished(Ok(o))).await;
    h.act(Action::Command(llmux::tui::action::Command::CopyCode));
    let s = h.screen();
    assert!(s.contains("the last answer has no code block"), "{s}");
}

#[tokio::test(start_paused = true)]
async fn a_cancel_before_any_text_does_not_claim_a_partial_answer_was_kept() {
    let mut h = Harness::new(120, 40);
    h.send("hi");
    h.press(KeyCode::Esc);
    let s = h.screen();
    assert!(s.contains("cancelled before any answer came"), "{s}");
    assert!(!s.contains("partial answer is kept"), "{s}");

    let (tag, _, _) = h.send("again");
    h.chat(tag, 5, ChatEvent::Delta("Some".into())).await;
    h.press(KeyCode::Esc);
    assert!(h.screen().contains("cancelled; the partial answer is kept"));
}

#[tokio::test(start_paused = true)]
async fn an_answer_cut_by_a_crash_keeps_its_deployment_and_ttft() {
    let mut h = Harness::new(120, 40);
    let (tag, _, _) = h.send("hi");
    let attempt = route(
        1,
        "fast",
        Some("mock/fast-steady"),
        1,
        2,
        RouteEventKind::Attempt,
    );
    let mut records: Vec<Record> = h
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let mut persisted = |fx: Vec<Effect>| {
        records.extend(fx.into_iter().filter_map(|e| match e {
            Effect::Persist(r) => Some(r),
            _ => None,
        }))
    };
    persisted(h.chat(tag, 2, ChatEvent::route(attempt)).await);
    persisted(
        h.chat(tag, 250, ChatEvent::Delta("Half an ans".into()))
            .await,
    );
    persisted(h.chat(tag, 300, ChatEvent::Delta("wer".into())).await);
    // kill -9 here: no final answer record. The file as written, read back.
    let file: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    let mut loaded = parse_records(file.as_bytes());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    loaded.name = "cut".into();
    let mut again = Harness::new(80, 24);
    again.app.load_session(loaded);
    let s = again.screen();
    assert!(
        s.contains("◆ mock/fast-steady · fast  interrupted"),
        "the header names the deployment:\n{s}"
    );
    assert!(s.contains("ttft 252 ms"), "{s}");
    assert!(!s.contains("ttft ?"), "{s}");
}

#[tokio::test(start_paused = true)]
async fn a_deployment_at_its_limit_reads_with_one_pair_of_parentheses_and_one_wait() {
    let r = router(
        r#"
model_list:
  - model_name: a
    litellm_params: { model: mock/a, mock_response: hi, rpm: 1 }
"#,
    );
    r.chat("a", ChatRequest::new(Vec::new()))
        .finish()
        .await
        .unwrap();
    let run = crate::support::run(&r, "a", ChatRequest::new(Vec::new())).await;
    let line = run
        .events
        .iter()
        .rev()
        .find(|ev| matches!(ev.kind, RouteEventKind::Unavailable { .. }))
        .map(|ev| ev.describe())
        .expect("an unavailable event");
    assert!(!line.contains("))"), "{line}");
    assert!(line.contains("mock/a at its rpm limit, 1/1"), "{line}");
    let wait = line.split("next free in ").nth(1).expect(&line);
    assert!(
        wait.trim_end_matches('s').parse::<u64>().is_ok(),
        "whole seconds, as the reason counts them: {line}"
    );
}

#[tokio::test(start_paused = true)]
async fn one_failure_is_not_failures_and_repeats_are_counted_once() {
    let r = router(
        r#"
model_list:
  - model_name: a
    litellm_params: { model: mock/a, mock_error: 503, mock_error_rate: 1.0 }
  - model_name: a
    litellm_params: { model: mock/b, mock_error: 503, mock_error_rate: 1.0 }
router_settings:
  num_retries: 5
  allowed_fails: 0
"#,
    );
    let run = crate::support::run(&r, "a", ChatRequest::new(Vec::new())).await;
    let reasons: Vec<String> = run
        .events
        .iter()
        .filter(|ev| matches!(ev.kind, RouteEventKind::Cooldown { .. }))
        .map(|ev| ev.describe())
        .collect();
    let failed = run.result.clone().err();
    assert!(!reasons.is_empty());
    for r in &reasons {
        assert!(r.contains("1 failure in a minute"), "{r}");
        assert!(!r.contains("))"), "{r}");
    }
    assert!(failed.is_some());

    // Six tries of one deployment that fails alike: one failure, counted.
    let r = router(
        r#"
model_list:
  - model_name: a
    litellm_params: { model: mock/a, mock_error: 503, mock_error_rate: 1.0 }
router_settings:
  num_retries: 5
  allowed_fails: 100
"#,
    );
    let e = r
        .chat("a", ChatRequest::new(Vec::new()))
        .finish()
        .await
        .unwrap_err();
    let repeats = e.message.matches("server 503").count();
    assert!(
        repeats < e.attempts.len(),
        "{} attempts, {repeats} repeats: {}",
        e.attempts.len(),
        e.message
    );
    assert!(
        e.message.ends_with(&format!(" ×{}", e.attempts.len())),
        "{}",
        e.message
    );
}
