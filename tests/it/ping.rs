//! Health pings: each state against fake upstreams (200, 401, 404, 429, a stall, a refused
//! port), pings leaving the router's metrics and cooldowns alone, `serve`'s
//! `/health?ping=true` (shape, auth, no key in it) and `llmux check --ping` on the binary.

use std::time::Duration;

use llmux::router::PingState;
use serde_json::{Value, json};

use crate::serve::{KEY, get, options, start_with};
use crate::support;
use crate::upstream::{FakeUpstream, Net, Reply};

/// The key every deployment here sends; it must never come back out.
const SECRET: &str = support::TEST_KEY;
/// The ping deadline of the tests: long enough for a local answer, short for the stall.
const PING_TIMEOUT: Duration = Duration::from_millis(700);
/// How long the stalling upstream holds its answer (far past the deadline).
const STALL: Duration = Duration::from_secs(60);

/// The upstreams of the six states, kept alive for the test.
struct Upstreams {
    ok: FakeUpstream,
    auth: FakeUpstream,
    missing: FakeUpstream,
    limited: FakeUpstream,
    stall: FakeUpstream,
    refused: String,
}

async fn upstreams() -> Upstreams {
    // An upstream that echoes the key in its error, as some do.
    let echo = format!(r#"{{"error":{{"message":"Incorrect API key provided: {SECRET}"}}}}"#);
    let refused = support::refused_url(Net::HTTP);
    Upstreams {
        ok: FakeUpstream::start(vec![Reply::openai_stream(&["p"], Some((1, 1)))]).await,
        auth: FakeUpstream::start(vec![Reply::raw(401, "application/json", vec![echo])]).await,
        missing: FakeUpstream::start(vec![Reply::status(404)]).await,
        limited: FakeUpstream::start(vec![Reply::status(429).retry_after("30")]).await,
        stall: FakeUpstream::start(vec![
            Reply::openai_stream(&["late"], None).first_byte_after(STALL),
        ])
        .await,
        refused,
    }
}

fn yaml(u: &Upstreams, extra: &str) -> String {
    let dep = |id: &str, url: &str| support::deployment(&format!("g-{id}"), id, url, "");
    format!(
        "model_list:\n{}{}{}{}{}{}{extra}",
        dep("ok", &u.ok.url),
        dep("auth", &u.auth.url),
        dep("missing", &u.missing.url),
        dep("limited", &u.limited.url),
        dep("stall", &u.stall.url),
        dep("refused", &u.refused),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_state_is_told_apart_and_the_router_is_untouched() {
    let u = upstreams().await;
    let router = support::router(&yaml(&u, ""));
    let results = router.ping_all(PING_TIMEOUT).await;
    let states: Vec<(&str, PingState, Option<u16>)> = results
        .iter()
        .map(|r| (r.deployment.as_str(), r.state, r.status))
        .collect();
    assert_eq!(
        states,
        vec![
            ("ok", PingState::Reachable, None),
            ("auth", PingState::AuthFailed, Some(401)),
            ("missing", PingState::NotFound, Some(404)),
            ("limited", PingState::RateLimited, Some(429)),
            ("stall", PingState::Timeout, None),
            ("refused", PingState::Error, None),
        ]
    );
    assert!(results[0].error.is_none());
    assert!(
        results[5].error.as_deref().unwrap().contains("network"),
        "{:?}",
        results[5]
    );
    for r in &results {
        assert!(!format!("{r:?}").contains(SECRET), "{r:?}");
    }
    let sent = u.ok.bodies();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["max_tokens"], 1, "{}", sent[0]);
    assert_eq!(sent[0]["messages"].as_array().unwrap().len(), 1);
    assert_eq!(u.auth.calls(), 1, "one request each, no retries");
    assert_eq!(u.limited.calls(), 1);

    // Pings are not traffic: no attempt counted, nothing cooling.
    let metrics = router.metrics();
    assert!(
        metrics.deployments.iter().all(|d| d.requests == 0),
        "{:?}",
        metrics.deployments
    );
    assert!(
        router
            .deployments()
            .iter()
            .all(|d| d.health.cooling_for.is_none()),
        "a failed ping cools nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_health_ping_is_litellm_shaped_keyed_and_secret_free() {
    let u = upstreams().await;
    let server = start_with(
        &yaml(&u, &format!("general_settings:\n  master_key: {KEY}\n")),
        options(),
    )
    .await;
    assert_eq!(get(&server, "/health?ping=true", None).await.status(), 401);

    // Plain /health still reads the router's state and calls nobody.
    let plain: Value = get(&server, "/health", Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["healthy_count"], 6);
    assert_eq!(u.ok.calls() + u.auth.calls(), 0);

    let response = get(&server, "/health?ping=true&timeout=0.7", Some(KEY)).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("api_key"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["healthy_count"].clone(), v["unhealthy_count"].clone()),
        (json!(1), json!(5))
    );
    let healthy = &v["healthy_endpoints"][0];
    assert_eq!(healthy["id"], "ok");
    assert_eq!(healthy["model"], "openai/gpt-4o-mini");
    assert_eq!(healthy["api_base"], u.ok.url);
    assert!(healthy.get("error").is_none());
    let unhealthy = v["unhealthy_endpoints"].as_array().unwrap();
    let by_id = |id: &str| unhealthy.iter().find(|e| e["id"] == id).unwrap();
    assert_eq!(by_id("auth")["state"], "auth_failed");
    assert_eq!(by_id("auth")["status"], 401);
    assert!(
        by_id("auth")["error"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key")
    );
    assert_eq!(by_id("stall")["state"], "timeout");
    assert_eq!(by_id("refused")["state"], "error");

    let bad = get(&server, "/health?ping=true&timeout=0", Some(KEY)).await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_ping_prints_rows_json_and_exit_codes() {
    let u = upstreams().await;
    let home = tempfile::tempdir().unwrap();
    let all = home.path().join("all.yaml");
    std::fs::write(&all, yaml(&u, "")).unwrap();
    let good = home.path().join("good.yaml");
    std::fs::write(
        &good,
        format!("model_list:\n  - model_name: g\n    litellm_params: {{ model: openai/gpt-4o-mini, api_base: '{}', api_key: {SECRET} }}\n", u.ok.url),
    )
    .unwrap();
    let run = |cfg: &std::path::Path, extra: &[&str]| {
        let mut cmd = crate::support::llmux(home.path());
        cmd.arg("--config")
            .arg(cfg)
            .args(["check", "--ping", "--timeout", "0.7"])
            .args(extra);
        async move {
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap()
        }
    };
    let table = run(&all, &[]).await;
    let stdout = String::from_utf8_lossy(&table.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&table.stderr).into_owned();
    assert_eq!(table.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.starts_with("DEPLOYMENT"), "{stdout}");
    for (id, state) in [
        ("ok", "reachable"),
        ("auth", "auth failed"),
        ("missing", "not found"),
        ("limited", "rate limited"),
        ("stall", "timeout"),
        ("refused", "error"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{id} ")) && l.contains(state)),
            "{id} {state}: {stdout}"
        );
    }
    assert!(stdout.contains("1 of 6 deployments reachable"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));

    let json = run(&all, &["--json"]).await;
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (v["reachable"].clone(), v["unreachable"].clone()),
        (json!(1), json!(5))
    );
    assert_eq!(v["deployments"][1]["state"], "auth_failed");
    assert!(v["deployments"][0]["latency_ms"].is_u64());
    assert!(!String::from_utf8_lossy(&json.stdout).contains(SECRET));

    let ok = run(&good, &[]).await;
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
}
