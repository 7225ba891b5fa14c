//! Usage stats (`store::stats`, behind `llmux stats` and the TUI's stats view) against a
//! request log written by a real router over fake upstreams: the totals equal the sum of the
//! log under every grouping, tags split spend by request and deployment tags with the total
//! counting each request once, and cached answers count as cost-free requests with no
//! upstream tokens.

use std::collections::BTreeMap;
use std::path::Path;

use llmux::metrics::Usd;
use llmux::router::{Router, RouterOptions};
use llmux::store::RequestLog;
use llmux::store::stats::{
    CACHE_ROW, DeploymentFacts, GroupBy, StatsReport, UNTAGGED, read_log, summarize,
};

use crate::support::{self, PRICED};
use crate::upstream::{FakeUpstream, Reply};

/// One priced deployment `id` of `group` at `url` with `tags`.
fn deployment(group: &str, id: &str, url: &str, tags: &str) -> String {
    support::deployment(group, id, url, &format!("{PRICED}      tags: [{tags}]\n"))
}

async fn ask(router: &Router, group: &str, text: &str, tags: &[&str]) {
    let mut request = support::ask(text);
    request.tags = tags.iter().map(|t| t.to_string()).collect();
    support::run(router, group, request).await;
}

/// What the log holds, summed straight from its JSON lines.
#[derive(Debug, Default, PartialEq)]
struct Raw {
    requests: u64,
    failures: u64,
    cached: u64,
    tokens_out: u64,
    cost: Usd,
    attempts: u64,
}

fn raw_sums(path: &Path) -> Raw {
    let mut raw = Raw::default();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["event"].as_str().unwrap() {
            "done" if v["cached"] == true => {
                raw.requests += 1;
                raw.cached += 1;
                assert_eq!(v["cost_usd"].as_f64(), Some(0.0));
            }
            "done" => {
                raw.requests += 1;
                raw.tokens_out += v["usage"]["output"].as_u64().unwrap();
                let cost = v["cost_usd"].as_f64().unwrap();
                raw.cost += Usd::from_dollars_f64(cost).unwrap();
            }
            "failed" => {
                raw.requests += 1;
                raw.failures += 1;
            }
            "attempt" => raw.attempts += 1,
            _ => {}
        }
    }
    raw
}

fn rows(report: &StatsReport) -> BTreeMap<String, (u64, u64, u64)> {
    report
        .rows
        .iter()
        .map(|r| (r.key.clone(), (r.requests, r.failures, r.cached)))
        .collect()
}

#[tokio::test]
async fn totals_equal_the_sum_of_the_request_log_by_every_grouping_and_tag() {
    let ok = FakeUpstream::start(vec![Reply::openai_stream(&["fi", "ne"], Some((10, 5)))]).await;
    let down = FakeUpstream::start(vec![Reply::status(500)]).await;
    let yaml = format!(
        "model_list:\n{}{}{}router_settings:\n  num_retries: 0\nlitellm_settings:\n  cache: true\n",
        deployment("g", "dep-a", &ok.url, "team-a, prod"),
        deployment("h", "dep-b", &down.url, "team-b"),
        deployment("u", "dep-u", &ok.url, ""),
    );
    let cfg = support::config(&yaml);
    assert_eq!(cfg.deployments[0].tags, ["team-a", "prod"]);
    assert!(
        !cfg.warnings
            .iter()
            .any(|w| format!("{w:?}").contains("tags")),
        "tags are a known key: {:?}",
        cfg.warnings
    );
    let facts = DeploymentFacts::from_config(&cfg);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let options = RouterOptions {
        request_log: Some(std::sync::Arc::new(RequestLog::open(&log).unwrap())),
        ..RouterOptions::default()
    };
    let router = support::router_from(cfg, options);
    ask(&router, "g", "one", &["alice"]).await;
    ask(&router, "g", "two", &[]).await;
    ask(&router, "g", "one", &["alice"]).await; // the cached repeat
    ask(&router, "h", "three", &["bob"]).await;
    ask(&router, "h", "four", &[]).await;
    ask(&router, "u", "five", &[]).await;
    router.sync_request_log();
    assert_eq!(
        ok.calls(),
        3,
        "the repeat was answered from the cache:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );

    let raw = raw_sums(&log);
    assert_eq!((raw.requests, raw.failures, raw.cached), (6, 2, 1));
    for by in [
        GroupBy::Model,
        GroupBy::Deployment,
        GroupBy::Provider,
        GroupBy::Day,
        GroupBy::Tag,
    ] {
        let r = read_log(&log, None, by, &facts).unwrap();
        let t = &r.total;
        assert_eq!(t.tokens_out, raw.tokens_out, "{by:?}");
        assert_eq!(t.cost_usd, raw.cost, "{by:?}");
        assert_eq!(t.cached, raw.cached, "{by:?}");
        if by.attempt_level() {
            // Attempts, plus the cached answer that had none.
            assert_eq!(t.requests, raw.attempts + raw.cached, "{by:?}");
        } else {
            assert_eq!(
                (t.requests, t.failures),
                (raw.requests, raw.failures),
                "{by:?}"
            );
        }
        if by != GroupBy::Tag {
            // Every event is in exactly one row.
            let sum =
                |f: fn(&llmux::store::stats::StatsRow) -> u64| r.rows.iter().map(f).sum::<u64>();
            assert_eq!(sum(|r| r.requests), t.requests, "{by:?}");
            assert_eq!(sum(|r| r.tokens_out), t.tokens_out, "{by:?}");
            let cost: Usd = r.rows.iter().map(|r| r.cost_usd).sum();
            assert_eq!(cost, t.cost_usd, "{by:?}");
        }
    }

    // A request counts under each of its tags and its deployment's; the cached repeat under
    // the request's own only (no deployment answered it).
    let by_tag = read_log(&log, None, GroupBy::Tag, &facts).unwrap();
    let expected: BTreeMap<String, (u64, u64, u64)> = [
        (UNTAGGED, (1, 0, 0)),
        ("alice", (2, 0, 1)),
        ("bob", (1, 1, 0)),
        ("prod", (2, 0, 0)),
        ("team-a", (2, 0, 0)),
        ("team-b", (2, 2, 0)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(rows(&by_tag), expected);
    let row_requests: u64 = by_tag.rows.iter().map(|r| r.requests).sum();
    assert!(
        row_requests > by_tag.total.requests,
        "tags overlap; the total does not"
    );

    // The cached answer: a request at cost 0 with no tokens or latency of its own.
    let by_model = read_log(&log, None, GroupBy::Model, &facts).unwrap();
    let g = by_model.rows.iter().find(|r| r.key == "g").unwrap();
    assert_eq!((g.requests, g.cached, g.tokens_out), (3, 1, 10));
    let by_dep = read_log(&log, None, GroupBy::Deployment, &facts).unwrap();
    let cache = by_dep.rows.iter().find(|r| r.key == CACHE_ROW).unwrap();
    assert_eq!((cache.requests, cache.cached, cache.tokens_out), (1, 1, 0));
    assert_eq!(cache.latency_p50_ms, None);
    let by_provider = read_log(&log, None, GroupBy::Provider, &facts).unwrap();
    assert_eq!(
        rows(&by_provider).keys().collect::<Vec<_>>(),
        [CACHE_ROW, "openai"]
    );
}

#[test]
fn a_window_keeps_the_tags_of_a_request_that_began_before_it_and_skips_torn_lines() {
    let lines = [
        r#"{"request_id":1,"group":"g","attempt":0,"at_unix_ms":1000,"elapsed_ms":0,"event":"request","requested":"g","prompt_tokens":3,"tags":["late"]}"#,
        r#"{"request_id":1,"group":"g","deployment":"d","attempt":1,"at_unix_ms":1001,"elapsed_ms":1,"event":"attempt"}"#,
        r#"{"request_id":1,"group":"g","deployment":"d","attempt":1,"at_unix_ms":5000,"elapsed_ms":4000,"event":"done","usage":{"input":3,"output":7},"cost_usd":0.5,"total_ms":4000}"#,
        r#"{"request_id":2,"group":"g","attempt":0,"at_unix_ms":900,"elapsed_ms":0,"event":"request","requested":"g","prompt_tokens":3}"#,
        r#"{"request_id":2,"group":"g","deployment":"d","attempt":1,"at_unix_ms":950,"elapsed_ms":50,"event":"done","usage":{"input":3,"output":7},"total_ms":50}"#,
        r#"{"request_id":3,"gro"#,
    ];
    let log = lines.join("\n");
    let mut facts = DeploymentFacts::default();
    facts.add("d", "openai", &["dep-tag".to_string()]);
    let r = summarize(log.as_bytes(), Some(2000), GroupBy::Tag, &facts).unwrap();
    assert_eq!(r.skipped_lines, 1);
    assert_eq!(
        rows(&r).keys().collect::<Vec<_>>(),
        ["dep-tag", "late"],
        "request 2 ended before the window"
    );
    assert_eq!(r.total.requests, 1);
    assert_eq!(r.total.cost_usd.pico(), 500_000_000_000);
    assert_eq!(r.total.unpriced, 0);
}

#[test]
fn rows_by_deployment_time_the_answering_attempt_as_the_metrics_pane_does() {
    // Attempt 1 on `a` fails after 38 ms; attempt 2 on `b` starts at 39 ms, has its first
    // token 250 ms later and ends at 1,607 ms into the request.
    let lines = [
        r#"{"request_id":1,"group":"g","attempt":0,"at_unix_ms":1000,"elapsed_ms":0,"event":"request","requested":"g","prompt_tokens":3}"#,
        r#"{"request_id":1,"group":"g","deployment":"a","attempt":1,"at_unix_ms":1000,"elapsed_ms":0,"event":"attempt"}"#,
        r#"{"request_id":1,"group":"g","deployment":"a","attempt":1,"at_unix_ms":1038,"elapsed_ms":38,"event":"failure","class":"server","status":503,"message":"down","after_tokens":false}"#,
        r#"{"request_id":1,"group":"g","deployment":"b","attempt":2,"at_unix_ms":1039,"elapsed_ms":39,"event":"attempt"}"#,
        r#"{"request_id":1,"group":"g","deployment":"b","attempt":2,"at_unix_ms":1289,"elapsed_ms":289,"event":"first_token","ttft_ms":250}"#,
        r#"{"request_id":1,"group":"g","deployment":"b","attempt":2,"at_unix_ms":2607,"elapsed_ms":1607,"event":"done","usage":{"input":3,"output":7},"cost_usd":0.5,"ttft_ms":289,"total_ms":1607}"#,
    ];
    let log = lines.join("\n");
    let mut facts = DeploymentFacts::default();
    facts.add("a", "openai", &[]);
    facts.add("b", "openai", &[]);
    let by_deployment = summarize(log.as_bytes(), None, GroupBy::Deployment, &facts).unwrap();
    assert_eq!(by_deployment.skipped_lines, 0, "every line is an event");
    let b = by_deployment.rows.iter().find(|r| r.key == "b").unwrap();
    assert_eq!(b.ttft_p50_ms, Some(250), "the attempt's own first token");
    assert_eq!(
        b.latency_p50_ms,
        Some(1568),
        "1,607 - 39 ms: the attempt's own time"
    );
    // By model the request is timed whole, as the answer's header shows it.
    let by_model = summarize(log.as_bytes(), None, GroupBy::Model, &facts).unwrap();
    assert_eq!(
        by_model.rows[0].ttft_p50_ms,
        Some(288),
        "289 in a bucket of 2 digits"
    );
    assert_eq!(
        by_model.rows[0].latency_p50_ms,
        Some(1600),
        "1,607 in a bucket of 2 digits"
    );
}
