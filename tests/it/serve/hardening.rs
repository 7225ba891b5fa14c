//! Smaller serve-side holes: a stream still running when the shutdown grace period ends is
//! cut with an in-band error (OpenAI and Anthropic), a 1M-character model name is cut in the
//! 404 and in the request log, a whitespace-only `master_key` is a config error, `monitor`
//! reads its key from a file.

use std::time::Duration;

use futures::StreamExt;
use llmux::config::load_str;
use llmux::router::{Router, RouterOptions};
use llmux::serve::{ServeOptions, spawn};
use serde_json::{Value, json};

use super::{chat, one_group, options, post, sse, start_with};
use crate::upstream::{FakeUpstream, Reply};

/// The guard on awaiting the server.
const GUARD: Duration = Duration::from_secs(30);

/// An upstream that sends its first token, then stalls for ten minutes.
fn stalling() -> Reply {
    let chunks = Reply::openai_stream(&["first", "late"], None).chunks();
    let mut texts: Vec<String> = chunks
        .into_iter()
        .map(|c| String::from_utf8(c).unwrap())
        .collect();
    // Everything up to the first token in one piece, then a long pause before the rest.
    let at = texts.iter().position(|t| t.contains("first")).unwrap();
    let head: String = texts.drain(..=at).collect();
    texts.insert(0, head);
    Reply::sse(texts).delay_each(Duration::from_secs(600))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_still_running_when_the_grace_period_ends_is_cut_with_an_in_band_error() {
    for anthropic in [false, true] {
        let up = FakeUpstream::start(vec![stalling()]).await;
        let server = start_with(
            &one_group(&up.url, ""),
            ServeOptions {
                shutdown_grace: Duration::from_millis(100),
                ..options()
            },
        )
        .await;
        let (path, body) = if anthropic {
            (
                "/v1/messages",
                json!({"model": "fast", "max_tokens": 16, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            )
        } else {
            let mut body = chat("fast", "hi");
            body["stream"] = json!(true);
            ("/v1/chat/completions", body)
        };
        let r = post(&server, path, &body, None).await;
        assert_eq!(r.status(), 200);
        let mut stream = r.bytes_stream();
        let mut text = String::from_utf8(stream.next().await.unwrap().unwrap().to_vec()).unwrap();
        assert!(text.contains("first"), "{text}");
        let shutdown = tokio::spawn(server.shutdown());
        let rest = tokio::time::timeout(GUARD, async {
            while let Some(chunk) = stream.next().await {
                text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
            }
        })
        .await;
        assert!(rest.is_ok(), "the stream did not end: {text}");
        let events = sse(&text);
        let (name, data) = events.last().unwrap();
        let last: Value = serde_json::from_str(data).unwrap();
        if anthropic {
            assert_eq!(name.as_deref(), Some("error"), "{text}");
        } else {
            assert!(!text.contains("[DONE]"), "{text}");
        }
        let message = last["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("shutting down"), "{text}");
        tokio::time::timeout(GUARD, shutdown)
            .await
            .expect("shutdown ended")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_character_model_name_is_cut_in_the_404_and_the_log() {
    let up = FakeUpstream::start(vec![Reply::openai_json("ok", Some((3, 1)))]).await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("requests.jsonl");
    let config = load_str(&one_group(&up.url, ""), None).unwrap();
    let router = Router::new(
        config,
        RouterOptions {
            request_log: Some(std::sync::Arc::new(
                llmux::store::RequestLog::open(&log_path).unwrap(),
            )),
            ..RouterOptions::default()
        },
    )
    .unwrap();
    let server = spawn(router.clone(), options()).await.unwrap();
    let name = "m".repeat(1_000_000);
    let r = post(&server, "/v1/chat/completions", &chat(&name, "hi"), None).await;
    assert_eq!(r.status(), 404);
    let body = r.text().await.unwrap();
    assert!(body.len() < 2_000, "{} bytes", body.len());
    assert!(body.contains("(1000000 characters)"), "{body}");
    server.shutdown().await.unwrap();
    router.sync_request_log();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.len() < 4_000, "{} bytes of log", log.len());
    assert!(log.contains("(1000000 characters)"), "{log}");
}

#[test]
fn a_whitespace_only_master_key_is_a_config_error() {
    for key in ["'   '", "''", "\"\\t\""] {
        let yaml = one_group(
            "http://127.0.0.1:9/v1",
            &format!("general_settings:\n  master_key: {key}\n"),
        );
        let err = load_str(&yaml, None).unwrap_err().to_string();
        assert!(
            err.contains("general_settings.master_key is empty or only whitespace"),
            "{key}: {err}"
        );
    }
}

/// `monitor --key-file`: the key comes from a file (not the command line, which `ps` shows);
/// the monitor, in a real pty, connects to a keyed server with it. An unreadable file is a
/// usage error before the terminal is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_takes_its_key_from_a_file() {
    use crate::recovery::pty::Pty;
    let up = FakeUpstream::start(vec![Reply::openai_json("ok", Some((3, 1)))]).await;
    let server = start_with(
        &one_group(
            &up.url,
            &format!("general_settings:\n  master_key: {}\n", super::KEY),
        ),
        options(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master-key");
    std::fs::write(&key_file, format!("{}\n", super::KEY)).unwrap();
    let url = server.url();
    let xdg = dir.path().to_str().unwrap().to_string();
    let key_path = key_file.to_str().unwrap().to_string();
    let target = url.clone();
    let pty = tokio::task::spawn_blocking(move || {
        let env = [("XDG_CONFIG_HOME", xdg.as_str()), ("LLMUX_MASTER_KEY", "")];
        let args = ["monitor", "--url", &target, "--key-file", &key_path];
        let mut pty = Pty::spawn(env!("CARGO_BIN_EXE_llmux"), &args, &env, 120, 30);
        let connected = pty.wait_for_text(GUARD, "connected to llmux");
        pty.write(b"q");
        (connected, pty.wait_end(GUARD), pty.output())
    });
    let (connected, end, output) = pty.await.unwrap();
    assert!(connected, "{}", crate::recovery::pty::visible_text(&output));
    assert!(end.is_some());

    let missing = dir.path().join("none");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_llmux"))
        .args(["monitor", "--url", &url, "--key-file"])
        .arg(&missing)
        .env_remove("LLMUX_MASTER_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read the master key from --key-file"),
        "{stderr}"
    );
    server.shutdown().await.unwrap();
}
