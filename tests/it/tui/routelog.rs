//! Watching routing: the routing log scrolls by events — Home shows the first kept event at
//! the top (never empty rows), End the live tail, and every event in between is reachable one
//! key at a time; each line carries its wall-clock time; a key shows failures only.

use crossterm::event::KeyCode;
use llmux::provider::ErrorClass;
use llmux::router::RouteEventKind;
use llmux::tui::action::Action;
use llmux::tui::app::Focus;

use super::{Harness, route};

/// Thirty requests of one attempt each; every fifth attempt fails.
fn busy_log(h: &mut Harness) {
    for n in 1..=30u64 {
        h.act(Action::Route(route(
            n,
            "fast",
            Some(&format!("dep-{n:02}")),
            1,
            n * 1000 + 7,
            RouteEventKind::Attempt,
        )));
        if n % 5 == 0 {
            h.act(Action::Route(route(
                n,
                "fast",
                Some(&format!("dep-{n:02}")),
                1,
                n * 1000 + 9,
                RouteEventKind::Failure {
                    class: ErrorClass::Network,
                    status: None,
                    message: "connection refused".into(),
                    after_tokens: false,
                },
            )));
        }
    }
}

/// The routing log pane's rows (the right column below the metrics at 160x48).
fn log_rows(screen: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in screen.lines() {
        // The pane's left border is column 106.
        let right: String = line.chars().skip(106).collect();
        if right.contains("Routing log") {
            inside = true;
            continue;
        }
        if inside {
            if right.starts_with('╰') || right.starts_with('┗') {
                rows.push(right);
                break;
            }
            rows.push(right.chars().skip(1).collect());
        }
    }
    rows
}

fn focus_log(h: &mut Harness) {
    while h.app.focus != Focus::Log {
        h.press(KeyCode::Tab);
    }
}

#[tokio::test(start_paused = true)]
async fn home_shows_the_first_event_and_every_event_is_reachable() {
    let mut h = Harness::new(160, 48);
    busy_log(&mut h);
    focus_log(&mut h);
    let tail = log_rows(&h.screen());
    assert!(tail.iter().any(|r| r.contains("dep-30")), "{tail:#?}");

    h.press(KeyCode::Home);
    let top = log_rows(&h.screen());
    assert!(
        top[0].contains("#1 attempt 1 → dep-01"),
        "Home puts the first event on top: {top:#?}"
    );
    let body = &top[..top.len() - 1];
    assert!(
        body.iter()
            .all(|r| !r.trim_matches(['│', '┃', ' ']).is_empty()),
        "no empty rows: {top:#?}"
    );
    let border = top.last().unwrap();
    assert!(
        border.contains("newer") && !border.contains("older"),
        "{border}"
    );

    // Down one event at a time until the tail: every event shows on the way.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        for r in log_rows(&h.screen()) {
            for n in 1..=30 {
                if r.contains(&format!("dep-{n:02}")) {
                    seen.insert(n);
                }
            }
        }
        h.press(KeyCode::Down);
    }
    assert_eq!(seen.len(), 30, "{seen:?}");
    assert_eq!(
        h.app.log.scroll, 0,
        "Down reaches the live tail and follows"
    );

    h.press(KeyCode::Home);
    h.press(KeyCode::End);
    let end = log_rows(&h.screen());
    assert!(!end.last().unwrap().contains("newer"), "{end:#?}");
    assert!(end.iter().any(|r| r.contains("dep-30")), "{end:#?}");
}

#[tokio::test(start_paused = true)]
async fn scrolling_up_never_shows_blank_rows_and_new_events_keep_the_view() {
    let mut h = Harness::new(160, 48);
    busy_log(&mut h);
    focus_log(&mut h);
    for _ in 0..100 {
        h.press(KeyCode::Up);
    }
    let rows = log_rows(&h.screen());
    assert!(rows[0].contains("dep-01"), "{rows:#?}");
    let before = rows.clone();
    h.act(Action::Route(route(
        31,
        "fast",
        Some("dep-31"),
        1,
        40_000,
        RouteEventKind::Attempt,
    )));
    assert_eq!(
        log_rows(&h.screen())[0],
        before[0],
        "a new event does not move the view"
    );
}

#[tokio::test(start_paused = true)]
async fn each_line_has_its_wall_clock_time() {
    let mut h = Harness::new(160, 48);
    busy_log(&mut h);
    let rows = log_rows(&h.screen());
    // 1_700_000_030_007 ms after the epoch is 22:13:50.007 UTC.
    assert!(
        rows.iter()
            .any(|r| r.contains("22:13:50.007 #30 attempt 1 → dep-30")),
        "{rows:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_shows_failures_only() {
    let mut h = Harness::new(160, 48);
    busy_log(&mut h);
    h.press(KeyCode::F(8));
    let rows = log_rows(&h.screen());
    let text = rows.join("\n");
    assert!(
        text.contains("dep-30 failed") && text.contains("dep-05 failed"),
        "{text}"
    );
    assert!(!text.contains("attempt 1"), "{text}");
    assert!(h.screen().contains("Routing log · failures"));
    // In the focused log, `f` switches back.
    focus_log(&mut h);
    h.press(KeyCode::Char('f'));
    assert!(log_rows(&h.screen()).join("\n").contains("attempt 1"));
    // At 80x24 the key brings the folded log back.
    let mut small = Harness::new(80, 24);
    busy_log(&mut small);
    small.press(KeyCode::F(8));
    assert!(small.screen().contains("dep-30 failed"));
}

#[tokio::test]
async fn request_numbers_go_on_from_the_last_run() {
    use llmux::router::RouterOptions;
    use llmux::store::RequestLog;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let yaml = "model_list:\n  - model_name: m\n    litellm_params: { model: mock/m, mock_response: hi }\n";
    let mut ids = Vec::new();
    for _run in 0..2 {
        let router = crate::support::router_with(
            yaml,
            RouterOptions {
                request_log: Some(std::sync::Arc::new(RequestLog::open(&path).unwrap())),
                ..RouterOptions::default()
            },
        );
        for _ in 0..2 {
            let request = llmux::provider::ChatRequest::new(Vec::new());
            let run = crate::support::run(&router, "m", request).await;
            ids.push(run.outcome().request_id);
        }
        router.sync_request_log();
    }
    assert_eq!(
        ids,
        [1, 2, 3, 4],
        "the second run numbers on from the first"
    );
}
