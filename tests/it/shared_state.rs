//! Shared state across router instances through a real `redis-server` (the Debian package;
//! `.ci/run` installs it), started by each test on a free port: an rpm limit held by two
//! instances together, cooldowns seen by the other instance, the fleet's cost ledger, Redis
//! unreachable at start, killed mid-traffic and restarted without a request failing, and a
//! Redis restarted empty refilled by the instances (the fleet limit still holds).

use std::process::Stdio;
use std::time::Duration;

use llmux::metrics::Usd;
use llmux::router::{
    ChatEvent, ChatOutcome, ChatStream, RouteError, RouteEvent, RouteEventKind, Router,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::broadcast;

use crate::support::{self, PRICED, deployment, router};
use crate::upstream::{FakeUpstream, Reply};

/// How long a test waits for an event before failing (never reached when things work).
const EVENT_WAIT: Duration = Duration::from_secs(15);
/// How long the fake upstream holds each answer in the Redis-outage test.
const IN_FLIGHT: Duration = Duration::from_millis(100);

/// A `redis-server` child on 127.0.0.1, killed when dropped (the cache tests use it too).
pub(crate) struct RedisServer {
    pub(crate) port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts on a free port.
    pub(crate) async fn start() -> RedisServer {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            l.local_addr().expect("local addr").port()
        };
        RedisServer::start_on(port).await
    }

    /// Starts on `port` and returns once it accepts connections (it says so on stdout).
    pub(crate) async fn start_on(port: u16) -> RedisServer {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "notice"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install the Debian package redis-server (.ci/run does)")
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(EVENT_WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Ready to accept connections") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "redis-server on port {port} did not start");
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        RedisServer { port, child }
    }

    pub(crate) async fn kill(mut self) {
        self.child.kill().await.expect("kill redis-server");
    }
}

/// A config of `deployments` (id, api_base, extra litellm_params lines) in group `g`, sharing
/// through Redis on `port`.
fn config(port: u16, deployments: &[(&str, &str, &str)]) -> String {
    let mut yaml = String::from("model_list:\n");
    for (id, url, extra) in deployments {
        yaml.push_str(&deployment("g", id, url, extra));
    }
    yaml.push_str(&format!(
        "router_settings:\n  redis_host: 127.0.0.1\n  redis_port: {port}\n"
    ));
    yaml
}

async fn ask(router: &Router) -> Result<ChatOutcome, RouteError> {
    router.chat("g", support::ask("hi")).finish().await
}

/// A request to `g` read until its first attempt is made, then left in flight.
async fn until_attempt(router: &Router) -> ChatStream {
    let mut stream = router.chat("g", support::ask("hi"));
    while let Some(ev) = stream.next_event().await {
        if matches!(&ev, ChatEvent::Route(e) if e.kind == RouteEventKind::Attempt) {
            break;
        }
    }
    stream
}

/// The next event `pick` accepts, waiting at most [`EVENT_WAIT`].
async fn next_event<T>(
    rx: &mut broadcast::Receiver<RouteEvent>,
    mut pick: impl FnMut(&RouteEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(EVENT_WAIT, async {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Some(t) = pick(&ev) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel: {e}"),
            }
        }
    })
    .await
    .expect("the awaited event never came")
}

/// The next shared-state event: (connected, message).
pub(crate) async fn next_shared(rx: &mut broadcast::Receiver<RouteEvent>) -> (bool, String) {
    next_event(rx, |ev| match &ev.kind {
        RouteEventKind::SharedState { connected, message } => {
            eprintln!("shared state event: {connected} {message}");
            Some((*connected, message.clone()))
        }
        _ => None,
    })
    .await
}

/// The router's first shared-state verdict (connected, message), however early it came.
async fn settled(router: &Router) -> (bool, String) {
    let mut rx = router.subscribe();
    let status = router.shared_status().expect("redis configured");
    match status.message {
        Some(message) => (status.connected, message),
        None => next_shared(&mut rx).await,
    }
}

/// Returns once the router shares through Redis.
pub(crate) async fn connected(router: &Router) {
    let (up, message) = settled(router).await;
    assert!(up, "expected to connect, got: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpm_limit_holds_across_instances() {
    let redis = RedisServer::start().await;
    let limited = FakeUpstream::start(vec![Reply::openai_stream(&["a"], Some((3, 1)))]).await;
    let other = FakeUpstream::start(vec![Reply::openai_stream(&["b"], Some((3, 1)))]).await;
    let yaml = config(
        redis.port,
        &[
            ("limited", &limited.url, "      rpm: 5\n      order: 1\n"),
            ("other", &other.url, "      order: 2\n"),
        ],
    );
    let (a, b) = (router(&yaml), router(&yaml));
    connected(&a).await;
    connected(&b).await;

    let mut answered_by = Vec::new();
    for i in 0..10 {
        let instance = if i % 2 == 0 { &a } else { &b };
        answered_by.push(ask(instance).await.unwrap().deployment);
    }
    // Alone, each instance would have sent all five of its requests to `limited`.
    assert_eq!(limited.calls(), 5, "answered by: {answered_by:?}");
    assert_eq!(other.calls(), 5);
    assert_eq!(
        answered_by.iter().filter(|d| *d == "limited").count(),
        5,
        "{answered_by:?}"
    );
    let seen = a.deployments();
    let view = &seen.iter().find(|d| d.id == "limited").unwrap().health;
    assert_eq!(
        view.requests_last_minute, 5,
        "the fleet's count, not this instance's 3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_set_by_one_instance_is_seen_by_the_other() {
    let redis = RedisServer::start().await;
    let flaky = FakeUpstream::start(vec![Reply::status(401)]).await;
    let steady = FakeUpstream::start(vec![Reply::openai_stream(&["ok"], Some((3, 1)))]).await;
    let yaml = config(
        redis.port,
        &[
            ("flaky", &flaky.url, "      order: 1\n"),
            ("steady", &steady.url, "      order: 2\n"),
        ],
    );
    let (a, b) = (router(&yaml), router(&yaml));
    connected(&a).await;
    connected(&b).await;
    let mut b_events = b.subscribe();

    let _ = ask(&a).await;
    assert_eq!(flaky.calls(), 1);
    let (secs, reason) = next_event(&mut b_events, |ev| match &ev.kind {
        RouteEventKind::Cooldown { secs, reason } if ev.deployment.as_deref() == Some("flaky") => {
            Some((*secs, reason.clone()))
        }
        _ => None,
    })
    .await;
    assert!(secs > 0.0 && secs <= 5.0, "{secs}");
    assert!(reason.contains("authentication failed"), "{reason}");
    assert!(reason.contains("another instance"), "{reason}");

    let outcome = ask(&b).await.unwrap();
    assert_eq!(outcome.deployment, "steady");
    assert_eq!(
        flaky.calls(),
        1,
        "B skipped the cooling deployment without calling it"
    );
    let seen = b.deployments();
    let view = &seen.iter().find(|d| d.id == "flaky").unwrap().health;
    assert!(view.cooling_for.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_ledger_adds_up_every_instance() {
    let redis = RedisServer::start().await;
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["x"], Some((100, 50)))]).await;
    let yaml = config(
        redis.port,
        &[(
            "priced",
            &up.url,
            "      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n",
        )],
    );
    let (a, b) = (router(&yaml), router(&yaml));
    connected(&a).await;
    connected(&b).await;
    for r in [&a, &a, &b] {
        ask(r).await.unwrap();
    }
    let mine_a = a.metrics().total_cost;
    let mine_b = b.metrics().total_cost;
    assert!(!mine_a.is_zero() && !mine_b.is_zero());
    // Each read comes after that instance's own queued writes: read B's first.
    b.shared_cost().await.expect("ledger readable");
    let fleet = a.shared_cost().await.expect("ledger readable");
    assert_eq!(fleet.total, mine_a + mine_b);
    assert_eq!(fleet.by_deployment.get("priced"), Some(&(mine_a + mine_b)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_never_fail_because_redis_did() {
    // Nothing listens yet: the router starts on local state and says so once.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // Each answer takes a moment, so Redis can die while requests are in flight.
    let slow = Reply::openai_stream(&["x"], Some((100, 50))).body_after(IN_FLIGHT);
    let up = FakeUpstream::start(vec![slow]).await;
    let yaml = config(
        port,
        &[(
            "priced",
            &up.url,
            "      rpm: 1000\n      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n",
        )],
    );
    let r = router(&yaml);
    let (up_at_start, message) = settled(&r).await;
    // Nothing can change until Redis starts below.
    let mut events = r.subscribe();
    assert!(!up_at_start, "{message}");
    assert!(message.contains("unreachable"), "{message}");
    ask(&r).await.unwrap();
    assert_eq!(r.shared_cost().await, None);

    let redis = RedisServer::start_on(port).await;
    let (up_now, message) = next_shared(&mut events).await;
    assert!(up_now, "{message}");
    ask(&r).await.unwrap();
    let ledger = r.shared_cost().await.unwrap().total;
    assert!(!ledger.is_zero());
    assert_eq!(
        ledger,
        r.metrics().total_cost,
        "the request made while Redis was away was pushed when it came"
    );
    let per_request = Usd::from_pico(ledger.pico() / 2);
    assert_eq!(per_request.times(2), ledger);

    // Killed mid-traffic: every request still succeeds, and the loss is said once.
    let mut in_flight = Vec::new();
    for _ in 0..3 {
        in_flight.push(until_attempt(&r).await);
    }
    redis.kill().await;
    for stream in in_flight {
        stream.finish().await.unwrap();
    }
    ask(&r).await.unwrap();
    let (lost_up, message) = next_shared(&mut events).await;
    assert!(!lost_up, "{message}");
    assert!(message.contains("lost Redis"), "{message}");
    assert!(!r.shared_status().unwrap().connected);

    // Restarted empty on the same port: the router reconnects and pushes the outage's counts.
    let _redis = RedisServer::start_on(port).await;
    let (back, message) = next_shared(&mut events).await;
    assert!(back, "{message}");
    assert!(message.contains("is back"), "{message}");
    let fleet = r.shared_cost().await.unwrap();
    assert_eq!(
        fleet.total,
        per_request.times(6),
        "the store came back empty: the router wrote back all it spent, not only the four \
         requests made while Redis was down"
    );
    // No other shared-state event came in between: one per change.
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(ev.kind, RouteEventKind::SharedState { .. }),
            "{ev:?}"
        );
    }
}

/// Waits for `router` to say Redis is back after it was lost.
pub(crate) async fn back(events: &mut broadcast::Receiver<RouteEvent>) -> String {
    loop {
        let (up, message) = next_shared(events).await;
        if up {
            assert!(message.contains("is back"), "{message}");
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_is_refilled_and_the_fleet_limit_holds() {
    let redis = RedisServer::start().await;
    let port = redis.port;
    // Each answer takes a moment, so Redis dies with requests in flight.
    let answer = Reply::openai_stream(&["x"], Some((100, 50))).body_after(IN_FLIGHT);
    let limited = FakeUpstream::start(vec![answer.clone()]).await;
    let other = FakeUpstream::start(vec![answer]).await;
    let flaky = FakeUpstream::start(vec![Reply::status(401)]).await;
    let deployment = |group: &str, id: &str, url: &str, extra: &str| {
        support::deployment(group, id, url, &format!("{PRICED}{extra}"))
    };
    let yaml = format!(
        "model_list:\n{}{}{}router_settings:\n  redis_host: 127.0.0.1\n  redis_port: {port}\n",
        deployment(
            "g",
            "limited",
            &limited.url,
            "      rpm: 6\n      order: 1\n"
        ),
        deployment("g", "other", &other.url, "      order: 2\n"),
        deployment("f", "flaky", &flaky.url, "      cooldown_time: 120\n"),
    );
    let (a, b) = (router(&yaml), router(&yaml));
    connected(&a).await;
    connected(&b).await;
    let (mut a_events, mut b_events) = (a.subscribe(), b.subscribe());

    for r in [&a, &b, &a, &b] {
        assert_eq!(ask(r).await.unwrap().deployment, "limited");
    }
    // A cooldown set before the restart, running well past it.
    let failed = a.chat("f", support::ask("hi")).finish().await;
    assert!(failed.is_err());
    // Two more to `limited` (six of six), in flight when Redis is killed.
    let mut in_flight = Vec::new();
    for r in [&a, &b] {
        in_flight.push(until_attempt(r).await);
    }
    redis.kill().await;
    for stream in in_flight {
        assert_eq!(stream.finish().await.unwrap().deployment, "limited");
    }
    assert_eq!(limited.calls(), 6);

    // Restarted empty: each instance notices the store lost its state and writes back all it
    // holds for the current windows.
    let _redis = RedisServer::start_on(port).await;
    let said = back(&mut a_events).await;
    assert!(said.contains("lost its state"), "{said}");
    back(&mut b_events).await;

    // Each instance alone has sent three of six: only the refilled fleet count stops them.
    for r in [&a, &b, &a, &b] {
        assert_eq!(ask(r).await.unwrap().deployment, "other");
    }
    assert_eq!(
        limited.calls(),
        6,
        "the fleet's rpm limit held across the restart"
    );

    // A new instance sees the fleet's state: the rpm count, the cooldown and the ledger.
    let c = router(&yaml);
    connected(&c).await;
    assert_eq!(ask(&c).await.unwrap().deployment, "other");
    assert_eq!(limited.calls(), 6);
    let seen = c.deployments();
    let flaky_view = &seen.iter().find(|d| d.id == "flaky").unwrap().health;
    assert!(
        flaky_view.cooling_for.is_some(),
        "the cooldown was written back"
    );
    let _ = c.chat("f", support::ask("hi")).finish().await;
    assert_eq!(flaky.calls(), 1, "C skipped the cooling deployment");
    a.shared_cost().await.expect("ledger readable");
    b.shared_cost().await.expect("ledger readable");
    let fleet = c.shared_cost().await.expect("ledger readable");
    assert_eq!(
        fleet.total,
        a.metrics().total_cost + b.metrics().total_cost + c.metrics().total_cost,
        "the cost ledger holds everything spent before the restart too"
    );
}
