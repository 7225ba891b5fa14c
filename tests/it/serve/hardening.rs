//! Smaller serve-side holes: a stream still running when the shutdown grace period ends is
//! cut with an in-band error (OpenAI and Anthropic), a 1M-character model name is cut in the
//! 404 and in the request log, a whitespace-only `master_key` is a config error, `monitor`
//! reads its key from a file, a chunk size over the body cap is refused at once.

use std::time::Duration;

use futures::StreamExt;
use llmux::config::load_str;
use llmux::router::RouterOptions;
use llmux::serve::{ServeOptions, spawn};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{chat, one_group, options, post, sse, stalling, start_with, streaming_chat};
use crate::support::{config, router_from};
use crate::upstream::{FakeUpstream, Reply};

/// The guard on awaiting the server.
const GUARD: Duration = Duration::from_secs(30);

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
            let body = streaming_chat("fast", "hi");
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
    let router = router_from(
        config(&one_group(&up.url, "")),
        RouterOptions {
            request_log: Some(std::sync::Arc::new(
                llmux::store::RequestLog::open(&log_path).unwrap(),
            )),
            ..RouterOptions::default()
        },
    );
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

/// A chunked body whose first chunk-size line announces 1 GiB, and then nothing: 413 in the
/// called API's shape at once and the connection closed, on the chat routes and on the others
/// (embeddings). The body deadline is an hour, so a server that waited for the body would
/// fail this test at its guard rather than answer.
#[tokio::test]
async fn a_chunk_size_over_the_body_cap_is_refused_at_once() {
    let up = FakeUpstream::start(vec![Reply::openai_json("ok", Some((3, 1)))]).await;
    let server = start_with(
        &one_group(&up.url, ""),
        ServeOptions {
            max_body_bytes: 64 * 1024,
            body_read_timeout: Duration::from_secs(3600),
            ..options()
        },
    )
    .await;
    for (path, anthropic) in [
        ("/v1/chat/completions", false),
        ("/v1/messages", true),
        ("/v1/embeddings", false),
    ] {
        let (mut rd, mut wr) = TcpStream::connect(server.addr).await.unwrap().into_split();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n40000000\r\n"
        );
        wr.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(GUARD, rd.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "{path}: the announced chunk was waited for");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
        let v: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("65536-byte limit"), "{path}: {v}");
        assert_eq!(v["type"] == "error", anthropic, "{path}: {v}");
        drop(wr);
    }
    // A chunked body within the cap is read as before.
    let body = chat("fast", "hi").to_string();
    let (mut rd, mut wr) = TcpStream::connect(server.addr).await.unwrap().into_split();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    wr.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(GUARD, rd.read_to_end(&mut got))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(up.calls(), 1);
    server.shutdown().await.unwrap();
}
