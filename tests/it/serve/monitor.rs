//! `/llmux/events` feeding the monitor: the events of a real request through a running server,
//! applied to the monitor's state and rendered into a TestBackend; reconnection after a
//! restart; and the reconnecting screen.

use std::time::Duration;

use futures::StreamExt;
use llmux::metrics::{AttemptSuccess, Metrics, Usd};
use llmux::monitor::client::{decode, feed_events, follow, open};
use llmux::monitor::{Link, MonitorState, Update, render};
use llmux::provider::{ErrorClass, Usage};
use llmux::router::{BudgetStatus, RouteEventKind, ScopeKind};
use llmux::secret::Secret;
use llmux::serve::{DeploymentHealth, Hello, MonitorSnapshot, ServeOptions};
use llmux::tui::theme::{ColorDepth, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

use super::{KEY, chat_ok, deployment, keyed, options, start, start_with};
use crate::upstream::{FakeUpstream, Reply};

/// A fixed wall-clock time for snapshots: 12:00:00 UTC.
const NOON_MS: u64 = 12 * 3600 * 1000;

/// Replaces what depends on the clock with fixed values, so the screen is reproducible.
fn normalize(update: Update) -> Update {
    match update {
        Update::Route(mut ev) => {
            ev.at_unix_ms = NOON_MS;
            ev.elapsed_ms = 0;
            match &mut ev.kind {
                RouteEventKind::FirstToken { ttft_ms } => *ttft_ms = 4,
                RouteEventKind::Done {
                    ttft_ms, total_ms, ..
                } => {
                    *ttft_ms = Some(4);
                    *total_ms = 9;
                }
                RouteEventKind::Retry { delay_ms } => *delay_ms = 0,
                _ => {}
            }
            Update::Route(ev)
        }
        Update::Snapshot(mut s) => {
            s.at_unix_ms = NOON_MS;
            s.uptime_s = 1;
            for d in &mut s.metrics.deployments {
                let fixed = |v: Option<Duration>, ms| v.map(|_| Duration::from_millis(ms));
                d.ttft_p50 = fixed(d.ttft_p50, 4);
                d.ttft_p95 = fixed(d.ttft_p95, 6);
                d.latency_p50 = fixed(d.latency_p50, 9);
                d.latency_p95 = fixed(d.latency_p95, 12);
                // A local answer may come in one burst (no rate) or not: fixed either way.
                d.tokens_per_s = (d.successes > 0).then_some(200.0);
                // Sparklines: whether something happened, all in the newest bucket (a
                // bucket boundary may fall between the request and the snapshot, and a
                // latency may round to 0 ms).
                let answered = d.successes > 0;
                let failed = d.error_spark.iter().any(|v| *v > 0);
                for (spark, any) in [
                    (&mut d.latency_spark, answered),
                    (&mut d.error_spark, failed),
                ] {
                    spark.iter_mut().for_each(|v| *v = 0);
                    if let Some(last) = spark.last_mut() {
                        *last = u64::from(any);
                    }
                }
            }
            for h in &mut s.deployments {
                h.cooling_ms = h.cooling_ms.map(|_| 5000);
            }
            for b in &mut s.budgets {
                b.resets_in = b.resets_in.map(|_| Duration::from_secs(3 * 3600));
            }
            Update::Snapshot(s)
        }
        other => other,
    }
}

fn screen(state: &MonitorState, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| {
            let theme = Theme::builtin_default(ColorDepth::Mono);
            render(state, &theme, f.area(), f.buffer_mut())
        })
        .unwrap();
    terminal
}

#[tokio::test]
async fn monitor_renders_the_events_of_a_request_through_the_server() {
    let bad = FakeUpstream::start(vec![Reply::status(500)]).await;
    let good = FakeUpstream::start(vec![Reply::openai_json("Hello", Some((12, 2)))]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n  fallbacks: [{{fast: [backup]}}]\ngeneral_settings:\n  master_key: {KEY}\nllmux:\n  budget: {{limit: 20, period: 30d}}\n",
        deployment("fast", "dep-a", &bad.url, ""),
        deployment("backup", "dep-b", &good.url, "      rpm: 100\n"),
    );
    let server = start(&yaml).await;
    let http = reqwest::Client::new();

    let unauthorized = open(&http, &server.url(), None).await;
    assert!(unauthorized.unwrap_err().to_string().contains("401"));

    let key = Secret::new(KEY);
    let response = open(&http, &server.url(), Some(&key)).await.unwrap();
    let events = feed_events(response);
    futures::pin_mut!(events);
    let mut state = MonitorState::new("http://llmux-under-test:4000");
    let mut next = async || {
        loop {
            let ev = events.next().await.unwrap().unwrap();
            if let Some(u) = decode(&ev) {
                return u;
            }
        }
    };
    let hello = next().await;
    assert!(matches!(&hello, Update::Hello(h) if h.groups == ["fast", "backup"]));
    state.apply(hello);

    chat_ok(&server, "fast").await;
    let mut done = false;
    loop {
        let u = normalize(next().await);
        let finished_snapshot = matches!(&u, Update::Snapshot(s)
            if s.metrics.deployment("dep-b").is_some_and(|d| d.successes == 1));
        if let Update::Route(ev) = &u {
            done |= matches!(ev.kind, RouteEventKind::Done { .. });
        }
        state.apply(u);
        if done && finished_snapshot {
            break;
        }
    }
    assert_eq!(state.link, Link::Live);
    // The budget came over the wire with the snapshot.
    let budget = &state.status.budgets[0];
    assert_eq!(
        (
            budget.label.as_str(),
            budget.limit.pico(),
            budget.period.as_str()
        ),
        ("llmux.budget", 20_000_000_000_000, "30d")
    );
    let texts: Vec<String> = state.log.events.iter().map(|e| e.describe()).collect();
    assert!(
        texts.iter().any(|t| t.contains("fallback fast → backup")),
        "{texts:?}"
    );
    insta::assert_snapshot!(screen(&state, 110, 18).backend());
    // Wide: the metrics pane and the routing log side by side.
    insta::assert_snapshot!("wide", screen(&state, 160, 16).backend());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_feed_client_reconnects_after_a_restart() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["x"], None)]).await;
    let yaml = format!("model_list:\n{}", deployment("fast", "dep-a", &up.url, ""));
    let server = start(&yaml).await;
    let addr = server.addr;
    let (tx, mut rx) = mpsc::channel(64);
    let feed = tokio::spawn(follow(server.url(), None, tx));
    let mut state = MonitorState::new(server.url());
    loop {
        let u = rx.recv().await.unwrap();
        let hello = matches!(u, Update::Hello(_));
        state.apply(u);
        if hello {
            break;
        }
    }
    server.shutdown().await.unwrap();
    loop {
        let u = rx.recv().await.unwrap();
        let lost = matches!(u, Update::Disconnected { .. });
        state.apply(u);
        if lost {
            break;
        }
    }
    assert!(matches!(state.link, Link::Reconnecting { .. }));
    let lost = &state.note.as_ref().unwrap().text;
    assert!(lost.starts_with("connection lost"), "{lost}");
    let again = start_with(
        &yaml,
        ServeOptions {
            bind: addr,
            ..options()
        },
    )
    .await;
    loop {
        let u = rx.recv().await.unwrap();
        let hello = matches!(u, Update::Hello(_));
        state.apply(u);
        if hello {
            break;
        }
    }
    assert_eq!(state.link, Link::Live);
    let note = state.note.as_ref().unwrap();
    assert!(note.text.starts_with("reconnected"), "{}", note.text);
    feed.abort();
    again.shutdown().await.unwrap();
}

#[test]
fn reconnecting_screen_with_a_cooling_deployment() {
    let mut state = MonitorState::new("http://10.0.0.7:4000");
    state.apply(Update::Hello(Hello {
        version: "0.1.0".into(),
        groups: vec!["fast".into()],
        deployments: vec!["fast-1".into(), "fast-2".into()],
    }));
    let metrics = {
        let m = Metrics::new();
        let t0 = std::time::Instant::now();
        m.seed_deployment("fast-1", "fast");
        m.seed_deployment("fast-2", "fast");
        m.attempt_started("fast-1", "fast", t0);
        m.attempt_failed(
            "fast-1",
            "fast",
            ErrorClass::Server,
            Duration::from_millis(120),
            t0,
        );
        m.attempt_started("fast-2", "fast", t0);
        let usage = Usage {
            input: 100,
            output: 50,
            ..Usage::default()
        };
        let success = AttemptSuccess {
            ttft: Some(Duration::from_millis(300)),
            total: Duration::from_millis(1300),
            usage,
            cost: Some(Usd::from_pico(45_000_000)),
        };
        m.attempt_succeeded("fast-2", "fast", &success, t0);
        m.snapshot(t0)
    };
    state.apply(Update::Snapshot(Box::new(MonitorSnapshot {
        at_unix_ms: NOON_MS,
        uptime_s: 42,
        in_flight: 3,
        metrics,
        deployments: vec![
            DeploymentHealth {
                id: "fast-1".into(),
                group: "fast".into(),
                cooling_ms: Some(12_400),
                cooldown_reason: Some("3 failures in a minute".into()),
                rpm_used: 7,
                tpm_used: 900,
                rpm_limit: Some(10),
                tpm_limit: None,
                unavailable: None,
                failures_last_minute: 3,
            },
            DeploymentHealth {
                id: "fast-2".into(),
                group: "fast".into(),
                cooling_ms: None,
                cooldown_reason: None,
                rpm_used: 1,
                tpm_used: 150,
                rpm_limit: None,
                tpm_limit: None,
                unavailable: None,
                failures_last_minute: 0,
            },
        ],
        budgets: vec![BudgetStatus {
            scope: ScopeKind::Provider("openai".into()),
            label: "openai".into(),
            limit: Usd::from_pico(50_000_000_000_000),
            spent: Usd::from_pico(41_000_000_000_000),
            period: "1d".into(),
            resets_in: Some(Duration::from_secs(3 * 3600)),
        }],
    })));
    state.apply(Update::Disconnected {
        error: "cannot connect".into(),
        at_unix_ms: NOON_MS + 1000,
    });
    state.apply(Update::Disconnected {
        error: "cannot connect".into(),
        at_unix_ms: NOON_MS + 2000,
    });
    insta::assert_snapshot!(screen(&state, 80, 24).backend());
}

/// The real binary in a terminal: it connects, shows the server live in the TUI's panes, and
/// quits on `q` with the terminal given back (it once panicked at start: no TLS provider).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_binary_shows_a_live_server_and_quits_on_q() {
    use crate::recovery::pty::{Pty, visible_text};
    let up = FakeUpstream::start(vec![Reply::openai_json("Hello", Some((12, 2)))]).await;
    let yaml = keyed(&[deployment("fast", "dep-a", &up.url, "")], "");
    let server = start(&yaml).await;
    let url = server.url();
    chat_ok(&server, "fast").await;
    let (end, screen) = tokio::task::spawn_blocking(move || {
        let mut pty = Pty::spawn(
            env!("CARGO_BIN_EXE_llmux"),
            &["monitor", "--url", &url],
            &[("LLMUX_MASTER_KEY", KEY), ("NO_COLOR", "1")],
            100,
            30,
        );
        let live = pty.wait_for(Duration::from_secs(20), |out| {
            let text = visible_text(out);
            text.contains("● live") && text.contains("dep-a") && text.contains("Routing log")
        });
        let screen = visible_text(&pty.output());
        assert!(live, "{screen}");
        pty.write(b"q");
        (pty.wait_end(Duration::from_secs(10)), screen)
    })
    .await
    .unwrap();
    assert_eq!(end.as_deref(), Some("exit 0"), "{screen}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_monitor_that_connects_late_is_given_the_recent_routing_first() {
    let up = FakeUpstream::start(vec![
        Reply::openai_json("one", Some((3, 1))),
        Reply::openai_json("two", Some((3, 1))),
    ])
    .await;
    let yaml = keyed(&[deployment("fast", "dep-a", &up.url, "")], "");
    let server = start(&yaml).await;
    // A request before anyone watches.
    chat_ok(&server, "fast").await;

    let http = reqwest::Client::new();
    let response = open(&http, &server.url(), Some(&Secret::new(KEY)))
        .await
        .unwrap();
    let events = feed_events(response);
    futures::pin_mut!(events);
    let mut updates = Vec::new();
    while updates.len() < 3 {
        let ev = events.next().await.unwrap().unwrap();
        updates.extend(decode(&ev));
    }
    let mut state = MonitorState::new(server.url());
    assert!(matches!(updates[0], Update::Hello(_)));
    let Update::Recent(recent) = &updates[1] else {
        panic!("hello, then the recent events: {updates:?}");
    };
    assert!(
        matches!(
            recent.first().map(|e| &e.kind),
            Some(RouteEventKind::Request { .. })
        ),
        "{recent:?}"
    );
    assert!(
        matches!(
            recent.last().map(|e| &e.kind),
            Some(RouteEventKind::Done { .. })
        ),
        "{recent:?}"
    );
    assert!(recent.iter().all(|e| e.request_id == recent[0].request_id));
    assert!(
        matches!(updates[2], Update::Snapshot(_)),
        "then the metrics"
    );
    let before = recent.len();
    for u in updates {
        state.apply(u);
    }
    assert_eq!(state.log.events.len(), before);
    let note = &state.note.as_ref().unwrap().text;
    assert!(
        note.ends_with(&format!("; {before} routing events before now")),
        "{note}"
    );

    // A request after: its events come live, once each, none of the first request's again.
    chat_ok(&server, "fast").await;
    loop {
        let ev = events.next().await.unwrap().unwrap();
        let Some(u) = decode(&ev) else { continue };
        let done = matches!(&u, Update::Route(e) if matches!(e.kind, RouteEventKind::Done { .. }));
        state.apply(u);
        if done {
            break;
        }
    }
    let ids: Vec<u64> = state.log.events.iter().map(|e| e.request_id).collect();
    let first = ids[0];
    assert_eq!(ids.iter().filter(|&&id| id == first).count(), before);
    assert_eq!(ids.len(), 2 * before, "{ids:?}");
    server.shutdown().await.unwrap();
}
