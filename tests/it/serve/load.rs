//! `llmux serve` under load, as a user runs it: the real binary as a child process (so its
//! file descriptors and RSS are its own), a flaky upstream in this test (one request in ten
//! fails: 500, 503, 429 with Retry-After, or a reset after a few tokens), a config with
//! retries, a fallback group, a master key and mid-stream continuation, and [`CLIENTS`]
//! streaming clients (OpenAI and Anthropic) for `LLMUX_LOAD_SECS` seconds (default 60). It is
//! `#[ignore]`d in a plain `cargo test`; scripts/test.sh (what CI runs) runs it.
//!
//! Every answer holds a marker unique to its request, so a lost, mixed or duplicated answer
//! shows. Each request must end in a complete stream carrying exactly its own answer, or in a
//! well-formed error: a JSON error in the called API's shape, or an in-band error event after
//! tokens started. No answer may arrive twice, upstream or at a client, and the server's
//! `/metrics` must count every request. The child's open fds and RSS, sampled through the
//! run, may not grow from the first [`WINDOW`] to the last beyond [`FD_SLACK`] and
//! [`RSS_SLACK_PCT`] / [`RSS_SLACK_KIB`]. The figures go to stderr (`-- --nocapture`).
//!
//! The load is paced to stay light on a busy 2-core machine: the upstream (`flaky`) streams
//! a word every 120 ms, clients think a few ms between requests.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{spawn_binary, sse};

mod flaky;

use flaky::{answer, start_flaky};

/// Concurrent streaming clients.
const CLIENTS: usize = 64;
/// Every this many clients, one speaks Anthropic's Messages API (the rest OpenAI's).
const ANTHROPIC_EVERY: usize = 4;
/// Seconds of load unless `LLMUX_LOAD_SECS` says otherwise.
const DEFAULT_SECS: u64 = 60;
const SECS_ENV: &str = "LLMUX_LOAD_SECS";
/// A client's pause between requests is 2 ms plus up to this many ms.
const THINK_SPREAD_MS: u64 = 8;
/// The longest a client waits for a Retry-After.
const MAX_CLIENT_BACKOFF: Duration = Duration::from_secs(2);
/// How often the child's fds and RSS are read.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// The stretch at the start and at the end whose samples are compared.
const WINDOW: Duration = Duration::from_secs(10);
/// Allowed growth of open fds (connections come and go with resets and retries).
const FD_SLACK: usize = 8;
/// Allowed RSS growth: this share of the first window's peak, or [`RSS_SLACK_KIB`] if more
/// (allocator noise).
const RSS_SLACK_PCT: u64 = 10;
const RSS_SLACK_KIB: u64 = 4 * 1024;
/// A request that takes longer than this is counted as lost.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const MASTER_KEY: &str = "sk-load-master";
/// How long the server may take to start listening.
const START_GUARD: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The server, as a child process.

fn config(up: &str) -> String {
    let dep = |group: &str, id: &str, path: &str| {
        format!(
            "  - model_name: {group}\n    litellm_params:\n      model: openai/{id}\n      api_base: {up}/{path}/v1\n      api_key: sk-load-upstream\n    model_info: {{ id: {id} }}\n"
        )
    };
    format!(
        "model_list:\n{}{}{}router_settings:\n  num_retries: 2\n  allowed_fails: 100\n  cooldown_time: 1\n  timeout: 30\n  stream_timeout: 10\n  fallbacks: [{{ main: [backup] }}]\ngeneral_settings:\n  master_key: {MASTER_KEY}\nllmux:\n  mid_stream_failover: continue\n",
        dep("main", "main-a", "a"),
        dep("main", "main-b", "b"),
        dep("backup", "backup-c", "c"),
    )
}

struct Server {
    child: tokio::process::Child,
    pid: u32,
    url: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

async fn start_server(dir: &std::path::Path, up: &str) -> Server {
    let cfg = dir.join("config.yaml");
    std::fs::write(&cfg, config(up)).unwrap();
    let (child, url, mut lines) = spawn_binary(&cfg, dir, None, START_GUARD).await;
    let pid = child.id().unwrap();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let keep = stderr.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            keep.lock().unwrap().push(line);
        }
    });
    Server {
        child,
        pid,
        url,
        stderr,
    }
}

/// Open fds and RSS (KiB) of a process.
fn usage_of(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    (fds, rss)
}

/// CPU seconds a process used (user + system).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at `) `.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // USER_HZ is 100 on every Linux this runs on.
    ticks / 100.0
}

// ---------------------------------------------------------------------------------------
// The clients.

/// How one request ended.
#[derive(Debug)]
enum End {
    /// The whole answer, exactly, then the end of the stream.
    Completed(String),
    /// An error status with a well-formed JSON error body (its message, and Retry-After).
    Status(u16, String, Option<u64>),
    /// A well-formed in-band error after the answer started (its text so far was our own).
    InBand,
    /// Anything else: a lost, truncated, mixed or malformed answer.
    Broken(String),
}

/// Whether `v` is an error in the API's shape.
fn error_shaped(v: &Value, anthropic: bool) -> bool {
    let e = &v["error"];
    let typed = e["type"].as_str().is_some_and(|t| !t.is_empty());
    let message = e["message"].as_str().is_some_and(|m| !m.is_empty());
    typed && message && (!anthropic || v["type"] == "error")
}

async fn one_request(http: &reqwest::Client, url: &str, marker: &str, anthropic: bool) -> End {
    let (path, body) = if anthropic {
        let b = json!({"model": "main", "max_tokens": 64, "stream": true,
                       "messages": [{"role": "user", "content": marker}]});
        ("/v1/messages", b)
    } else {
        let b = json!({"model": "main", "stream": true,
                       "messages": [{"role": "user", "content": marker}]});
        ("/v1/chat/completions", b)
    };
    let mut req = http.post(format!("{url}{path}")).json(&body);
    req = if anthropic {
        req.header("x-api-key", MASTER_KEY)
    } else {
        req.bearer_auth(MASTER_KEY)
    };
    let r = match req.send().await {
        Ok(r) => r,
        Err(e) => return End::Broken(format!("no response: {e}")),
    };
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = match r.text().await {
        Ok(t) => t,
        Err(e) => return End::Broken(format!("{status}: body broke off: {e}")),
    };
    if status != 200 {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if ctype.starts_with("application/json") && error_shaped(&v, anthropic) {
            let message = v["error"]["message"].as_str().unwrap_or("").to_string();
            return End::Status(status, message, retry_after);
        }
        return End::Broken(format!("{status} {ctype}: {text}"));
    }
    if !ctype.starts_with("text/event-stream") {
        return End::Broken(format!("200 {ctype}: {text}"));
    }
    let expected = answer(marker);
    let events = sse(&text);
    let mut got = String::new();
    for (i, (name, data)) in events.iter().enumerate() {
        let last = i + 1 == events.len();
        if anthropic {
            let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            match name.as_deref() {
                Some("content_block_delta") => {
                    got.push_str(v["delta"]["text"].as_str().unwrap_or(""))
                }
                Some("message_stop") if last => {
                    return if got == expected {
                        End::Completed(got)
                    } else {
                        End::Broken(format!("answer {got:?}, wanted {expected:?}"))
                    };
                }
                Some("error") if last && error_shaped(&v, true) => {
                    return if expected.starts_with(&got) {
                        End::InBand
                    } else {
                        End::Broken(format!("in-band error after foreign text {got:?}"))
                    };
                }
                _ => {}
            }
        } else {
            if data == "[DONE]" {
                return if last && got == expected {
                    End::Completed(got)
                } else {
                    End::Broken(format!("answer {got:?}, wanted {expected:?}: {text}"))
                };
            }
            let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            if v.get("error").is_some() {
                return if last && error_shaped(&v, false) && expected.starts_with(&got) {
                    End::InBand
                } else {
                    End::Broken(format!("bad in-band error: {text}"))
                };
            }
            got.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
        }
    }
    End::Broken(format!("the stream ended without an end: {text}"))
}

#[derive(Default)]
struct Tally {
    requests: u64,
    completed: u64,
    in_band: u64,
    by_status: BTreeMap<u16, u64>,
    /// The first error message of each status.
    messages: BTreeMap<u16, String>,
    broken: Vec<String>,
    duplicates: Vec<String>,
    seen: HashSet<String>,
}

fn record(t: &mut Tally, marker: String, end: End) {
    t.requests += 1;
    match end {
        End::Completed(text) => {
            t.completed += 1;
            if !t.seen.insert(text) {
                t.duplicates.push(marker);
            }
        }
        End::Status(s, message, _) => {
            *t.by_status.entry(s).or_default() += 1;
            t.messages.entry(s).or_insert(message);
        }
        End::InBand => t.in_band += 1,
        End::Broken(why) => t.broken.push(format!("{marker}: {why}")),
    }
}

async fn client(
    i: usize,
    http: reqwest::Client,
    url: String,
    next: Arc<AtomicU64>,
    tally: Arc<Mutex<Tally>>,
    until: Instant,
) {
    let anthropic = i % ANTHROPIC_EVERY == ANTHROPIC_EVERY - 1;
    while Instant::now() < until {
        let id = next.fetch_add(1, Ordering::Relaxed);
        let marker = format!("m{id:06}");
        let end = one_request(&http, &url, &marker, anthropic).await;
        // As SDKs do, wait what Retry-After asks (capped) before the next request.
        let wait = match &end {
            End::Status(_, _, Some(secs)) => Duration::from_secs(*secs).min(MAX_CLIENT_BACKOFF),
            _ => Duration::from_millis(2 + id % THINK_SPREAD_MS),
        };
        record(&mut tally.lock().unwrap(), marker, end);
        tokio::time::sleep(wait).await;
    }
}

/// The sum of a counter's samples in Prometheus text, over lines matching `filter`.
fn prometheus_sum(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn peak<T: Copy + Ord>(
    samples: &[(Duration, usize, u64)],
    f: impl Fn(&(Duration, usize, u64)) -> T,
    keep: impl Fn(Duration) -> bool,
) -> T {
    samples.iter().filter(|s| keep(s.0)).map(f).max().unwrap()
}

// A minute of load is not for every `cargo test` while iterating: scripts/test.sh (CI) runs it
// with `--ignored`, and `cargo test --test it serve::load -- --ignored` runs it by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute of load: scripts/test.sh runs it (cargo test --test it serve::load -- --ignored)"]
async fn serve_under_load_loses_nothing_and_does_not_grow() {
    let secs: u64 = std::env::var(SECS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    let run = Duration::from_secs(secs);
    // Short runs (by hand) compare thirds instead of 10 s windows.
    let window = WINDOW.min(run / 3);
    let dir = tempfile::tempdir().unwrap();
    let (up, flaky) = start_flaky().await;
    let mut server = start_server(dir.path(), &up).await;
    // No Router in this process installs the TLS provider reqwest needs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();

    let started = Instant::now();
    let until = started + run;
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                i,
                http.clone(),
                server.url.clone(),
                next.clone(),
                tally.clone(),
                until,
            ))
        })
        .collect();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    while Instant::now() < until {
        tick.tick().await;
        let (fds, rss) = usage_of(server.pid);
        samples.push((started.elapsed(), fds, rss));
    }
    for c in clients {
        c.await.unwrap();
    }
    let elapsed = started.elapsed();
    let cpu = cpu_secs(server.pid);
    let own_cpu = cpu_secs(std::process::id());
    let metrics = http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = prometheus_sum(&metrics, "llmux_requests_total", "");
    let cancelled = prometheus_sum(&metrics, "llmux_requests_total", "outcome=\"cancelled\"");
    server.child.kill().await.unwrap();

    let t = tally.lock().unwrap();
    let first = |d: Duration| d <= window;
    let last = |d: Duration| d >= run.saturating_sub(window);
    let fd_first = peak(&samples, |s| s.1, first);
    let fd_last = peak(&samples, |s| s.1, last);
    let rss_first = peak(&samples, |s| s.2, first);
    let rss_last = peak(&samples, |s| s.2, last);
    let upstream_dups: Vec<String> = flaky
        .answered
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(m, n)| format!("{m} x{n}"))
        .collect();
    eprintln!(
        "load: {CLIENTS} clients, {:.1} s: {} requests ({:.0}/s), {} completed, {} in-band errors, error statuses {:?}, {} broken, {} duplicated",
        elapsed.as_secs_f64(),
        t.requests,
        t.requests as f64 / elapsed.as_secs_f64(),
        t.completed,
        t.in_band,
        t.by_status,
        t.broken.len(),
        t.duplicates.len(),
    );
    eprintln!("load: first error message by status: {:#?}", t.messages);
    eprintln!(
        "load: upstream {} calls, faults {:?}, {} continuations",
        flaky.calls.load(Ordering::Relaxed),
        flaky.faults.lock().unwrap(),
        flaky.continuations.load(Ordering::Relaxed),
    );
    eprintln!(
        "load: llmux fds peak first/last {window:?}: {fd_first} / {fd_last}; RSS peak {rss_first} / {rss_last} KiB; CPU {cpu:.1} s ({:.0} µs per request); this test process (clients, upstream, other tests) {own_cpu:.1} s",
        cpu * 1e6 / t.requests.max(1) as f64,
    );

    // The trajectory, one peak per 10 s, to tell a plateau from a slope.
    let per_window: Vec<String> = samples
        .chunk_by(|a, b| a.0.as_secs() / WINDOW.as_secs() == b.0.as_secs() / WINDOW.as_secs())
        .map(|w| {
            let fds = w.iter().map(|s| s.1).max().unwrap();
            let rss = w.iter().map(|s| s.2).max().unwrap();
            format!("{fds}/{rss}")
        })
        .collect();
    eprintln!("load: fds/RSS KiB peak per 10 s: {}", per_window.join(" "));

    let log = server.stderr.lock().unwrap().join("\n");
    assert!(
        t.broken.is_empty(),
        "{} requests were lost or broken, e.g. {:#?}\nllmux stderr:\n{log}",
        t.broken.len(),
        &t.broken[..t.broken.len().min(5)]
    );
    assert!(
        t.duplicates.is_empty(),
        "answered twice: {:?}",
        t.duplicates
    );
    assert!(
        upstream_dups.is_empty(),
        "streamed twice upstream: {upstream_dups:?}"
    );
    assert_eq!(
        t.completed + t.in_band + t.by_status.values().sum::<u64>(),
        t.requests
    );
    assert!(
        t.completed * 2 > t.requests,
        "retries and the fallback should answer most requests: {} of {}",
        t.completed,
        t.requests
    );
    assert_eq!(counted as u64, t.requests, "/metrics counts every request");
    assert_eq!(cancelled, 0.0, "no request was dropped by the server");
    assert!(
        fd_last <= fd_first + FD_SLACK,
        "open fds grew from {fd_first} to {fd_last}"
    );
    let rss_slack = (rss_first * RSS_SLACK_PCT / 100).max(RSS_SLACK_KIB);
    assert!(
        rss_last <= rss_first + rss_slack,
        "RSS grew from {rss_first} to {rss_last} KiB (allowed +{rss_slack} KiB)"
    );
}
