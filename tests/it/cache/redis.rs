//! The Redis response cache against a real `redis-server` on a free port: two routers (as two
//! `serve` instances would be) sharing answers, the stored value and its expiry, namespaces
//! kept apart, and Redis away at start, coming back, and killed, without a request failing.

use std::time::Duration;

use llmux::router::{RouteEvent, RouteEventKind, RouterOptions};
use llmux::store::RequestLog;
use tokio::sync::broadcast;

use crate::shared_state::RedisServer;
use crate::support::{PRICED, ask, deployment, router, router_with, run, unused_addr};
use crate::upstream::{FakeUpstream, Reply};

/// How long a test waits for an event before failing (never reached when things work).
const EVENT_WAIT: Duration = Duration::from_secs(15);

/// Group `g` at `url`, caching in Redis on `port` with `params` added to `cache_params`.
fn redis_config(url: &str, port: u16, params: &str) -> String {
    format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\nlitellm_settings:\n  cache: true\n  cache_params:\n    type: redis\n    host: 127.0.0.1\n    port: {port}\n{params}",
        deployment("g", "dep-g", url, PRICED)
    )
}

/// The next cache announcement: (connected, message).
async fn next_cache_state(rx: &mut broadcast::Receiver<RouteEvent>) -> (bool, String) {
    tokio::time::timeout(EVENT_WAIT, async {
        loop {
            match rx.recv().await {
                Ok(RouteEvent {
                    kind: RouteEventKind::SharedState { connected, message },
                    ..
                }) if message.starts_with("response cache") => return (connected, message),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel: {e}"),
            }
        }
    })
    .await
    .expect("the cache never said how Redis is")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_share_answers_through_redis() {
    let redis = RedisServer::start().await;
    let up = FakeUpstream::start(vec![Reply::openai_stream(
        &["shared", " answer"],
        Some((5, 2)),
    )])
    .await;
    let yaml = redis_config(&up.url, redis.port, "    ttl: 60\n");
    let (a, b) = (router(&yaml), router(&yaml));

    let live = run(&a, "g", ask("hi")).await;
    assert!(!live.cached());
    let from_b = run(&b, "g", ask("hi")).await;
    assert!(from_b.cached(), "{:?}", from_b.kinds());
    assert_eq!(up.calls(), 1, "the other instance made no upstream call");
    assert_eq!(from_b.deltas.concat(), "shared answer");
    assert_eq!(from_b.outcome().usage, live.outcome().usage);

    // The value: JSON with the answer, set to expire with the ttl.
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("llmux:cache:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let value: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&value).unwrap();
    assert_eq!(value["text"], "shared answer");
    assert_eq!(value["finish_reason"], "stop");
    assert_eq!(value["usage"]["output"], 2);
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl_ms > 0 && ttl_ms <= 60_000, "{ttl_ms}");

    // Another namespace shares nothing.
    let other = router(&redis_config(
        &up.url,
        redis.port,
        "    namespace: team-b\n",
    ));
    assert!(!run(&other, "g", ask("hi")).await.cached());
    assert_eq!(up.calls(), 2);
    let theirs: Vec<String> = redis::cmd("KEYS")
        .arg("team-b:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_succeed_while_the_cache_redis_is_away() {
    let port = unused_addr().port();
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["ok"], Some((3, 1)))]).await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("requests.jsonl");
    let r = router_with(
        &redis_config(&up.url, port, ""),
        RouterOptions {
            request_log: Some(std::sync::Arc::new(RequestLog::open(&log_path).unwrap())),
            ..RouterOptions::default()
        },
    );

    // Nothing listens: every request is answered upstream, none fails. (The first one waits
    // for the first connection attempt, which has said so by then: see the log below.)
    for n in 1..=3 {
        let seen = run(&r, "g", ask("hi")).await;
        assert!(!seen.cached());
        assert_eq!(up.calls(), n);
    }
    let mut events = r.subscribe();

    // Redis comes: the cache finds it on its own and is used.
    let redis = RedisServer::start_on(port).await;
    let (up_now, message) = next_cache_state(&mut events).await;
    assert!(up_now, "{message}");
    assert!(message.contains("is back"), "{message}");
    assert!(!run(&r, "g", ask("hi")).await.cached());
    assert!(run(&r, "g", ask("hi")).await.cached());
    assert_eq!(up.calls(), 4);

    // Killed: a miss, still an answer, and the loss said once.
    redis.kill().await;
    let seen = run(&r, "g", ask("hi")).await;
    assert!(!seen.cached());
    assert_eq!(up.calls(), 5);
    let (up_now, message) = next_cache_state(&mut events).await;
    assert!(!up_now);
    assert!(message.contains("lost Redis"), "{message}");
    assert!(!run(&r, "g", ask("hi")).await.cached());

    r.sync_request_log();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let states: Vec<(bool, String)> = log
        .lines()
        .map(|l| serde_json::from_str::<RouteEvent>(l).unwrap())
        .filter_map(|e| match e.kind {
            RouteEventKind::SharedState { connected, message } => Some((connected, message)),
            _ => None,
        })
        .collect();
    let said: Vec<bool> = states.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        said,
        [false, true, false],
        "one line per change: {states:?}"
    );
    let failed = log
        .lines()
        .filter(|l| l.contains("\"event\":\"failed\""))
        .count();
    assert_eq!(failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_instances_share_answers_through_redis() {
    use crate::serve::{chat, header, post, start};
    let redis = RedisServer::start().await;
    let up = FakeUpstream::start(vec![Reply::openai_stream(
        &["one", " answer"],
        Some((5, 2)),
    )])
    .await;
    let yaml = redis_config(&up.url, redis.port, "    ttl: 60\n");
    let (a, b) = (start(&yaml).await, start(&yaml).await);

    let mut body = chat("g", "hi");
    body["stream"] = serde_json::json!(true);
    let live = post(&a, "/chat/completions", &body, None).await;
    assert_eq!(live.status(), 200);
    assert_eq!(header(&live, "x-llmux-cache"), None);
    assert!(live.text().await.unwrap().contains("answer"));

    // The other instance, asked plainly, answers from Redis without calling upstream.
    body["stream"] = serde_json::json!(false);
    let hit = post(&b, "/chat/completions", &body, None).await;
    assert_eq!(hit.status(), 200);
    assert_eq!(header(&hit, "x-llmux-cache").as_deref(), Some("hit"));
    assert_eq!(header(&hit, "x-llmux-deployment").as_deref(), Some("dep-g"));
    let answer: serde_json::Value = hit.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "one answer");
    assert_eq!(up.calls(), 1);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
