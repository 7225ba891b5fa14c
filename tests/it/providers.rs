//! Providers over real HTTP against the fake upstream: what each wire format sends (URL,
//! auth headers, body) and how its answers, usage, failures and broken streams come out as
//! normalized events and classified errors. The OpenAI family is here; Anthropic, Gemini and
//! Ollama are in `providers/native.rs`; failures every provider shares and the `mock/`
//! provider (in paused time) are in `providers/failures.rs`; configured headers and
//! `organization` on every wire in `providers/headers.rs`. The helpers below serve all three.

use futures::StreamExt;
use llmux::config::{Deployment, Wire};
use llmux::provider::{
    self, ChatRequest, ErrorClass, EventStream, Message, ProviderError, StreamEvent, Usage,
};
use llmux::secret::Secret;
use serde_json::json;

use crate::upstream::{FakeUpstream, Net, Reply, ResetGate, net_test};

mod failures;
mod headers;
mod native;

const KEY: &str = "sk-test-key-0123456789";

/// A deployment with every optional field unset.
fn deployment(wire: Wire, provider: &str, model: &str, api_base: &str) -> Deployment {
    Deployment {
        api_base: api_base.into(),
        api_key: Some(Secret::new(KEY)),
        mock: None,
        ..Deployment::new("test", provider, wire, model)
    }
}

fn openai(up: &FakeUpstream) -> Deployment {
    deployment(
        Wire::OpenAi,
        "openai",
        "gpt-4o-mini",
        &format!("{}/v1", up.url),
    )
}

fn request() -> ChatRequest {
    ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("Say hello."),
    ])
}

fn non_streaming() -> ChatRequest {
    ChatRequest {
        stream: false,
        ..request()
    }
}

/// Everything a stream yielded, split by kind.
#[derive(Debug, Default)]
struct Outcome {
    deltas: Vec<String>,
    reasoning: String,
    usage: Option<Usage>,
    finish: Option<Option<String>>,
    error: Option<ProviderError>,
    tool_calls: Vec<llmux::provider::ToolCallDelta>,
    /// What the upstream passed through, in order.
    passthrough: Vec<llmux::provider::Passthrough>,
}

impl Outcome {
    fn text(&self) -> String {
        self.deltas.concat()
    }
    fn err(&self) -> &ProviderError {
        self.error.as_ref().expect("the stream should have failed")
    }
    fn usage(&self) -> Usage {
        self.usage.expect("the stream should report usage")
    }
}

/// Drains a stream, checking that nothing follows `Done` or an error.
async fn drain(stream: EventStream) -> Outcome {
    drain_releasing(stream, None).await
}

/// [`drain`], telling `gate` the text shown so far at each delta (a reset it holds comes only
/// after that text reached the client).
async fn drain_releasing(mut stream: EventStream, gate: Option<&ResetGate>) -> Outcome {
    let mut out = Outcome::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamEvent::Delta(t)) => {
                out.deltas.push(t);
                if let Some(gate) = gate {
                    gate.shown(&out.deltas.concat());
                }
            }
            Ok(StreamEvent::Reasoning(t)) => out.reasoning.push_str(&t),
            Ok(StreamEvent::Usage(u)) => out.usage = Some(u),
            Ok(StreamEvent::ToolCall(c)) => out.tool_calls.push(c),
            Ok(StreamEvent::Passthrough(p)) => out.passthrough.push(*p),
            Ok(StreamEvent::Done { finish_reason }) => {
                out.finish = Some(finish_reason);
                break;
            }
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    assert!(
        stream.next().await.is_none(),
        "nothing after Done or an error"
    );
    out
}

/// Opens `d` with a client on `net` and drains the stream.
async fn run(net: Net, d: &Deployment, req: &ChatRequest) -> Outcome {
    run_releasing(net, d, req, None).await
}

/// [`run`], draining with [`drain_releasing`].
async fn run_releasing(
    net: Net,
    d: &Deployment,
    req: &ChatRequest,
    gate: Option<&ResetGate>,
) -> Outcome {
    let client = net.client();
    match provider::open(&client, d, req).await {
        Ok(stream) => drain_releasing(stream, gate).await,
        Err(e) => Outcome {
            error: Some(e),
            ..Outcome::default()
        },
    }
}

fn sse(values: &[serde_json::Value]) -> Vec<String> {
    values.iter().map(|v| format!("data: {v}\n\n")).collect()
}

net_test!(openai_streams_text_and_usage_and_sends_what_it_should);
async fn openai_streams_text_and_usage_and_sends_what_it_should(net: Net) {
    let up = FakeUpstream::start_on(
        net,
        vec![Reply::openai_stream(&["Hel", "lo"], Some((12, 2)))],
    )
    .await;
    let mut d = openai(&up);
    d.max_tokens = Some(100);
    d.temperature = Some(0.3);
    let out = run(net, &d, &request()).await;
    assert_eq!(out.deltas, ["Hel", "lo"]);
    assert_eq!(out.finish, Some(Some("stop".into())));
    let u = out.usage();
    assert_eq!((u.input, u.output, u.estimated), (12, 2, false));

    assert_eq!(up.paths(), ["/v1/chat/completions"]);
    let h = &up.headers()[0];
    assert_eq!(h["authorization"], format!("Bearer {KEY}").as_str());
    let body = &up.bodies()[0];
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "Be brief."},
               {"role": "user", "content": "Say hello."}])
    );
}

net_test!(
    request_settings_win_over_deployment_defaults_and_reasoning_models_get_max_completion_tokens
);
async fn request_settings_win_over_deployment_defaults_and_reasoning_models_get_max_completion_tokens(
    net: Net,
) {
    let up = FakeUpstream::start_on(net, vec![Reply::openai_stream(&["ok"], None)]).await;
    let mut d = deployment(Wire::OpenAi, "openai", "o3-mini", &up.url);
    d.max_tokens = Some(100);
    let req = ChatRequest {
        max_tokens: Some(7),
        temperature: Some(1.0),
        ..request()
    };
    run(net, &d, &req).await;
    let body = &up.bodies()[0];
    assert_eq!(body["max_completion_tokens"], 7);
    assert!(body.get("max_tokens").is_none());
    assert_eq!(body["temperature"], 1.0);
}

net_test!(openai_cached_and_reasoning_tokens);
async fn openai_cached_and_reasoning_tokens(net: Net) {
    let chunks = sse(&[
        json!({"choices": [{"index": 0, "delta": {"content": "4"}, "finish_reason": null}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 1200, "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 256}}}),
    ]);
    let up = FakeUpstream::start_on(
        net,
        vec![Reply::sse(
            [chunks, vec!["data: [DONE]\n\n".into()]].concat(),
        )],
    )
    .await;
    let u = run(net, &openai(&up), &request()).await.usage();
    assert_eq!(
        u,
        Usage {
            input: 1200,
            output: 300,
            cached_input: 1024,
            cache_write: 0,
            reasoning: 256,
            estimated: false
        }
    );
}

net_test!(openai_non_streaming_answers_become_the_same_events);
async fn openai_non_streaming_answers_become_the_same_events(net: Net) {
    let up = FakeUpstream::start_on(net, vec![Reply::openai_json("Hello!", Some((9, 3)))]).await;
    let out = run(net, &openai(&up), &non_streaming()).await;
    assert_eq!(out.text(), "Hello!");
    assert_eq!((out.usage().input, out.usage().output), (9, 3));
    assert_eq!(out.finish, Some(Some("stop".into())));
    let body = &up.bodies()[0];
    assert_eq!(body["stream"], false);
    assert!(body.get("stream_options").is_none());
}

net_test!(azure_uses_the_deployment_url_api_version_and_api_key_header);
async fn azure_uses_the_deployment_url_api_version_and_api_key_header(net: Net) {
    let up = FakeUpstream::start_on(net, vec![Reply::openai_stream(&["hi"], Some((3, 1)))]).await;
    let mut d = deployment(Wire::Azure, "azure", "my-gpt4o", &up.url);
    let out = run(net, &d, &request()).await;
    assert_eq!(out.text(), "hi");
    d.api_version = Some("2025-01-01-preview".into());
    run(net, &d, &request()).await;
    assert_eq!(
        up.uris(),
        [
            "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21",
            "/openai/deployments/my-gpt4o/chat/completions?api-version=2025-01-01-preview"
        ]
    );
    let h = &up.headers()[0];
    assert_eq!(h["api-key"], KEY);
    assert!(h.get("authorization").is_none());
}

net_test!(deepseek_reasoning_content_is_kept_apart_and_cache_hits_count);
async fn deepseek_reasoning_content_is_kept_apart_and_cache_hits_count(net: Net) {
    let mut chunks = sse(&[
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": null,
            "reasoning_content": "Think"}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": null, "reasoning_content": "ing."}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "Answer", "reasoning_content": null}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20,
                      "prompt_cache_hit_tokens": 32, "prompt_cache_miss_tokens": 18}}),
    ]);
    chunks.push("data: [DONE]\n\n".into());
    let up = FakeUpstream::start_on(net, vec![Reply::sse(chunks)]).await;
    let d = deployment(Wire::OpenAi, "deepseek", "deepseek-reasoner", &up.url);
    let out = run(net, &d, &request()).await;
    assert_eq!(out.reasoning, "Thinking.");
    assert_eq!(out.text(), "Answer");
    assert_eq!(out.usage().cached_input, 32);
    assert_eq!(out.usage().input, 50);
}

net_test!(openrouter_comment_lines_are_skipped);
async fn openrouter_comment_lines_are_skipped(net: Net) {
    let mut chunks = vec![": OPENROUTER PROCESSING\n\n".to_string()];
    chunks.extend(sse(&[
        json!({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
    ]));
    chunks.push(": OPENROUTER PROCESSING\r\n\r\n".into());
    chunks.extend(sse(&[
        json!({"choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 2}}),
    ]));
    chunks.push("data: [DONE]\n\n".into());
    let up = FakeUpstream::start_on(net, vec![Reply::sse(chunks)]).await;
    let d = deployment(Wire::OpenAi, "openrouter", "openai/gpt-4o", &up.url);
    let out = run(net, &d, &request()).await;
    assert_eq!(out.text(), "Hi there");
    assert!(out.error.is_none());
}

net_test!(in_band_errors_after_a_200_are_classified);
async fn in_band_errors_after_a_200_are_classified(net: Net) {
    let cases = [
        (
            json!({"code": 502, "message": "Provider returned error"}),
            ErrorClass::Server,
            Some(502),
        ),
        (
            json!({"code": 429, "message": "Rate limited upstream"}),
            ErrorClass::RateLimit,
            Some(429),
        ),
        (
            json!({"code": "rate_limit_exceeded", "message": "slow"}),
            ErrorClass::RateLimit,
            None,
        ),
        (
            json!({"message": "something broke"}),
            ErrorClass::Server,
            None,
        ),
    ];
    for (error, class, status) in cases {
        let chunks = sse(&[
            json!({"choices": [{"index": 0, "delta": {"content": "par"}}]}),
            json!({"error": error, "choices": [{"index": 0, "delta": {"content": ""},
                   "finish_reason": "error"}]}),
        ]);
        let up = FakeUpstream::start_on(net, vec![Reply::sse(chunks)]).await;
        let out = run(net, &openai(&up), &request()).await;
        assert_eq!(out.text(), "par");
        assert_eq!(out.err().class, class, "{error}");
        assert_eq!(out.err().status, status, "{error}");
    }
}
