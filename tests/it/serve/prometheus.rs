//! `/metrics` parsed as Prometheus text: well-formed, and counting exactly the traffic sent.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::{KEY, chat, chat_ok, get, header, master_key, one_group, post, start, streaming_chat};
use crate::upstream::{FakeUpstream, Reply};

/// Parses the exposition into `name{labels}` → value, checking the format as it goes: every
/// sample belongs to a family declared with HELP and TYPE, label values are quoted, values are
/// numbers.
pub(super) fn parse(text: &str) -> HashMap<String, f64> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            helped.insert(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap().to_string();
            let kind = parts.next().unwrap().to_string();
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind.as_str()),
                "{line}"
            );
            assert!(helped.contains(&name), "TYPE without HELP: {line}");
            assert!(
                types.insert(name, kind).is_none(),
                "family declared twice: {line}"
            );
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "unexpected line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(name.starts_with("llmux_"), "{line}");
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for pair in labels[1..labels.len() - 1].split("\",") {
                let (k, v) = pair.split_once('=').unwrap();
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(v.starts_with('"'), "{line}");
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample without TYPE: {line}");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "duplicate {line}"
        );
    }
    samples
}

#[tokio::test]
async fn metrics_count_the_traffic_sent() {
    // In arrival order: two plain, one streamed, one plain (Anthropic).
    let plain = Reply::openai_json("Hello", Some((12, 2)));
    let streamed = Reply::openai_stream(&["Hel", "lo"], Some((12, 2)));
    let up = FakeUpstream::start(vec![plain.clone(), plain.clone(), streamed, plain]).await;
    let yaml = one_group(&up.url, &master_key());
    let server = start(&yaml).await;
    for _ in 0..2 {
        chat_ok(&server, "fast").await;
    }
    let streaming = streaming_chat("quick", "hi");
    let r = post(&server, "/v1/chat/completions", &streaming, Some(KEY)).await;
    assert!(r.text().await.unwrap().ends_with("[DONE]\n\n"));
    let anthropic =
        json!({"model": "fast", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]});
    assert_eq!(
        post(&server, "/v1/messages", &anthropic, Some(KEY))
            .await
            .status(),
        200
    );
    assert_eq!(
        post(
            &server,
            "/v1/chat/completions",
            &chat("nope", "hi"),
            Some(KEY)
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        post(&server, "/v1/chat/completions", &chat("fast", "hi"), None)
            .await
            .status(),
        401
    );
    assert_eq!(
        post(
            &server,
            "/v1/chat/completions",
            &json!({"model": "fast"}),
            Some(KEY)
        )
        .await
        .status(),
        400
    );

    let r = get(&server, "/metrics", None).await;
    assert_eq!(r.status(), 200);
    assert!(
        header(&r, "content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = parse(&r.text().await.unwrap());
    let at = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no series {k}"));

    assert_eq!(
        at(
            r#"llmux_requests_total{api="openai",group="fast",deployment="dep-a",outcome="success"}"#
        ),
        3.0
    );
    assert_eq!(
        at(
            r#"llmux_requests_total{api="anthropic",group="fast",deployment="dep-a",outcome="success"}"#
        ),
        1.0
    );
    assert_eq!(
        at(r#"llmux_requests_total{api="openai",group="",deployment="",outcome="unknown_model"}"#),
        1.0
    );
    assert_eq!(
        at(r#"llmux_rejected_requests_total{reason="unauthorized"}"#),
        1.0
    );
    assert_eq!(
        at(r#"llmux_rejected_requests_total{reason="bad_request"}"#),
        1.0
    );
    assert_eq!(
        at(r#"llmux_request_duration_seconds_count{group="fast",deployment="dep-a"}"#),
        4.0
    );
    assert_eq!(
        at(r#"llmux_request_duration_seconds_bucket{group="fast",deployment="dep-a",le="+Inf"}"#),
        4.0
    );
    assert_eq!(
        at(r#"llmux_time_to_first_token_seconds_count{group="fast",deployment="dep-a"}"#),
        4.0
    );
    assert_eq!(
        at(r#"llmux_deployment_attempts_total{group="fast",deployment="dep-a",outcome="success"}"#),
        4.0
    );
    assert_eq!(
        at(r#"llmux_deployment_attempts_total{group="fast",deployment="dep-a",outcome="failure"}"#),
        0.0
    );
    assert_eq!(
        at(r#"llmux_deployment_failures_total{group="fast",deployment="dep-a",class="server"}"#),
        0.0
    );
    assert_eq!(
        at(r#"llmux_input_tokens_total{group="fast",deployment="dep-a"}"#),
        48.0
    );
    assert_eq!(
        at(r#"llmux_output_tokens_total{group="fast",deployment="dep-a"}"#),
        8.0
    );
    assert!(
        at(r#"llmux_cost_usd_total{group="fast",deployment="dep-a"}"#) > 0.0,
        "gpt-4o-mini has a price"
    );
    assert_eq!(at("llmux_in_flight_requests"), 0.0);
    assert_eq!(
        at(r#"llmux_deployment_in_flight{group="fast",deployment="dep-a"}"#),
        0.0
    );
    assert_eq!(
        at(r#"llmux_deployment_cooling{group="fast",deployment="dep-a"}"#),
        0.0
    );
    assert_eq!(
        at(r#"llmux_deployment_rpm_used{group="fast",deployment="dep-a"}"#),
        4.0
    );
    assert_eq!(
        at(r#"llmux_deployment_tpm_used{group="fast",deployment="dep-a"}"#),
        56.0
    );
    assert_eq!(
        at(r#"llmux_deployment_error_rate{group="fast",deployment="dep-a"}"#),
        0.0
    );
    assert!(m.contains_key(
        r#"llmux_deployment_latency_seconds{group="fast",deployment="dep-a",quantile="0.95"}"#
    ));

    // Buckets are cumulative.
    let mut last = 0.0;
    for (k, v) in m
        .iter()
        .filter(|(k, _)| k.starts_with("llmux_request_duration_seconds_bucket"))
    {
        assert!(*v <= 4.0, "{k}");
        last = f64::max(last, *v);
    }
    assert_eq!(last, 4.0);
    server.shutdown().await.unwrap();
}
