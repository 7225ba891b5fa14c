//! Benchmarks of the hot paths: SSE framing and OpenAI chunk decoding over a ~1 MB realistic
//! stream (reported as bytes/s and events/s). Run with `cargo bench --bench core`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llmux::provider::StreamEvent;
use llmux::provider::openai::OpenAiDecoder;
use llmux::provider::sse::{SseEvent, SseParser, WireDecoder};

/// Size of the synthetic stream.
const STREAM_BYTES: usize = 1024 * 1024;
/// A typical TCP read from an upstream.
const READ_SIZE: usize = 1400;

/// A chat-completions stream as OpenAI sends it: one ~200-byte chunk per token, with the
/// usual envelope, a usage chunk and `[DONE]`. Returns the bytes and the number of events.
fn openai_stream() -> (Vec<u8>, u64) {
    let words = [
        "The", " router", " keeps", " the", " first", " token", " fast", ",", " é", " 日本",
    ];
    let mut out = String::new();
    let mut events = 0;
    let mut i = 0;
    while out.len() < STREAM_BYTES {
        let word = serde_json::to_string(words[i % words.len()]).unwrap_or_default();
        out.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-AbC123xyz\",\"object\":\"chat.completion.chunk\",\
             \"created\":1730000000,\"model\":\"gpt-4o-mini-2024-07-18\",\
             \"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{{\"index\":0,\
             \"delta\":{{\"content\":{word}}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
        ));
        events += 1;
        i += 1;
    }
    out.push_str(
        "data: {\"id\":\"chatcmpl-AbC123xyz\",\"object\":\"chat.completion.chunk\",\
         \"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
         data: {\"id\":\"chatcmpl-AbC123xyz\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\
         \"completion_tokens\":5000,\"total_tokens\":5020}}\n\ndata: [DONE]\n\n",
    );
    (out.into_bytes(), events + 3)
}

fn parse(bytes: &[u8]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for read in bytes.chunks(READ_SIZE) {
        if parser.push_into(read, &mut events).is_err() {
            break;
        }
    }
    events
}

fn parse_and_decode(bytes: &[u8]) -> usize {
    let mut parser = SseParser::new();
    let mut decoder = OpenAiDecoder::new(20);
    let mut events = Vec::new();
    let mut deltas = 0;
    for read in bytes.chunks(READ_SIZE) {
        events.clear();
        if parser.push_into(read, &mut events).is_err() {
            break;
        }
        for event in &events {
            if let Ok(out) = decoder.decode_event(event) {
                deltas += out
                    .iter()
                    .filter(|e| matches!(e, StreamEvent::Delta(_)))
                    .count();
            }
        }
    }
    deltas
}

/// SSE parse, and parse + OpenAI decode, in bytes/s and in events/s.
fn sse_benches(c: &mut Criterion) {
    let (bytes, events) = openai_stream();
    for (unit, throughput) in [
        ("bytes", Throughput::Bytes(bytes.len() as u64)),
        ("events", Throughput::Elements(events)),
    ] {
        let mut group = c.benchmark_group(format!("sse_{unit}"));
        group.throughput(throughput);
        group.bench_function("parse", |b| b.iter(|| parse(black_box(&bytes))));
        group.bench_function("parse_and_decode_openai", |b| {
            b.iter(|| parse_and_decode(black_box(&bytes)))
        });
        group.finish();
    }
}

// ---- the router's own cost per request ----

/// A whole request through the router to a mock deployment that answers at once with one
/// token: group resolution, health and limit checks, strategy pick, events to
/// subscribers and the caller, usage and cost. The upstream costs nothing, so this is the
/// router's CPU per request (an upper bound on the decision cost).
fn router_benches(c: &mut Criterion) {
    let mut yaml = String::from("model_list:\n");
    for id in ["a", "b", "c"] {
        yaml.push_str(&format!(
            "  - model_name: g\n    litellm_params: {{ model: mock/{id}, mock_response: x, mock_ttft_ms: 0, \
             mock_tokens_per_s: 1000000, rpm: 100000000, input_cost_per_token: 0.000001, \
             output_cost_per_token: 0.000002 }}\n"
        ));
    }
    yaml.push_str("router_settings:\n  routing_strategy: ROUTING\n");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("router");
    group.throughput(Throughput::Elements(1));
    for strategy in [
        "simple-shuffle",
        "least-busy",
        "latency-based-routing",
        "cost-based-routing",
        "usage-based-routing-v2",
    ] {
        let cfg = llmux::config::load_str(&yaml.replace("ROUTING", strategy), None).unwrap();
        let router = runtime.block_on(async {
            llmux::router::Router::new(cfg, llmux::router::RouterOptions::default()).unwrap()
        });
        let request =
            llmux::provider::ChatRequest::new(vec![llmux::provider::Message::user("hello there")]);
        group.bench_function(format!("request/{strategy}"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let outcome = router.chat("g", request.clone()).finish().await.unwrap();
                    std::hint::black_box(outcome.text.len())
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sse_benches, router_benches);
criterion_main!(benches);
