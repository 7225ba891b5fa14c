//! One set of numbers: a session of mixed outcomes (a plain answer, a retry, a fallback, a
//! stream cut mid-answer and continued, a cancel after some text, an unpriced answer) through
//! a real router on fake upstreams, driven through the app as the runner drives it, and every
//! view's totals compared: the answers' headers, the session total, the metrics pane's rows
//! and run total, all time, the request log read as `llmux stats` and the F5 view read it (by
//! model and by deployment), and `llmux stats --json` itself.

use crossterm::event::KeyCode;
use llmux::metrics::Usd;
use llmux::router::{ChatEvent, RouteEvent, Router, RouterOptions};
use llmux::store::request_log::RequestLog;
use llmux::store::session::{AnswerState, Entry};
use llmux::store::stats::{self, DeploymentFacts, GroupBy};
use llmux::tui::action::{Action, Effect};
use llmux::tui::fmt::Spend;
use llmux::tui::metrics::StatusView;
use llmux::tui::statsview::{self, StatsWindow};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::Harness;
use crate::support::PRICED as PRICE;
use crate::upstream::{FakeUpstream, Reply};

/// [`crate::support::deployment`] with a model the price table does not know: a deployment
/// without [`PRICE`] lines is unpriced.
fn deployment(group: &str, id: &str, url: &str, extra: &str) -> String {
    format!(
        "  - model_name: {group}\n    litellm_params:\n      model: openai/llmux-test-model\n      api_base: {url}\n      api_key: sk-test-secret-key\n{extra}    model_info: {{ id: {id} }}\n"
    )
}

/// Every route event published so far, into the app as the runner's feed delivers them.
fn feed(h: &mut Harness, sub: &mut broadcast::Receiver<RouteEvent>) {
    while let Ok(ev) = sub.try_recv() {
        h.act(Action::Route(ev));
    }
}

/// Sends `text` on `group` and runs the request the app starts to its end; with `cancel`,
/// presses Esc after the first text and drops the stream as the runner does.
async fn turn(h: &mut Harness, router: &Router, group: &str, text: &str, cancel: bool) {
    let gi = h.app.groups.iter().position(|g| g.name == group).unwrap();
    h.app.current = gi;
    let (tag, group, _) = h.send(text);
    let Some(Effect::StartChat { request, .. }) = h
        .effects
        .iter()
        .rev()
        .find(|e| matches!(e, Effect::StartChat { tag: t, .. } if *t == tag))
        .cloned()
    else {
        panic!("no request started")
    };
    let mut stream = router.chat(&group, request);
    while let Some(event) = stream.next_event().await {
        let text = matches!(event, ChatEvent::Delta(_));
        h.act(Action::Chat {
            tag,
            event,
            at: Instant::now(),
        });
        if text && cancel {
            let fx = h.press(KeyCode::Esc);
            assert!(fx.contains(&Effect::Cancel(tag)), "{fx:?}");
            break;
        }
    }
    drop(stream);
}

#[tokio::test]
async fn every_view_counts_the_same_cost_for_a_session_of_mixed_outcomes() {
    let ok = FakeUpstream::start(vec![Reply::openai_stream(
        &["Hello", " there"],
        Some((40, 10)),
    )])
    .await;
    let flaky = FakeUpstream::start(vec![
        Reply::status(503),
        Reply::openai_stream(&["Second", " try"], Some((40, 20))),
    ])
    .await;
    let down = FakeUpstream::start(vec![Reply::status(500)]).await;
    let cut = FakeUpstream::start(vec![
        Reply::openai_stream(&["The answer", " is", " forty"], None).reset_after(4),
    ])
    .await;
    let rescue = FakeUpstream::start(vec![Reply::openai_stream(&["-two."], Some((60, 3)))]).await;
    let slow = FakeUpstream::start(vec![
        Reply::openai_stream(&["Slowly", " and", " surely", " on"], Some((40, 30)))
            .delay_each(std::time::Duration::from_millis(500)),
    ])
    .await;
    let yaml = format!(
        "model_list:\n{}{}{}{}{}{}{}router_settings:\n  num_retries: 1\n  allowed_fails: 100\n  fallbacks: [{{down: [plain]}}, {{cut: [rescue]}}]\nllmux:\n  mid_stream_failover: continue\n",
        deployment("plain", "plain-1", &ok.url, PRICE),
        deployment("flaky", "flaky-1", &flaky.url, PRICE),
        deployment("down", "down-1", &down.url, PRICE),
        deployment("cut", "cut-1", &cut.url, PRICE),
        deployment("rescue", "rescue-1", &rescue.url, PRICE),
        deployment("slow", "slow-1", &slow.url, PRICE),
        deployment("free", "free-1", &ok.url, ""),
    );
    let cfg = crate::support::config(&yaml);
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("requests.jsonl");
    let router = crate::support::router_with(
        &yaml,
        RouterOptions {
            request_log: Some(std::sync::Arc::new(RequestLog::open(&log_path).unwrap())),
            ..RouterOptions::default()
        },
    );
    let mut sub = router.subscribe();
    let mut h = Harness::with_yaml(160, 48, &yaml);

    for (group, cancel) in [
        ("plain", false),
        ("flaky", false),
        ("down", false),
        ("cut", false),
        ("slow", true),
        ("free", false),
    ] {
        turn(
            &mut h,
            &router,
            group,
            &format!("question for {group}"),
            cancel,
        )
        .await;
        // What the runner's router feed brings (the cut attempt's spend of a cancel, too).
        router.sync_request_log();
        feed(&mut h, &mut sub);
    }

    // The answers: one each, in the states the session drove them to.
    let answers: Vec<_> = h
        .app
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Answer(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    let states: Vec<_> = answers.iter().map(|a| a.state).collect();
    use AnswerState::*;
    assert_eq!(states, [Done, Done, Done, Done, Cancelled, Done]);
    assert!(answers[1].badges.retried && !answers[1].badges.fell_back);
    assert!(answers[2].badges.fell_back);
    assert!(answers[3].badges.continued);
    let cancelled = &answers[4];
    assert!(
        cancelled.usage.is_some_and(|u| u.estimated && u.output > 0),
        "a cancelled answer's tokens are counted (estimated): {cancelled:?}"
    );
    assert!(
        cancelled.cost.is_some_and(|c| !c.is_zero()),
        "{cancelled:?}"
    );
    assert_eq!(answers[5].cost, None, "unpriced");

    // 1. The answers' headers, summed.
    let headers = Spend {
        known: answers.iter().filter_map(|a| a.cost).sum(),
        unpriced: answers.iter().any(|a| a.cost.is_none()),
    };
    let tokens_out: u64 = answers
        .iter()
        .filter_map(|a| a.usage)
        .map(|u| u.output)
        .sum();
    assert!(!headers.known.is_zero() && headers.unpriced);
    // 2. The session total.
    assert_eq!(h.app.session_cost(), headers, "session");
    // 3. The metrics pane: each deployment's cost, and the run's total.
    let status = StatusView::from_router(&router);
    let rows = Spend {
        known: status.rows.iter().filter_map(|r| r.cost).sum(),
        unpriced: status.rows.iter().any(|r| r.unpriced > 0),
    };
    assert_eq!(rows, headers, "metrics rows");
    let run = Spend {
        known: status.run_cost,
        unpriced: status.run_unpriced > 0,
    };
    assert_eq!(run, headers, "metrics total");
    let metrics = router.metrics();
    let metric_tokens: u64 = metrics.deployments.iter().map(|d| d.tokens_out).sum();
    assert_eq!(metric_tokens, tokens_out, "metrics tokens");
    // 4. All time: what the log held before this run (nothing) and the run.
    let earlier = stats::cost_before(&log_path, 0);
    let all_time = Spend {
        known: earlier.cost + status.run_cost,
        unpriced: earlier.unpriced + status.run_unpriced > 0,
    };
    assert_eq!(all_time, headers, "all time");
    // 5. The request log as `llmux stats` and the F5 view count it, by model and deployment.
    let facts = DeploymentFacts::from_config(&cfg);
    for by in [GroupBy::Model, GroupBy::Deployment] {
        let report = stats::read_log(&log_path, None, by, &facts).unwrap();
        let total = Spend {
            known: report.total.cost_usd,
            unpriced: report.total.unpriced > 0,
        };
        assert_eq!(total, headers, "stats by {}", by.name());
        assert_eq!(
            report.total.tokens_out,
            tokens_out,
            "tokens by {}",
            by.name()
        );
        let rows_sum: Usd = report.rows.iter().map(|r| r.cost_usd).sum();
        assert_eq!(rows_sum, headers.known, "stats rows by {}", by.name());
    }
    // 6. The F5 view on screen, and the status line, say the same figure.
    let fx = h.press(KeyCode::F(5));
    assert!(fx.iter().any(|e| matches!(e, Effect::ReadStats { .. })));
    let now_ms = llmux::store::session::unix_ms(std::time::SystemTime::now());
    let read = statsview::read(
        Some(&log_path),
        StatsWindow::Day,
        GroupBy::Model,
        &facts,
        now_ms + 1,
    );
    h.act(Action::Stats(read));
    let screen = h.screen();
    let figure = headers.to_string();
    assert!(figure.ends_with("+?"), "{figure}");
    assert!(
        screen.contains(&format!("total  6 req 0% err  {figure}")),
        "F5 total {figure}:\n{screen}"
    );
    assert!(screen.contains(&format!("session {figure}")), "{screen}");
    // 7. `llmux stats --json` reads the same log.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(&log_path, data.join("requests.jsonl")).unwrap();
    let llmux_stats = |args: &[&str]| {
        let out = crate::support::llmux(dir.path())
            .arg("stats")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: serde_json::Value =
        serde_json::from_str(&llmux_stats(&["--json", "--since", "30d"])).unwrap();
    let cli: Usd = serde_json::from_value(json["total"]["cost_usd"].clone()).unwrap();
    assert_eq!(cli, headers.known, "llmux stats: {json}");
    assert!(json["total"]["unpriced"].as_u64().unwrap() > 0);
    // 8. Its table writes the costs as the F5 view does: the total with `+?`, the group
    // with no price `$?` (not `$0.00`), each with how many requests had no price.
    let table = llmux_stats(&["--since", "30d", "--by", "model"]);
    let row = |key: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} row:\n{table}"))
            .to_string()
    };
    assert!(
        row("total").contains(&format!("{figure} (1 unpriced)")),
        "{table}"
    );
    assert!(row("free").contains("$? (1 unpriced)"), "{table}");
    let f5_free = screen
        .lines()
        .find(|l| l.contains("free ") && l.contains(" req "))
        .unwrap_or_else(|| panic!("no free row on F5:\n{screen}"));
    assert!(f5_free.contains("$?"), "{f5_free}");
}
