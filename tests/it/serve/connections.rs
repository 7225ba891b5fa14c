//! Idle connections cannot take serve offline: a bounded flood of silent and trickling sockets
//! on loopback, against a small connection cap (in-process) and against the real binary run
//! with few file descriptors (its cap derived from the limit). The connections that waited
//! longest for a request head are closed; a connection serving a request never is; health and
//! chat requests are answered throughout; `/metrics` counts the connections.
//!
//! Nothing sleeps: each test awaits the server closing a socket or answering, under a guard.

use std::time::Duration;

use llmux::serve::ServeOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{KEY, chat, chat_ok, get, master_key, one_group, options, start_with};
use crate::upstream::{FakeUpstream, Reply};

/// The guard on awaiting the server: one that never closes or answers fails here.
const GUARD: Duration = Duration::from_secs(30);
/// Longer than any test: a deadline that must not be what closes a socket.
const NEVER: Duration = Duration::from_secs(3600);

/// Opens `n` sockets; every other one sends the start of a request head, the rest nothing.
async fn flood(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        sockets.push(s);
    }
    sockets
}

/// Awaits the server closing `s` (end of stream or a reset); anything it sends is a failure.
async fn closed(s: &mut TcpStream, which: usize) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(GUARD, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!(
            "socket {which} got an answer: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(_) => panic!("socket {which} was still open after {GUARD:?}"),
    }
}

/// A metric's value from Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_past_the_cap_close_the_oldest_and_requests_are_still_served() {
    const CAP: usize = 16;
    const FLOOD: usize = 100;
    let up = FakeUpstream::start(vec![Reply::openai_json("ok", Some((3, 1)))]).await;
    let server = start_with(
        &one_group(&up.url, &master_key()),
        ServeOptions {
            max_connections: CAP,
            header_read_timeout: NEVER,
            pressure_header_read_timeout: NEVER,
            ..options()
        },
    )
    .await;
    // A monitor's event stream, answered before the flood: its connection is busy throughout.
    let mut monitor = get(&server, "/llmux/events", Some(KEY)).await;
    assert_eq!(monitor.status(), 200);
    assert!(monitor.chunk().await.unwrap().is_some());

    let mut sockets = flood(server.addr, FLOOD).await;
    // Each new socket past the cap closes the one that waited longest: all but the newest
    // CAP - 1 (the monitor holds a place) are closed, oldest first.
    for (i, s) in sockets.iter_mut().enumerate().take(FLOOD - (CAP - 1)) {
        closed(s, i).await;
    }
    // The monitor's stream goes on, and requests on new connections are answered.
    let more = tokio::time::timeout(GUARD, monitor.chunk()).await;
    assert!(matches!(more, Ok(Ok(Some(_)))), "{more:?}");
    chat_ok(&server, "fast").await;
    assert_eq!(get(&server, "/health/liveliness", None).await.status(), 200);
    let text = get(&server, "/metrics", None).await.text().await.unwrap();
    assert!(
        metric(&text, "llmux_open_connections") <= CAP as f64,
        "{text}"
    );
    assert_eq!(metric(&text, "llmux_max_connections"), CAP as f64);
    assert!(metric(&text, "llmux_idle_connections_closed_total") >= (FLOOD - CAP) as f64);
    drop(sockets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_pressure_the_head_deadline_is_short() {
    let up = FakeUpstream::start(vec![Reply::openai_json("ok", Some((3, 1)))]).await;
    let server = start_with(
        &one_group(&up.url, ""),
        ServeOptions {
            max_connections: 8,
            header_read_timeout: NEVER,
            pressure_header_read_timeout: Duration::from_millis(200),
            ..options()
        },
    )
    .await;
    // Seven of eight places taken: the server is under pressure and the first socket, silent
    // past the short deadline, is closed (with the normal deadline it would stay an hour).
    let mut sockets = flood(server.addr, 7).await;
    closed(&mut sockets[0], 0).await;
    let text = get(&server, "/metrics", None).await.text().await.unwrap();
    assert!(metric(&text, "llmux_idle_connections_closed_total") >= 1.0);
    let r = super::post(&server, "/v1/chat/completions", &chat("fast", "hi"), None).await;
    assert_eq!(r.status(), 200);
}

/// The real binary with a soft limit of 128 descriptors: 300 idle sockets would exhaust them
/// (accept failing, health and chat requests unanswered until the 30 s header deadline frees
/// some); the cap derived from the limit keeps it serving at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binary_with_few_descriptors_outlives_a_socket_flood() {
    const FDS: usize = 128;
    const FLOOD: usize = 300;
    /// Well under the 30 s header deadline that would free descriptors without a cap.
    const ANSWER_WITHIN: Duration = Duration::from_secs(10);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let up = FakeUpstream::start(vec![Reply::openai_json("ok", Some((3, 1)))]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, one_group(&up.url, "")).unwrap();
    let (mut child, url, _stderr) = super::spawn_binary(&cfg, dir.path(), Some(FDS), GUARD).await;
    let addr = url.trim_start_matches("http://").parse().unwrap();
    let mut sockets = flood(addr, FLOOD).await;
    let http = reqwest::Client::builder()
        .timeout(ANSWER_WITHIN)
        .build()
        .unwrap();
    let health = http
        .get(format!("{url}/health/liveliness"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let answer = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat("fast", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The default cap: (128 - 32) / 2 = 48; the oldest sockets were closed to make room.
    assert_eq!(metric(&text, "llmux_max_connections"), 48.0);
    assert!(metric(&text, "llmux_open_connections") <= 48.0, "{text}");
    closed(&mut sockets[0], 0).await;
    drop(sockets);
    child.kill().await.unwrap();
}
