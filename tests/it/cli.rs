//! The binary as scripts use it: `ask` (streaming, `--json`, `-v`, stdin, exit codes),
//! `check` and `models`, run as a child process with a private config and data dir.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::upstream::{FakeUpstream, Reply};

mod check;
mod roles;
mod startup;

use crate::support::llmux;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn ask_json_on_the_demo_prints_one_object_with_every_field() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = llmux(home.path());
    cmd.args(["ask", "--json", "-m", "local", "hello"]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("stdout is exactly one JSON object");
    for field in [
        "text",
        "model",
        "deployment",
        "attempts",
        "ttft_ms",
        "total_ms",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ] {
        assert!(v.get(field).is_some(), "missing {field} in {v}");
    }
    assert_eq!(v["model"], "local");
    assert_eq!(v["deployment"], "mock/local-small");
    assert_eq!(v["attempts"][0]["outcome"], "ok");
    assert_eq!(v["output_tokens"], 50);
    assert!(v["cost_usd"].as_f64().unwrap() > 0.0);
    let log = std::fs::read_to_string(home.path().join("data/requests.jsonl")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("\"event\":\"done\"")),
        "the request log has the outcome"
    );
}

#[tokio::test]
async fn ask_streams_from_stdin_and_verbose_prints_route_events() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = llmux(home.path());
    cmd.args(["ask", "-v", "-m", "local"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"a question from a pipe\n")
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        !text(&out.stdout).trim().is_empty(),
        "the answer is on stdout"
    );
    let err = text(&out.stderr);
    assert!(err.contains("attempt 1 → mock/local-small"), "{err}");
    assert!(err.contains("done by mock/local-small"), "{err}");
}

#[tokio::test]
async fn ask_exit_codes_tell_failure_from_bad_usage() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("failing.yaml");
    std::fs::write(
        &cfg,
        "model_list:\n  - model_name: broken\n    litellm_params: { model: mock/down, mock_error: 503, mock_error_rate: 1.0 }\nrouter_settings:\n  num_retries: 1\n",
    )
    .unwrap();

    let mut failing = llmux(home.path());
    failing.args([
        "--config",
        cfg.to_str().unwrap(),
        "ask",
        "-m",
        "broken",
        "hi",
    ]);
    let out = output(failing).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("mock/down") && err.contains("503"),
        "names each attempt's failure: {err}"
    );

    let mut unknown = llmux(home.path());
    unknown.args(["ask", "-m", "no-such-group", "hi"]);
    assert_eq!(output(unknown).await.status.code(), Some(2));

    let mut no_prompt = llmux(home.path());
    no_prompt.args(["ask"]);
    let out = output(no_prompt).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "an empty stdin is bad usage: {}",
        text(&out.stderr)
    );

    let mut json = llmux(home.path());
    json.args([
        "--config",
        cfg.to_str().unwrap(),
        "ask",
        "--json",
        "-m",
        "broken",
        "hi",
    ]);
    let out = output(json).await;
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(v["attempts"][0]["status"], 503);
}

#[tokio::test]
async fn check_reports_bad_config_at_line_and_column() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("bad.yaml");
    std::fs::write(
        &cfg,
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: nosuch/x\n",
    )
    .unwrap();
    let mut cmd = llmux(home.path());
    cmd.args(["check", "--config", cfg.to_str().unwrap()]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("{}:4:14: ", cfg.display())),
        "{err}"
    );

    assert!(
        !err.contains("errors in the config"),
        "one error, no count: {err}"
    );

    // Two bad values: both reported, then the count.
    let two = home.path().join("two.yaml");
    std::fs::write(
        &two,
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: nosuch/x\nrouter_settings:\n  num_retries: many\n",
    )
    .unwrap();
    let mut cmd = llmux(home.path());
    cmd.args(["check", "--config", two.to_str().unwrap()]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with(&format!("{}:4:14: ", two.display())),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{}:6:16: router_settings.num_retries",
            two.display()
        )),
        "{err}"
    );
    assert_eq!(lines[2], "2 errors in the config");

    let mut env = llmux(home.path());
    env.env("LLMUX_CONFIG", &cfg).args(["models"]);
    assert_eq!(
        output(env).await.status.code(),
        Some(2),
        "$LLMUX_CONFIG is honoured"
    );
}

#[tokio::test]
async fn check_and_models_describe_the_demo() {
    let home = tempfile::tempdir().unwrap();
    let mut check = llmux(home.path());
    check.arg("check");
    let out = output(check).await;
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    assert!(s.contains("demo"), "{s}");
    assert!(s.contains("fallbacks → local"), "{s}");
    let mut models = llmux(home.path());
    models.arg("models");
    let out = output(models).await;
    let s = text(&out.stdout);
    assert!(s.starts_with("GROUP"), "{s}");
    assert!(
        s.contains("mock/smart-slow") && s.contains("200000") && s.contains("10.00"),
        "{s}"
    );
}

#[tokio::test]
async fn api_keys_never_reach_output_or_the_request_log() {
    let secret = "sk-live-abcdef0123456789-never-print";
    // Upstreams echo keys back in their errors; llmux must scrub them.
    let echo = format!(r#"{{"error":{{"message":"Incorrect API key provided: {secret}"}}}}"#);
    let up = FakeUpstream::start(vec![Reply::raw(401, "application/json", vec![echo])]).await;
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("keys.yaml");
    std::fs::write(
        &cfg,
        format!("model_list:\n  - model_name: a\n    litellm_params: {{ model: openai/gpt-4o, api_base: '{}', api_key: {secret} }}\n", up.url),
    )
    .unwrap();
    for args in [
        vec!["ask", "-v", "-m", "a", "hi"],
        vec!["ask", "--json", "-m", "a", "hi"],
        vec!["check"],
        vec!["models"],
    ] {
        let mut cmd = llmux(home.path());
        cmd.arg("--config").arg(&cfg).args(&args);
        let out = output(cmd).await;
        assert!(!text(&out.stdout).contains(secret), "{args:?} stdout");
        assert!(!text(&out.stderr).contains(secret), "{args:?} stderr");
    }
    let log = std::fs::read_to_string(home.path().join("data/requests.jsonl")).unwrap();
    assert!(log.contains("auth"), "the failure is logged");
    assert!(!log.contains(secret));
    assert_eq!(
        up.headers()[0]["authorization"],
        format!("Bearer {secret}"),
        "the key does reach the upstream"
    );
}

#[tokio::test]
async fn stats_totals_equal_the_sum_of_the_request_log() {
    let home = tempfile::tempdir().unwrap();
    for model in ["local", "local", "fast"] {
        let mut cmd = llmux(home.path());
        cmd.args(["ask", "-m", model, "hi"]);
        assert_eq!(output(cmd).await.status.code(), Some(0));
    }
    // A torn last line, as a crash mid-write leaves it, is skipped with a warning.
    let log_path = home.path().join("data/requests.jsonl");
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .unwrap();
    log.write_all(b"{\"request_id\":9,\"gro").unwrap();
    drop(log);

    let (mut requests, mut tokens_out, mut cost) = (0u64, 0u64, 0f64);
    for line in std::fs::read_to_string(&log_path).unwrap().lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["event"] == "done" {
            requests += 1;
            tokens_out += v["usage"]["output"].as_u64().unwrap();
            cost += v["cost_usd"].as_f64().unwrap();
        }
    }
    for by in ["model", "deployment", "provider", "day", "tag"] {
        let mut cmd = llmux(home.path());
        cmd.args(["stats", "--json", "--by", by]);
        let out = output(cmd).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("skipped 1 unreadable line"));
        let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
        assert_eq!(v["total"]["tokens_out"], tokens_out, "--by {by}");
        assert!(
            (v["total"]["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12,
            "--by {by}"
        );
        if by == "model" || by == "day" || by == "tag" {
            assert_eq!(v["total"]["requests"], requests);
        }
        let rows_out: u64 = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["tokens_out"].as_u64().unwrap())
            .sum();
        assert_eq!(rows_out, tokens_out, "rows add up to the total (--by {by})");
    }
    let mut table = llmux(home.path());
    table.args(["stats", "--since", "1h"]);
    let out = output(table).await;
    let s = text(&out.stdout);
    assert!(
        s.starts_with("MODEL") && s.contains("local") && s.contains("total"),
        "{s}"
    );
    let mut by_tag = llmux(home.path());
    by_tag.args(["stats", "--by", "tag"]);
    let s = text(&output(by_tag).await.stdout).to_string();
    assert!(s.starts_with("TAG") && s.contains("(none)"), "{s}");
    assert!(s.contains("the total counts it once"), "{s}");
}

#[tokio::test]
async fn ask_tags_reach_the_request_log_and_json() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = llmux(home.path());
    cmd.args([
        "ask",
        "--json",
        "-m",
        "local",
        "--tag",
        "team-a",
        "--tag",
        "proj,team-a",
        "hi",
    ]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["team-a", "proj"]));
    assert_eq!(v["cached"], false);
    assert!(
        v.get("tool_calls").is_none(),
        "no tool calls, no field: {v}"
    );
    let log = std::fs::read_to_string(home.path().join("data/requests.jsonl")).unwrap();
    let request = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "request")
        .expect("a request event in the log");
    assert_eq!(request["tags"], serde_json::json!(["team-a", "proj"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_repeats_come_from_the_cache_unless_no_cache() {
    // Each `ask` is a process of its own, so the answers are shared through Redis.
    let redis = crate::shared_state::RedisServer::start().await;
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["cached?"], Some((3, 1)))]).await;
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("cache.yaml");
    std::fs::write(
        &cfg,
        format!(
            "model_list:\n  - model_name: g\n    litellm_params: {{ model: openai/gpt-4o-mini, api_base: '{}', api_key: sk-test }}\nlitellm_settings:\n  cache: true\n  cache_params: {{ type: redis, host: 127.0.0.1, port: {} }}\n",
            up.url, redis.port
        ),
    )
    .unwrap();
    let ask = |extra: &[&str]| {
        let mut cmd = llmux(home.path());
        cmd.arg("--config")
            .arg(&cfg)
            .args(["ask", "--json", "-m", "g"]);
        cmd.args(extra).arg("same question");
        cmd
    };
    let json = |out: &Output| -> serde_json::Value {
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        serde_json::from_str(text(&out.stdout).trim()).unwrap()
    };
    assert_eq!(json(&output(ask(&[])).await)["cached"], false);
    let repeat = json(&output(ask(&[])).await);
    assert_eq!(repeat["cached"], true, "{repeat}");
    assert_eq!(repeat["text"], "cached?");
    assert_eq!(up.calls(), 1, "the repeat made no upstream call");
    let fresh = json(&output(ask(&["--no-cache"])).await);
    assert_eq!(fresh["cached"], false, "{fresh}");
    assert_eq!(up.calls(), 2, "--no-cache went upstream");
}
