//! Memory stays bounded when an upstream sends far too much: a 50 MB JSON answer (declared
//! with `content-length`, or only ending at EOF) and a 10 MB SSE line are refused at their
//! limits, and the process's peak RSS grows by no more than [`MAX_GROWTH_KIB`].
//!
//! Every case runs on each [`Net`] (http, https through hyper, https through reqwest).
//!
//! The measurement runs in a process of its own (this test binary, re-run on the one ignored
//! test below), so the other tests running in parallel cannot move its high-water mark. Each
//! case resets the mark (`/proc/self/clear_refs`), runs one request to its end, and reads
//! `VmHWM` again. Linux only.

use std::process::Command;

use llmux::provider::ErrorClass;

use super::raw::{Raw, RawUpstream};
use crate::support;
use crate::upstream::{Net, Reply};

/// The bound on peak RSS growth for one refused answer.
const MAX_GROWTH_KIB: u64 = 64 * 1024;
/// The child's test, by its full name in this binary.
const CHILD_TEST: &str = "faults::memory::huge_answers_child";
/// Every line of the child's report starts with this.
const REPORT: &str = "peak-rss:";

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Resets the peak-RSS mark to the current RSS; returns the mark to measure from.
fn reset_peak() -> u64 {
    // "5" resets VmHWM (Linux 4.0+); if that is refused, the old mark is a safe baseline
    // only in a fresh process, which this is.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmHWM:")
}

struct Case {
    name: &'static str,
    stream: bool,
    raw: Raw,
    class: ErrorClass,
    message: &'static str,
}

fn cases() -> Vec<Case> {
    let json = |content_length| Raw::Big {
        content_type: "application/json",
        prefix: br#"{"choices":[{"index":0,"message":{"role":"assistant","content":""#.to_vec(),
        fill: 50 * 1000 * 1000,
        suffix: br#""}}]}"#.to_vec(),
        content_length,
    };
    vec![
        Case {
            name: "50 MB JSON answer with content-length",
            stream: false,
            raw: json(true),
            class: ErrorClass::Protocol,
            message: "over 16 MiB",
        },
        Case {
            name: "50 MB JSON answer ending at EOF",
            stream: false,
            raw: json(false),
            class: ErrorClass::Protocol,
            message: "over 16 MiB",
        },
        Case {
            name: "10 MB SSE line",
            stream: true,
            raw: Raw::Big {
                content_type: "text/event-stream",
                prefix: b"data: ".to_vec(),
                fill: 10 * 1024 * 1024,
                suffix: b"\n\n".to_vec(),
                content_length: false,
            },
            class: ErrorClass::Protocol,
            message: "SSE line longer than",
        },
    ]
}

async fn one_request(net: Net, url: &str, stream: bool) -> Result<String, (ErrorClass, String)> {
    let yaml = format!(
        "model_list:\n  - model_name: a\n    litellm_params: {{ model: openai/x, api_base: '{url}', api_key: sk-memory-test-key }}\nrouter_settings:\n  num_retries: 0\n"
    );
    let router = support::router_on(net, &yaml);
    let mut request = support::ask("q");
    request.stream = stream;
    match router.chat("a", request).finish().await {
        Ok(o) => Ok(o.text),
        Err(e) => Err((
            e.attempts
                .first()
                .and_then(|a| a.class)
                .expect("a failed attempt"),
            e.message,
        )),
    }
}

#[test]
#[ignore = "run by huge_answers_are_refused_with_bounded_memory, in a process of its own"]
fn huge_answers_child() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for net in Net::ALL {
        // Warm up: the HTTP client, the runtime's threads and buffers exist before measuring.
        for stream in [true, false] {
            let reply = if stream {
                Reply::openai_stream(&["warm"], Some((1, 1)))
            } else {
                Reply::openai_json("warm", Some((1, 1)))
            };
            let pieces = reply.chunks();
            let raw = if stream {
                Raw::sse(pieces)
            } else {
                Raw::json(&String::from_utf8(pieces.concat()).unwrap())
            };
            let up = RawUpstream::start_on(net, vec![raw]).await;
            assert_eq!(one_request(net, &up.url, stream).await.unwrap(), "warm");
        }
        for case in cases() {
            let up = RawUpstream::start_on(net, vec![case.raw.clone()]).await;
            let before = reset_peak();
            let result = one_request(net, &up.url, case.stream).await;
            let peak = status_kib("VmHWM:");
            let growth = peak.saturating_sub(before);
            let (class, message) = result.expect_err(case.name);
            assert_eq!(class, case.class, "{}: {message}", case.name);
            assert!(message.contains(case.message), "{}: {message}", case.name);
            println!(
                "{REPORT} {} over {}: refused ({}), peak RSS +{growth} KiB (bound {MAX_GROWTH_KIB} KiB), {} body bytes sent",
                case.name,
                net.label(),
                class.name(),
                up.body_bytes_written()
            );
            assert!(
                growth < MAX_GROWTH_KIB,
                "{}: peak RSS grew by {growth} KiB",
                case.name
            );
        }
        }
    });
}

#[test]
fn huge_answers_are_refused_with_bounded_memory() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The first line may follow the harness's "test ... " on the same line.
    let report: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.find(REPORT).map(|i| &l[i..]))
        .collect();
    for line in &report {
        println!("{line}");
    }
    assert!(
        out.status.success(),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report.len(), cases().len() * Net::ALL.len(), "{stdout}");
}
