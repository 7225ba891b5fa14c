//! `llmux ask --batch`: results in input order whatever order answers finish in, failed lines
//! recorded and the batch going on, the concurrency cap as the upstream sees it, and Ctrl+C on
//! the real binary (exit 130, every written line whole).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use llmux::cli::batch::{Defaults, run_batch};
use llmux::router::Router;
use serde_json::{Value, json};

use crate::support;
use crate::upstream::{FakeUpstream, Reply};

/// Held before each answer's body so requests overlap.
const ANSWER_STALL: Duration = Duration::from_millis(30);
/// Upper bound on the Ctrl+C test's child, only reached if cancelling is broken.
const CHILD_WAIT: Duration = Duration::from_secs(60);

/// An upstream that fails (400, not retried, no cooldown) every prompt containing "FAIL" and
/// answers the others with their own prompt echoed.
async fn echo_upstream() -> FakeUpstream {
    FakeUpstream::start_by_body(|body| {
        let prompt = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        if prompt.contains("FAIL") {
            Reply::status(400)
        } else {
            Reply::openai_stream(&["re: ", &prompt], Some((4, 2))).body_after(ANSWER_STALL)
        }
    })
    .await
}

fn router(url: &str) -> Router {
    let g = support::deployment("g", "g-1", url, support::PRICED);
    support::router(&format!(
        "model_list:\n{g}router_settings:\n  num_retries: 0\n"
    ))
}

fn defaults() -> Defaults {
    Defaults {
        model: "g".into(),
        ..Defaults::default()
    }
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_lines_with_a_tenth_failing_come_back_in_order() {
    let up = echo_upstream().await;
    let router = router(&up.url);
    let input: String = (1..=50)
        .map(|i| {
            if i % 10 == 3 {
                format!(
                    "{}\n",
                    json!({"prompt": format!("please FAIL {i}"), "id": i})
                )
            } else if i % 2 == 0 {
                format!("{}\n", json!(format!("prompt {i}")))
            } else {
                format!(
                    "{}\n",
                    json!({"prompt": format!("prompt {i}"), "id": format!("q{i}")})
                )
            }
        })
        .collect();
    let mut out = Vec::new();
    let summary = run_batch(
        &router,
        &input,
        &defaults(),
        4,
        &mut out,
        std::future::pending(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        (summary.total, summary.succeeded, summary.failed),
        (50, 45, 5)
    );
    assert_eq!(summary.exit_code(), 1);
    let results = lines(&out);
    assert_eq!(results.len(), 50);
    for (i, r) in (1..=50).zip(&results) {
        assert_eq!(r["line"], i, "in input order: {r}");
        if i % 10 == 3 {
            assert_eq!(r["ok"], false, "{r}");
            assert_eq!(r["id"], i);
            assert_eq!(r["error"]["kind"], "rejected", "{r}");
            assert_eq!(r["error"]["attempts"][0]["status"], 400, "{r}");
        } else {
            assert_eq!(r["ok"], true, "{r}");
            assert_eq!(r["text"], format!("re: prompt {i}"));
            assert_eq!(r["output_tokens"], 2);
            assert_eq!(r["cached"], false);
            assert!(r["cost_usd"].as_f64().unwrap() > 0.0);
            if i % 2 == 1 {
                assert_eq!(r["id"], format!("q{i}"));
            } else {
                assert!(r.get("id").is_none(), "no id given, none echoed: {r}");
            }
        }
    }
    assert_eq!(up.calls(), 50, "every line was sent once");
    assert!(up.max_in_flight() <= 4, "{} in flight", up.max_in_flight());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_never_sees_more_than_the_concurrency() {
    let up = echo_upstream().await;
    let router = router(&up.url);
    let input: String = (1..=12).map(|i| format!("\"p{i}\"\n")).collect();
    for n in [1, 3] {
        let mut out = Vec::new();
        let summary = run_batch(
            &router,
            &input,
            &defaults(),
            n,
            &mut out,
            std::future::pending(),
            false,
        )
        .await
        .unwrap();
        assert_eq!(summary.succeeded, 12);
        assert_eq!(lines(&out).len(), 12);
    }
    // Both runs are counted together: the cap of the wider one.
    let seen = up.max_in_flight();
    assert!((2..=3).contains(&seen), "{seen} requests in flight at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_are_failed_results_and_messages_lines_work() {
    let up = echo_upstream().await;
    let router = router(&up.url);
    let input = [
        r#""hello""#,
        "not json at all",
        r#"{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}], "id": "m1", "tags": ["x"]}"#,
        "   ",
        r#"{"prompt": "p", "model": "no-such-group"}"#,
        r#"{"id": "typo", "promt": "p"}"#,
    ]
    .join("\n");
    let mut out = Vec::new();
    let summary = run_batch(
        &router,
        &input,
        &Defaults {
            tags: vec!["cli".into()],
            ..defaults()
        },
        2,
        &mut out,
        std::future::pending(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        (summary.total, summary.succeeded, summary.failed),
        (5, 2, 3)
    );
    let r = lines(&out);
    let numbers: Vec<_> = r.iter().map(|v| v["line"].as_u64().unwrap()).collect();
    assert_eq!(numbers, vec![1, 2, 3, 5, 6], "the blank line 4 is skipped");
    assert_eq!(r[0]["text"], "re: hello");
    assert_eq!(r[1]["ok"], false);
    assert_eq!(r[1]["error"]["kind"], "invalid_line");
    assert!(
        r[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2")
    );
    assert_eq!(r[2]["text"], "re: hi");
    assert_eq!(r[2]["id"], "m1");
    assert_eq!(r[2]["tags"], json!(["cli", "x"]));
    assert_eq!(r[3]["error"]["kind"], "unknown_model", "{}", r[3]);
    assert_eq!(r[4]["id"], "typo", "the id of a bad line is echoed");
    assert!(r[4]["error"]["message"].as_str().unwrap().contains("promt"));
    let sent = up.bodies();
    assert_eq!(sent.len(), 2, "only the good lines went upstream");
    assert!(
        sent.iter()
            .any(|b| b["messages"][0] == json!({"role": "system", "content": "be brief"})),
        "{sent:?}"
    );
}

#[tokio::test]
async fn ctrl_c_writes_what_finished_and_exits_130() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("slow.yaml");
    // Line 1 answers at once; the others would take many minutes.
    std::fs::write(
        &cfg,
        "model_list:\n  - model_name: fast\n    litellm_params: { model: mock/fast, mock_tokens: 3, mock_tokens_per_s: 1000, mock_ttft_ms: 0 }\n  - model_name: slow\n    litellm_params: { model: mock/slow, mock_tokens: 5000, mock_tokens_per_s: 5, mock_ttft_ms: 0 }\n",
    )
    .unwrap();
    let input = home.path().join("prompts.jsonl");
    let mut text = String::from("{\"prompt\": \"quick\", \"model\": \"fast\"}\n");
    for i in 2..=10 {
        text.push_str(&format!("\"slow {i}\"\n"));
    }
    std::fs::write(&input, text).unwrap();
    let mut cmd = crate::support::llmux(home.path());
    cmd.arg("--config")
        .arg(&cfg)
        .args(["ask", "-m", "slow", "--concurrency", "3", "--batch"])
        .arg(&input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let out = child.wait_with_output().unwrap();
        (first, rest, out)
    });
    let (first, rest, out) = tokio::time::timeout(CHILD_WAIT, run)
        .await
        .expect("the batch stopped after Ctrl+C")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {stderr}");
    let v: Value = serde_json::from_str(first.trim_end()).unwrap();
    assert_eq!(
        (v["line"].clone(), v["ok"].clone()),
        (json!(1), json!(true))
    );
    for line in rest.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["line"].as_u64().unwrap() > 1);
    }
    assert!(stderr.contains("interrupted"), "{stderr}");
}
