//! The response cache (`litellm_settings.cache`): a repeat answered without an upstream call
//! and at no cost, streamed like the live answer and marked cached in the events and the
//! request log; what makes a miss (other parameters, `no_cache`, expiry, eviction); what is
//! never stored (failures, cancelled and stitched answers); `serve` streaming a cached answer;
//! and the config keys. `redis` shares the cache between two routers through a real
//! `redis-server` and survives it being away.

mod redis;

use std::time::Duration;

use llmux::cache::MAX_ENTRIES;
use llmux::config::{CacheBackend, Config, DEFAULT_CACHE_TTL, load_str, load_str_with_env};
use llmux::metrics::Usd;
use llmux::provider::Message;
use llmux::router::{ChatEvent, RouteEventKind, RouterOptions};
use llmux::store::RequestLog;
use serde_json::json;

use crate::support::{PRICED, Run, ask, deployment, router, router_with, run};
use crate::upstream::{FakeUpstream, Reply};

/// Group `g` (and `h`, same upstream) at `url`, no retries, with the cache on.
fn cached_config(url: &str, cache: &str) -> String {
    format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\nlitellm_settings:\n  cache: true\n{cache}",
        deployment("g", "dep-g", url, PRICED),
        deployment("h", "dep-h", url, PRICED),
    )
}

/// What the cache tests read off a run.
impl Run {
    fn kinds(&self) -> Vec<&'static str> {
        self.events
            .iter()
            .map(|e| match e.kind {
                RouteEventKind::Request { .. } => "request",
                RouteEventKind::Attempt => "attempt",
                RouteEventKind::Done { .. } => "done",
                RouteEventKind::Failed { .. } => "failed",
                _ => "other",
            })
            .collect()
    }

    fn cached(&self) -> bool {
        self.outcome().cached
    }
}

#[tokio::test]
async fn a_cached_repeat_makes_no_upstream_call_and_costs_nothing() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(
        &["Hel", "lo", " world"],
        Some((12, 3)),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("requests.jsonl");
    let r = router_with(
        &cached_config(&up.url, ""),
        RouterOptions {
            request_log: Some(std::sync::Arc::new(RequestLog::open(&log_path).unwrap())),
            ..RouterOptions::default()
        },
    );

    let live = run(&r, "g", ask("hi")).await;
    assert!(!live.cached());
    assert!(live.outcome().cost.is_some_and(|c| !c.is_zero()));
    assert_eq!(up.calls(), 1);

    let again = run(&r, "g", ask("hi")).await;
    assert_eq!(up.calls(), 1, "no upstream call for the repeat");
    let o = again.outcome();
    assert!(o.cached);
    assert_eq!(o.cost, Some(Usd::ZERO));
    assert_eq!(o.text, "Hello world");
    assert_eq!(again.deltas.concat(), "Hello world", "streamed as deltas");
    assert_eq!(
        o.usage,
        live.outcome().usage,
        "the original usage is reported"
    );
    assert_eq!(o.deployment, "dep-g", "who gave the original answer");
    assert_eq!(o.finish_reason.as_deref(), Some("stop"));
    assert!(o.attempts.is_empty());
    assert_eq!(again.kinds(), ["request", "done"]);
    let done = again.events.last().unwrap();
    assert_eq!(done.deployment, None, "no deployment was called");
    match &done.kind {
        RouteEventKind::Done {
            cached, cost_usd, ..
        } => {
            assert!(cached);
            assert_eq!(*cost_usd, Some(Usd::ZERO));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        done.describe().contains("response cache"),
        "{}",
        done.describe()
    );

    // The request log says so too.
    r.sync_request_log();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let dones: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "done")
        .collect();
    assert_eq!(dones.len(), 2);
    assert_eq!(
        dones[0].get("cached"),
        None,
        "a live answer carries no flag"
    );
    assert_eq!(dones[1]["cached"], json!(true));
    let stats = r.cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 1, 1));
}

#[tokio::test]
async fn a_cached_tool_call_is_replayed_whole() {
    let answer = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
        }}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}
    });
    let up = FakeUpstream::start(vec![Reply::json(answer)]).await;
    let router = router(&cached_config(&up.url, ""));
    let mut request = ask("weather in Paris?");
    request.stream = false;
    let first = run(&router, "g", request.clone()).await;
    let second = run(&router, "g", request).await;
    assert_eq!(up.calls(), 1, "the repeat was answered from the cache");
    assert!(second.cached());
    assert_eq!(second.outcome().tool_calls, first.outcome().tool_calls);
    assert_eq!(second.outcome().tool_calls[0].name, "get_weather");
    assert_eq!(
        second.outcome().tool_calls[0].arguments,
        r#"{"city":"Paris"}"#
    );
    assert_eq!(
        second.outcome().finish_reason.as_deref(),
        Some("tool_calls")
    );
}

#[tokio::test]
async fn other_parameters_groups_or_messages_miss_but_tags_do_not() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["ok"], Some((3, 1)))]).await;
    let r = router(&cached_config(&up.url, ""));
    run(&r, "g", ask("hi")).await;
    assert_eq!(up.calls(), 1);

    let mut hotter = ask("hi");
    hotter.temperature = Some(0.9);
    let mut shorter = ask("hi");
    shorter.max_tokens = Some(5);
    let mut longer_chat = ask("hi");
    longer_chat.messages.insert(0, Message::system("be brief"));
    for (model, request) in [
        ("g", hotter),
        ("g", shorter),
        ("g", longer_chat),
        ("g", ask("hi!")),
        ("h", ask("hi")),
    ] {
        let calls = up.calls();
        let seen = run(&r, model, request.clone()).await;
        assert!(!seen.cached(), "{model} {request:?}");
        assert_eq!(up.calls(), calls + 1, "{model} {request:?}");
    }

    let mut tagged = ask("hi");
    tagged.tags = vec!["team-a".into()];
    let calls = up.calls();
    assert!(
        run(&r, "g", tagged).await.cached(),
        "tags are not part of the key"
    );
    assert_eq!(up.calls(), calls);
}

#[tokio::test]
async fn no_cache_asks_upstream_and_refreshes_the_entry() {
    let up = FakeUpstream::start(vec![
        Reply::openai_stream(&["first"], Some((3, 1))),
        Reply::openai_stream(&["second"], Some((3, 1))),
    ])
    .await;
    let r = router(&cached_config(&up.url, ""));
    assert_eq!(run(&r, "g", ask("hi")).await.outcome().text, "first");
    let mut fresh = ask("hi");
    fresh.no_cache = true;
    let seen = run(&r, "g", fresh).await;
    assert!(!seen.cached());
    assert_eq!(seen.outcome().text, "second");
    assert_eq!(up.calls(), 2);
    let again = run(&r, "g", ask("hi")).await;
    assert!(again.cached());
    assert_eq!(
        again.outcome().text,
        "second",
        "the fresh answer replaced the old"
    );
    assert_eq!(up.calls(), 2);
}

#[tokio::test]
async fn failed_answers_are_not_cached() {
    let up = FakeUpstream::start(vec![
        Reply::status(500),
        Reply::openai_stream(&["ok"], Some((3, 1))),
    ])
    .await;
    let r = router(&cached_config(&up.url, ""));
    assert!(run(&r, "g", ask("hi")).await.result.is_err());
    let seen = run(&r, "g", ask("hi")).await;
    assert!(!seen.cached(), "the failure was not stored");
    assert_eq!(up.calls(), 2);
    assert!(run(&r, "g", ask("hi")).await.cached());
    assert_eq!(up.calls(), 2);
}

#[tokio::test]
async fn answers_stitched_after_a_mid_stream_failure_are_not_cached() {
    let broken = FakeUpstream::start(vec![
        Reply::openai_stream(&["Hel", "lo"], None).reset_after(2),
    ])
    .await;
    let whole = FakeUpstream::start(vec![Reply::openai_stream(&[" there"], Some((3, 1)))]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\nlitellm_settings:\n  cache: true\n",
        deployment(
            "g",
            "broken",
            &broken.url,
            &format!("{PRICED}      order: 1\n")
        ),
        deployment(
            "g",
            "whole",
            &whole.url,
            &format!("{PRICED}      order: 2\n")
        ),
    );
    let r = router(&yaml);
    let first = run(&r, "g", ask("hi")).await;
    assert!(first.outcome().continued, "{:?}", first.kinds());
    assert_eq!(first.outcome().text, "Hel there");
    assert_eq!(r.cache_stats().unwrap().stores, 0);
    let calls = broken.calls() + whole.calls();
    let again = run(&r, "g", ask("hi")).await;
    assert!(!again.cached());
    assert!(broken.calls() + whole.calls() > calls);
}

#[tokio::test]
async fn a_cancelled_answer_is_not_cached() {
    let up = FakeUpstream::start(vec![
        Reply::openai_stream(&["a", "b", "c", "d"], Some((3, 4)))
            .delay_each(Duration::from_millis(50)),
    ])
    .await;
    let r = router(&cached_config(&up.url, ""));
    let mut stream = r.chat("g", ask("hi"));
    while let Some(ev) = stream.next_event().await {
        if matches!(ev, ChatEvent::Delta(_)) {
            break;
        }
    }
    drop(stream);
    let seen = run(&r, "g", ask("hi")).await;
    assert!(!seen.cached());
    assert_eq!(up.calls(), 2);
}

/// A group of one mock deployment that answers at once.
const MOCK: &str = "model_list:\n  - model_name: m\n    litellm_params:\n      model: mock/m\n      mock_response: cached text\n      mock_ttft_ms: 1\n      mock_tokens_per_s: 1000\nlitellm_settings:\n  cache: true\n";

#[tokio::test(start_paused = true)]
async fn answers_expire_after_the_ttl() {
    // The mock provider has no socket, so paused time drives the expiry.
    let r = router(&format!(
        "{MOCK}  cache_params: {{ type: local, ttl: 1 }}\n"
    ));
    assert!(!run(&r, "m", ask("hi")).await.cached());
    tokio::time::advance(Duration::from_millis(900)).await;
    assert!(
        run(&r, "m", ask("hi")).await.cached(),
        "fresh within the ttl"
    );
    tokio::time::advance(Duration::from_millis(100)).await;
    let expired = run(&r, "m", ask("hi")).await;
    assert!(!expired.cached(), "expired after 1 s");
    assert_eq!(expired.kinds()[..2], ["request", "attempt"]);
    assert!(run(&r, "m", ask("hi")).await.cached(), "stored again");
}

#[tokio::test(start_paused = true)]
async fn the_in_memory_cache_is_bounded() {
    let r = router(MOCK);
    for n in 0..=MAX_ENTRIES {
        run(&r, "m", ask(&n.to_string())).await;
    }
    let stats = r.cache_stats().unwrap();
    assert_eq!(stats.stores as usize, MAX_ENTRIES + 1);
    assert_eq!(
        stats.entries, MAX_ENTRIES,
        "one entry over the cap was evicted"
    );
    assert!(
        !run(&r, "m", ask("0")).await.cached(),
        "the least recently used went first"
    );
    assert!(run(&r, "m", ask(&MAX_ENTRIES.to_string())).await.cached());
}

#[tokio::test]
async fn serve_streams_a_cached_answer_like_a_live_one() {
    use crate::serve::{chat, get, one_group, post, sse, start};
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["ab", "cd"], Some((7, 4)))]).await;
    let server = start(&one_group(&up.url, "litellm_settings:\n  cache: true\n")).await;
    let mut body = chat("fast", "hi");
    body["stream"] = json!(true);
    let mut texts = Vec::new();
    for round in 0..2 {
        let r = post(&server, "/chat/completions", &body, None).await;
        assert_eq!(r.status(), 200);
        let cache_header = crate::serve::header(&r, "x-llmux-cache");
        if round == 0 {
            assert_eq!(cache_header, None);
            assert_eq!(
                crate::serve::header(&r, "x-llmux-attempts").as_deref(),
                Some("1")
            );
        } else {
            assert_eq!(cache_header.as_deref(), Some("hit"));
            assert_eq!(
                crate::serve::header(&r, "x-llmux-attempts").as_deref(),
                Some("0")
            );
        }
        let events = sse(&r.text().await.unwrap());
        assert_eq!(events.last().unwrap().1, "[DONE]");
        let content: String = events[..events.len() - 1]
            .iter()
            .map(|(_, d)| serde_json::from_str::<serde_json::Value>(d).unwrap())
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        texts.push(content);
    }
    assert_eq!(texts, ["abcd", "abcd"]);
    assert_eq!(up.calls(), 1);
    // Plain, the hit names the deployment that first gave the answer.
    body["stream"] = json!(false);
    let r = post(&server, "/chat/completions", &body, None).await;
    assert_eq!(
        crate::serve::header(&r, "x-llmux-cache").as_deref(),
        Some("hit")
    );
    assert_eq!(
        crate::serve::header(&r, "x-llmux-deployment").as_deref(),
        Some("dep-a")
    );
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "abcd");
    assert_eq!(up.calls(), 1);
    let metrics = get(&server, "/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("\nllmux_cache_hits_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nllmux_cache_misses_total 1\n"),
        "{metrics}"
    );
    server.shutdown().await.unwrap();
}

/// Loads `litellm_settings` (and `rest`) over one mock group, with `env` as the environment.
fn settings(litellm: &str, rest: &str, env: &[(&str, &str)]) -> Config {
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{ model: mock/m }}\nlitellm_settings:\n{litellm}{rest}"
    );
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_str_with_env(&yaml, None, &|name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn warnings(c: &Config) -> String {
    c.warnings
        .iter()
        .map(|w| w.message.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn cache_settings_follow_litellm() {
    // `cache: true` alone: in memory, LiteLLM's 600 s.
    let c = settings("  cache: true\n", "", &[]);
    let cache = c.router.cache.as_ref().unwrap();
    assert!(matches!(cache.backend, CacheBackend::Local));
    assert_eq!(cache.ttl, DEFAULT_CACHE_TTL);
    assert!(c.warnings.is_empty(), "{}", warnings(&c));

    // Off unless `cache` is true; params alone are a warning.
    let c = settings("  cache_params: { type: local }\n", "", &[]);
    assert!(c.router.cache.is_none());
    assert!(
        warnings(&c).contains("cache is not true"),
        "{}",
        warnings(&c)
    );
    assert!(settings("  cache: false\n", "", &[]).router.cache.is_none());

    // Redis from cache_params, with ttl and namespace.
    let c = settings(
        "  cache: true\n  cache_params: { type: redis, host: 10.0.0.5, port: 6380, password: pw, ttl: 30, namespace: team-a }\n",
        "",
        &[],
    );
    let cache = c.router.cache.as_ref().unwrap();
    match &cache.backend {
        CacheBackend::Redis(r) => assert_eq!((r.host.as_str(), r.port), ("10.0.0.5", 6380)),
        other => panic!("{other:?}"),
    }
    assert_eq!(cache.ttl, Duration::from_secs(30));
    assert_eq!(cache.namespace.as_deref(), Some("team-a"));

    // `type: redis` without a host: the router's Redis, else LiteLLM's REDIS_HOST.
    let c = settings(
        "  cache: true\n  cache_params: { type: redis }\n",
        "router_settings:\n  redis_host: shared.example\n",
        &[],
    );
    match &c.router.cache.as_ref().unwrap().backend {
        CacheBackend::Redis(r) => assert_eq!(r.host, "shared.example"),
        other => panic!("{other:?}"),
    }
    let c = settings(
        "  cache: true\n  cache_params: { type: redis, default_in_redis_ttl: 5 }\n",
        "",
        &[("REDIS_HOST", "env.example"), ("REDIS_PORT", "7000")],
    );
    let cache = c.router.cache.as_ref().unwrap();
    match &cache.backend {
        CacheBackend::Redis(r) => assert_eq!((r.host.as_str(), r.port), ("env.example", 7000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(cache.ttl, Duration::from_secs(5));
    let c = settings("  cache: true\n  cache_params: { type: redis }\n", "", &[]);
    assert!(matches!(
        c.router.cache.as_ref().unwrap().backend,
        CacheBackend::Local
    ));
    assert!(
        warnings(&c).contains("no Redis is given"),
        "{}",
        warnings(&c)
    );

    // No type: Redis when the router has one.
    let c = settings(
        "  cache: true\n",
        "router_settings:\n  redis_host: shared.example\n",
        &[],
    );
    assert!(matches!(
        c.router.cache.as_ref().unwrap().backend,
        CacheBackend::Redis(_)
    ));

    // router_settings.cache_responses turns it on too.
    let c = settings(
        "  drop_params: true\n",
        "router_settings:\n  cache_responses: true\n",
        &[],
    );
    assert!(c.router.cache.is_some());
}

#[test]
fn cache_settings_llmux_cannot_honour_are_warned_about_once() {
    let c = settings(
        "  cache: true\n  cache_params: { mode: default_off }\n",
        "",
        &[],
    );
    assert!(c.router.cache.is_none());
    assert!(warnings(&c).contains("default_off"), "{}", warnings(&c));

    let c = settings(
        "  cache: true\n  cache_params: { supported_call_types: [aembedding] }\n",
        "",
        &[],
    );
    assert!(c.router.cache.is_none());
    assert!(warnings(&c).contains("acompletion"), "{}", warnings(&c));
    let c = settings(
        "  cache: true\n  cache_params: { supported_call_types: [acompletion, aembedding] }\n",
        "",
        &[],
    );
    assert!(c.router.cache.is_some());

    let c = settings(
        "  cache: true\n  cache_params: { type: s3, s3_bucket_name: b, similarity_threshold: 0.8 }\n",
        "",
        &[],
    );
    assert!(matches!(
        c.router.cache.as_ref().unwrap().backend,
        CacheBackend::Local
    ));
    let w = warnings(&c);
    assert!(w.contains("type s3 is not implemented"), "{w}");
    assert!(
        w.contains("cache_params.s3_bucket_name is not implemented"),
        "{w}"
    );
    assert!(
        w.contains("cache_params.similarity_threshold is not implemented"),
        "{w}"
    );
    assert_eq!(c.warnings.len(), 3, "{w}");

    let c = settings("  cache: true\n  cache_params: { ttl: 0 }\n", "", &[]);
    assert!(c.router.cache.is_none());
    assert!(warnings(&c).contains("keeps nothing"), "{}", warnings(&c));

    let err = load_str(
        "model_list:\n  - model_name: m\n    litellm_params: { model: mock/m }\nlitellm_settings:\n  cache: true\n  cache_params:\n    mode: sometimes\n",
        None,
    )
    .unwrap_err();
    assert_eq!(err.line, Some(7), "{err}");
    assert!(err.message.contains("default_on"), "{err}");
}
