//! The metrics pane's stats view: the keys that show it and cycle its window and grouping,
//! the reads it asks for (one at a time, again when stale, after a finished request, on the
//! timer only while shown), and what it draws from a request log read through
//! `statsview::read` (snapshots at 80x24 and 160x48, plus rows, totals and window label).

use crossterm::event::KeyCode;
use llmux::router::{RouteEvent, RouteEventKind};
use llmux::store::stats::{DeploymentFacts, GroupBy};
use llmux::tui::action::{Action, Effect};
use llmux::tui::statsview::{self, StatsRead, StatsWindow};

use super::Harness;

/// "Now" for the log below, in Unix milliseconds.
const NOW: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

/// One log line.
fn line(id: u64, group: &str, dep: Option<&str>, ago_ms: u64, kind: &str) -> String {
    let dep = dep.map_or(String::new(), |d| format!(r#""deployment":"{d}","#));
    format!(
        r#"{{"request_id":{id},"group":"{group}",{dep}"attempt":1,"at_unix_ms":{},"elapsed_ms":0,{kind}}}"#,
        NOW - ago_ms
    )
}

/// A request log: answers on fast and local an hour ago (one with tags, one failed after a
/// retry, one cached), and an old one three days ago that only the 7d window sees.
fn log_file(dir: &std::path::Path) -> std::path::PathBuf {
    let req = |tags: &str| format!(r#""event":"request","requested":"x","prompt_tokens":5{tags}"#);
    let done = |out: u64, cost: &str, ms: u64| {
        format!(
            r#""event":"done","usage":{{"input":20,"output":{out}}},"cost_usd":{cost},"ttft_ms":{},"total_ms":{ms}"#,
            ms / 4
        )
    };
    let fail =
        r#""event":"failure","class":"server","status":503,"message":"down","after_tokens":false"#;
    let lines = [
        line(1, "fast", None, HOUR, &req(r#","tags":["team-a"]"#)),
        line(
            1,
            "fast",
            Some("mock/fast-steady"),
            HOUR,
            r#""event":"attempt""#,
        ),
        line(
            1,
            "fast",
            Some("mock/fast-steady"),
            HOUR,
            &done(80, "0.000049", 1600),
        ),
        line(2, "fast", None, HOUR, &req("")),
        line(
            2,
            "fast",
            Some("mock/fast-flaky"),
            HOUR,
            r#""event":"attempt""#,
        ),
        line(2, "fast", Some("mock/fast-flaky"), HOUR, fail),
        line(
            2,
            "fast",
            Some("mock/fast-steady"),
            HOUR,
            r#""event":"attempt""#,
        ),
        line(
            2,
            "fast",
            Some("mock/fast-steady"),
            HOUR,
            &done(120, "0.000075", 2400),
        ),
        line(3, "local", None, HOUR, &req("")),
        line(
            3,
            "local",
            Some("mock/local-small"),
            HOUR,
            r#""event":"attempt""#,
        ),
        line(3, "local", Some("mock/local-small"), HOUR, fail),
        line(
            3,
            "local",
            None,
            HOUR,
            r#""event":"failed","message":"every route failed""#,
        ),
        line(4, "fast", None, HOUR, &req(r#","tags":["team-a"]"#)),
        line(
            4,
            "fast",
            None,
            HOUR,
            &format!(r#"{},"cached":true"#, done(80, "0.0", 3)),
        ),
        line(5, "smart", None, 72 * HOUR, &req("")),
        line(
            5,
            "smart",
            Some("mock/smart-slow"),
            72 * HOUR,
            r#""event":"attempt""#,
        ),
        line(
            5,
            "smart",
            Some("mock/smart-slow"),
            72 * HOUR,
            &done(300, "0.0012", 9000),
        ),
    ];
    let path = dir.join("requests.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn facts() -> DeploymentFacts {
    let mut f = DeploymentFacts::from_config(&llmux::config::demo().unwrap());
    f.add("mock/fast-steady", "mock", &["prod".to_string()]);
    f
}

/// Answers the view's pending read from the log, as the runner would.
fn deliver(h: &mut Harness, path: &std::path::Path, fx: &[Effect]) -> Vec<Effect> {
    let Some(Effect::ReadStats { window, by }) =
        fx.iter().find(|e| matches!(e, Effect::ReadStats { .. }))
    else {
        panic!("no ReadStats in {fx:?}");
    };
    let read = statsview::read(Some(path), *window, *by, &facts(), NOW);
    h.act(Action::Stats(read))
}

fn f(n: u8) -> KeyCode {
    KeyCode::F(n)
}

#[tokio::test(start_paused = true)]
async fn the_stats_view_reads_the_log_and_shows_rows_totals_and_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_file(dir.path());
    for (w, hh) in [(80, 24), (160, 48)] {
        let mut h = Harness::new(w, hh);
        let fx = h.press(f(5));
        assert_eq!(
            fx,
            vec![
                Effect::StatsTimer(true),
                Effect::ReadStats {
                    window: StatsWindow::Day,
                    by: GroupBy::Model
                }
            ]
        );
        assert!(h.screen().contains("reading the request log"));
        assert!(deliver(&mut h, &path, &fx).is_empty());
        let s = h.screen();
        insta::assert_snapshot!(format!("stats_{w}x{hh}"), s);
        assert!(s.contains("Stats · 24h · by model"), "{s}");
        assert!(s.contains("fast  3 req 0% err 1 cached  $0.000124"), "{s}");
        assert!(s.contains("local  1 req 100% err  $0"), "{s}");
        assert!(
            s.contains("total  4 req 25% err 1 cached  $0.000124"),
            "{s}"
        );
        assert!(
            !s.contains("smart  "),
            "three days ago is outside 24h:\n{s}"
        );
        assert!(s.contains("F5 live · F6 window · F7 group"), "{s}");
    }
}

#[tokio::test(start_paused = true)]
async fn window_and_grouping_keys_cycle_and_a_stale_read_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_file(dir.path());
    let mut h = Harness::new(160, 48);
    let first = h.press(f(5));
    deliver(&mut h, &path, &first);

    // F6: 7d; F7 while that read is under way asks again once it lands.
    let week = h.press(f(6));
    assert_eq!(
        week,
        vec![Effect::ReadStats {
            window: StatsWindow::Week,
            by: GroupBy::Model
        }]
    );
    assert!(h.press(f(7)).is_empty(), "one read at a time");
    let again = deliver(&mut h, &path, &week);
    assert_eq!(
        again,
        vec![Effect::ReadStats {
            window: StatsWindow::Week,
            by: GroupBy::Deployment
        }]
    );
    deliver(&mut h, &path, &again);
    let s = h.screen();
    assert!(s.contains("Stats · 7d · by deployment"), "{s}");
    assert!(s.contains("mock/smart-slow  1 req"), "{s}");
    assert!(s.contains("(cache)  1 req 0% err 1 cached"), "{s}");
    assert!(s.contains("rows count attempts"), "{s}");

    // Provider, then tag: the deployment's and the request's tags, the total once each.
    let fx = h.press(f(7));
    deliver(&mut h, &path, &fx);
    let fx = h.press(f(7));
    let fx = deliver(&mut h, &path, &fx);
    assert!(fx.is_empty());
    let s = h.screen();
    assert!(s.contains("Stats · 7d · by tag"), "{s}");
    assert!(s.contains("team-a  2 req"), "{s}");
    assert!(s.contains("prod  2 req"), "{s}");
    assert!(s.contains("(none)  2 req 50% err"), "{s}");
    assert!(s.contains("total  5 req 20% err 1 cached"), "{s}");
    insta::assert_snapshot!("stats_by_tag_160x48", s);

    // F5 back to live metrics; the timer stops and its late tick asks for nothing.
    assert_eq!(h.press(f(5)), vec![Effect::StatsTimer(false)]);
    assert!(h.screen().contains("Metrics"));
    assert!(h.act(Action::StatsDue).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_view_reads_again_on_its_timer_and_after_a_request_finishes() {
    let mut h = Harness::new(160, 48);
    let fx = h.press(f(5));
    let empty = |window, by| StatsRead {
        window,
        by,
        report: llmux::store::stats::summarize(
            std::io::empty(),
            None,
            by,
            &DeploymentFacts::default(),
        )
        .map_err(|e| e.to_string()),
    };
    assert_eq!(fx.len(), 2);
    h.act(Action::Stats(empty(StatsWindow::Day, GroupBy::Model)));
    assert!(h.screen().contains("no requests in the last 24h"));
    assert_eq!(h.act(Action::StatsDue).len(), 1);
    h.act(Action::Stats(empty(StatsWindow::Day, GroupBy::Model)));
    let done = RouteEvent {
        request_id: 9,
        group: "fast".into(),
        deployment: Some("mock/fast-steady".into()),
        attempt: 1,
        at_unix_ms: NOW,
        elapsed_ms: 5,
        kind: RouteEventKind::Done {
            usage: Default::default(),
            cost_usd: None,
            ttft_ms: None,
            total_ms: 5,
            finish_reason: None,
            cached: false,
        },
    };
    assert_eq!(
        h.act(Action::Route(done)),
        vec![Effect::ReadStats {
            window: StatsWindow::Day,
            by: GroupBy::Model
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn the_stats_view_shows_control_characters_escaped_as_the_chat_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let req = r#""event":"request","requested":"x","prompt_tokens":5,"tags":["\u001b]0;pwned\u0007\u202eevil"]"#;
    let done = r#""event":"done","usage":{"input":1,"output":1},"cost_usd":0.0001,"total_ms":5"#;
    let log = [
        line(1, "fast", None, HOUR, req),
        line(1, "fast", Some("mock/fast-steady"), HOUR, done),
    ];
    std::fs::write(&path, log.join("\n") + "\n").unwrap();
    let mut h = Harness::new(160, 48);
    for key in [5, 7, 7, 7] {
        let fx = h.press(f(key));
        deliver(&mut h, &path, &fx);
    }
    let s = h.screen();
    assert!(s.contains("Stats · 24h · by tag"), "{s}");
    assert!(
        s.contains(r"\x1b]0;pwned\x07\u{202e}evil  1 req"),
        "the tag shows escaped:\n{s}"
    );
}
