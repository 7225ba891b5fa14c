//! Providers over real HTTP against the fake upstream: what each wire format sends (URL,
//! auth headers, body) and how its answers, usage, failures and broken streams come out as
//! normalized events and classified errors. Also the `mock/` provider, in paused time.

use std::time::Duration;

use futures::StreamExt;
use llmux::config::{Deployment, MockParams, Wire};
use llmux::provider::{
    self, ChatRequest, ErrorClass, EventStream, HttpClient, Message, ProviderError, StreamEvent,
    Usage, estimate_prompt_tokens, estimate_tokens,
};
use llmux::secret::Secret;
use serde_json::json;

use crate::upstream::{FakeUpstream, Reply};

const KEY: &str = "sk-test-key-0123456789";

/// A deployment with every optional field unset.
fn deployment(wire: Wire, provider: &str, model: &str, api_base: &str) -> Deployment {
    Deployment {
        id: format!("{provider}/{model}"),
        group: "test".into(),
        provider: provider.into(),
        wire,
        model: model.into(),
        litellm_model: format!("{provider}/{model}"),
        api_base: api_base.into(),
        api_key: Some(Secret::new(KEY)),
        api_version: None,
        rpm: None,
        tpm: None,
        timeout: None,
        stream_timeout: None,
        max_retries: None,
        weight: None,
        order: None,
        cooldown_time: None,
        input_cost_per_token: None,
        output_cost_per_token: None,
        cache_read_input_token_cost: None,
        cache_creation_input_token_cost: None,
        output_cost_per_reasoning_token: None,
        base_model: None,
        max_input_tokens: None,
        max_tokens: None,
        temperature: None,
        tags: Vec::new(),
        mock: None,
        unavailable: None,
    }
}

fn openai(up: &FakeUpstream) -> Deployment {
    deployment(Wire::OpenAi, "openai", "gpt-4o-mini", &format!("{}/v1", up.url))
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
async fn drain(mut stream: EventStream) -> Outcome {
    let mut out = Outcome::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamEvent::Delta(t)) => out.deltas.push(t),
            Ok(StreamEvent::Reasoning(t)) => out.reasoning.push_str(&t),
            Ok(StreamEvent::Usage(u)) => out.usage = Some(u),
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
    assert!(stream.next().await.is_none(), "nothing after Done or an error");
    out
}

async fn run(d: &Deployment, req: &ChatRequest) -> Outcome {
    let client = HttpClient::new().unwrap();
    match provider::open(&client, d, req).await {
        Ok(stream) => drain(stream).await,
        Err(e) => Outcome {
            error: Some(e),
            ..Outcome::default()
        },
    }
}

fn sse(values: &[serde_json::Value]) -> Vec<String> {
    values.iter().map(|v| format!("data: {v}\n\n")).collect()
}

#[tokio::test]
async fn openai_streams_text_and_usage_and_sends_what_it_should() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["Hel", "lo"], Some((12, 2)))]).await;
    let mut d = openai(&up);
    d.max_tokens = Some(100);
    d.temperature = Some(0.3);
    let out = run(&d, &request()).await;
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

#[tokio::test]
async fn request_settings_win_over_deployment_defaults_and_reasoning_models_get_max_completion_tokens()
 {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["ok"], None)]).await;
    let mut d = deployment(Wire::OpenAi, "openai", "o3-mini", &up.url);
    d.max_tokens = Some(100);
    let req = ChatRequest {
        max_tokens: Some(7),
        temperature: Some(1.0),
        ..request()
    };
    run(&d, &req).await;
    let body = &up.bodies()[0];
    assert_eq!(body["max_completion_tokens"], 7);
    assert!(body.get("max_tokens").is_none());
    assert_eq!(body["temperature"], 1.0);
}

#[tokio::test]
async fn openai_cached_and_reasoning_tokens() {
    let chunks = sse(&[
        json!({"choices": [{"index": 0, "delta": {"content": "4"}, "finish_reason": null}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 1200, "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 256}}}),
    ]);
    let up = FakeUpstream::start(vec![Reply::sse(
        [chunks, vec!["data: [DONE]\n\n".into()]].concat(),
    )])
    .await;
    let u = run(&openai(&up), &request()).await.usage();
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

#[tokio::test]
async fn openai_non_streaming_answers_become_the_same_events() {
    let up = FakeUpstream::start(vec![Reply::openai_json("Hello!", Some((9, 3)))]).await;
    let out = run(&openai(&up), &non_streaming()).await;
    assert_eq!(out.text(), "Hello!");
    assert_eq!((out.usage().input, out.usage().output), (9, 3));
    assert_eq!(out.finish, Some(Some("stop".into())));
    let body = &up.bodies()[0];
    assert_eq!(body["stream"], false);
    assert!(body.get("stream_options").is_none());
}

#[tokio::test]
async fn azure_uses_the_deployment_url_api_version_and_api_key_header() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["hi"], Some((3, 1)))]).await;
    let mut d = deployment(Wire::Azure, "azure", "my-gpt4o", &up.url);
    let out = run(&d, &request()).await;
    assert_eq!(out.text(), "hi");
    d.api_version = Some("2025-01-01-preview".into());
    run(&d, &request()).await;
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

#[tokio::test]
async fn deepseek_reasoning_content_is_kept_apart_and_cache_hits_count() {
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
    let up = FakeUpstream::start(vec![Reply::sse(chunks)]).await;
    let d = deployment(Wire::OpenAi, "deepseek", "deepseek-reasoner", &up.url);
    let out = run(&d, &request()).await;
    assert_eq!(out.reasoning, "Thinking.");
    assert_eq!(out.text(), "Answer");
    assert_eq!(out.usage().cached_input, 32);
    assert_eq!(out.usage().input, 50);
}

#[tokio::test]
async fn openrouter_comment_lines_are_skipped() {
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
    let up = FakeUpstream::start(vec![Reply::sse(chunks)]).await;
    let d = deployment(Wire::OpenAi, "openrouter", "openai/gpt-4o", &up.url);
    let out = run(&d, &request()).await;
    assert_eq!(out.text(), "Hi there");
    assert!(out.error.is_none());
}

#[tokio::test]
async fn in_band_errors_after_a_200_are_classified() {
    let cases = [
        (json!({"code": 502, "message": "Provider returned error"}), ErrorClass::Server, Some(502)),
        (json!({"code": 429, "message": "Rate limited upstream"}), ErrorClass::RateLimit, Some(429)),
        (json!({"code": "rate_limit_exceeded", "message": "slow"}), ErrorClass::RateLimit, None),
        (json!({"message": "something broke"}), ErrorClass::Server, None),
    ];
    for (error, class, status) in cases {
        let chunks = sse(&[
            json!({"choices": [{"index": 0, "delta": {"content": "par"}}]}),
            json!({"error": error, "choices": [{"index": 0, "delta": {"content": ""},
                   "finish_reason": "error"}]}),
        ]);
        let up = FakeUpstream::start(vec![Reply::sse(chunks)]).await;
        let out = run(&openai(&up), &request()).await;
        assert_eq!(out.text(), "par");
        assert_eq!(out.err().class, class, "{error}");
        assert_eq!(out.err().status, status, "{error}");
    }
}

#[tokio::test]
async fn anthropic_streams_and_sends_system_max_tokens_and_headers() {
    let up = FakeUpstream::start(vec![Reply::anthropic_stream(&["Hel", "lo"], Some((20, 5)))]).await;
    for base in [up.url.clone(), format!("{}/v1", up.url)] {
        let d = deployment(Wire::Anthropic, "anthropic", "claude-sonnet-4-5", &base);
        let out = run(&d, &request()).await;
        assert_eq!(out.text(), "Hello");
        assert_eq!((out.usage().input, out.usage().output), (20, 5));
        assert_eq!(out.finish, Some(Some("end_turn".into())));
    }
    assert_eq!(up.paths(), ["/v1/messages", "/v1/messages"]);
    let h = &up.headers()[0];
    assert_eq!(h["x-api-key"], KEY);
    assert_eq!(h["anthropic-version"], "2023-06-01");
    let body = &up.bodies()[0];
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"], json!([{"role": "user", "content": "Say hello."}]));
}

fn anthropic_events(events: &[(&str, serde_json::Value)]) -> Vec<String> {
    events
        .iter()
        .map(|(name, v)| format!("event: {name}\ndata: {v}\n\n"))
        .collect()
}

#[tokio::test]
async fn anthropic_cached_input_and_thinking() {
    let chunks = anthropic_events(&[
        ("message_start", json!({"type": "message_start", "message": {"usage": {
            "input_tokens": 10, "output_tokens": 1,
            "cache_creation_input_tokens": 50, "cache_read_input_tokens": 100}}})),
        ("content_block_delta", json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Let me see."}})),
        ("content_block_delta", json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": "abc"}})),
        ("content_block_delta", json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "text_delta", "text": "Yes."}})),
        ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 42}})),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let up = FakeUpstream::start(vec![Reply::sse(chunks)]).await;
    let d = deployment(Wire::Anthropic, "anthropic", "claude-sonnet-4-5", &up.url);
    let out = run(&d, &request()).await;
    assert_eq!(out.reasoning, "Let me see.");
    assert_eq!(out.text(), "Yes.");
    let u = out.usage();
    assert_eq!((u.input, u.cached_input, u.cache_write, u.output), (160, 100, 50, 42));
}

#[tokio::test]
async fn anthropic_non_streaming() {
    let up = FakeUpstream::start(vec![Reply::anthropic_json("Hi!", Some((8, 2)))]).await;
    let mut d = deployment(Wire::Anthropic, "anthropic", "claude-haiku-4-5", &up.url);
    d.max_tokens = Some(256);
    let out = run(&d, &non_streaming()).await;
    assert_eq!(out.text(), "Hi!");
    assert_eq!((out.usage().input, out.usage().output), (8, 2));
    assert_eq!(up.bodies()[0]["max_tokens"], 256);
}

#[tokio::test]
async fn anthropic_error_events_after_a_200_are_classified() {
    let cases = [
        ("overloaded_error", ErrorClass::Server, 529),
        ("rate_limit_error", ErrorClass::RateLimit, 429),
        ("api_error", ErrorClass::Server, 500),
        ("invalid_request_error", ErrorClass::BadRequest, 400),
    ];
    for (kind, class, status) in cases {
        let chunks = anthropic_events(&[
            ("message_start", json!({"type": "message_start", "message": {"usage": {
                "input_tokens": 10, "output_tokens": 1}}})),
            ("ping", json!({"type": "ping"})),
            ("error", json!({"type": "error", "error": {"type": kind, "message": "Overloaded"}})),
        ]);
        let up = FakeUpstream::start(vec![Reply::sse(chunks)]).await;
        let d = deployment(Wire::Anthropic, "anthropic", "claude-sonnet-4-5", &up.url);
        let out = run(&d, &request()).await;
        assert_eq!(out.err().class, class, "{kind}");
        assert_eq!(out.err().status, Some(status), "{kind}");
    }
}

#[tokio::test]
async fn anthropic_stream_without_message_stop_is_truncated() {
    let chunks = anthropic_events(&[
        ("message_start", json!({"type": "message_start", "message": {"usage": {
            "input_tokens": 10, "output_tokens": 1}}})),
        ("content_block_delta", json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Hel"}})),
    ]);
    let up = FakeUpstream::start(vec![Reply::sse(chunks)]).await;
    let d = deployment(Wire::Anthropic, "anthropic", "claude-sonnet-4-5", &up.url);
    let out = run(&d, &request()).await;
    assert_eq!(out.text(), "Hel");
    assert_eq!(out.err().class, ErrorClass::Protocol);
    assert!(out.err().message.contains("truncated"), "{}", out.err());
}

fn gemini(up: &FakeUpstream) -> Deployment {
    deployment(Wire::Gemini, "gemini", "gemini-2.5-flash", &up.url)
}

#[tokio::test]
async fn gemini_streams_and_sends_contents_system_instruction_and_config() {
    let up = FakeUpstream::start(vec![Reply::gemini_stream(&["Hel", "lo"], Some((7, 2)))]).await;
    let mut d = gemini(&up);
    d.max_tokens = Some(64);
    d.temperature = Some(0.5);
    let req = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("Hi"),
        Message::assistant("Hello."),
        Message::user("Again"),
    ]);
    let out = run(&d, &req).await;
    assert_eq!(out.text(), "Hello");
    assert_eq!((out.usage().input, out.usage().output), (7, 2));
    assert_eq!(out.finish, Some(Some("stop".into())));
    assert_eq!(
        up.uris(),
        ["/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"]
    );
    assert_eq!(up.headers()[0]["x-goog-api-key"], KEY);
    let body = &up.bodies()[0];
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "Be brief."}]}));
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "Hi"}]},
               {"role": "model", "parts": [{"text": "Hello."}]},
               {"role": "user", "parts": [{"text": "Again"}]}])
    );
    assert_eq!(body["generationConfig"], json!({"maxOutputTokens": 64, "temperature": 0.5}));
}

#[tokio::test]
async fn gemini_thoughts_and_cached_tokens() {
    let chunks = sse(&[
        json!({"candidates": [{"index": 0, "content": {"role": "model", "parts": [
            {"text": "Pondering.", "thought": true}]}}]}),
        json!({"candidates": [{"index": 0, "finishReason": "STOP",
            "content": {"role": "model", "parts": [{"text": "Done."}]}}],
            "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": 10,
                "thoughtsTokenCount": 40, "cachedContentTokenCount": 800,
                "totalTokenCount": 950}}),
    ]);
    let up = FakeUpstream::start(vec![Reply::sse(chunks)]).await;
    let out = run(&gemini(&up), &request()).await;
    assert_eq!(out.reasoning, "Pondering.");
    assert_eq!(out.text(), "Done.");
    let u = out.usage();
    assert_eq!((u.input, u.cached_input, u.output, u.reasoning), (900, 800, 50, 40));
}

#[tokio::test]
async fn gemini_non_streaming_uses_generate_content() {
    let up = FakeUpstream::start(vec![Reply::gemini_json("Hi!", Some((4, 1)))]).await;
    let d = deployment(
        Wire::Gemini,
        "gemini",
        "models/gemini-2.5-pro",
        &format!("{}/v1beta/", up.url),
    );
    let out = run(&d, &non_streaming()).await;
    assert_eq!(out.text(), "Hi!");
    assert_eq!(out.usage().input, 4);
    assert_eq!(up.uris(), ["/v1beta/models/gemini-2.5-pro:generateContent"]);
}

#[tokio::test]
async fn gemini_safety_stops_and_blocked_prompts_are_content_policy() {
    let safety = sse(&[json!({"candidates": [{"index": 0, "finishReason": "SAFETY",
        "content": {"role": "model", "parts": [{"text": ""}]}}]})]);
    let blocked = sse(&[json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})]);
    let up = FakeUpstream::start(vec![Reply::sse(safety), Reply::sse(blocked)]).await;
    for _ in 0..2 {
        let out = run(&gemini(&up), &request()).await;
        assert_eq!(out.err().class, ErrorClass::ContentPolicy);
    }
}

#[tokio::test]
async fn gemini_eof_without_finish_reason_is_truncated_and_in_band_errors_classified() {
    let cut = sse(&[json!({"candidates": [{"index": 0,
        "content": {"role": "model", "parts": [{"text": "Hal"}]}}]})]);
    let error = sse(&[json!({"error": {"code": 503, "message": "The model is overloaded.",
        "status": "UNAVAILABLE"}})]);
    let up = FakeUpstream::start(vec![Reply::sse(cut), Reply::sse(error)]).await;
    let out = run(&gemini(&up), &request()).await;
    assert_eq!(out.text(), "Hal");
    assert_eq!(out.err().class, ErrorClass::Protocol);
    assert!(out.err().message.contains("truncated"));
    let out = run(&gemini(&up), &request()).await;
    assert_eq!(out.err().class, ErrorClass::Server);
    assert_eq!(out.err().status, Some(503));
}

#[tokio::test]
async fn ollama_streams_ndjson_and_answers_whole() {
    let up = FakeUpstream::start(vec![
        Reply::ollama_stream(&["Hel", "lo"], Some((26, 2))),
        Reply::ollama_json("Whole.", Some((26, 3))),
    ])
    .await;
    let mut d = deployment(Wire::OllamaChat, "ollama_chat", "llama3.2", &up.url);
    d.api_key = None;
    d.max_tokens = Some(32);
    let out = run(&d, &request()).await;
    assert_eq!(out.text(), "Hello");
    assert_eq!((out.usage().input, out.usage().output), (26, 2));
    assert_eq!(out.finish, Some(Some("stop".into())));
    let out = run(&d, &non_streaming()).await;
    assert_eq!(out.text(), "Whole.");
    assert_eq!(out.usage().output, 3);
    assert_eq!(up.paths(), ["/api/chat", "/api/chat"]);
    let body = &up.bodies()[0];
    assert_eq!(body["options"], json!({"num_predict": 32}));
    assert_eq!(body["model"], "llama3.2");
    assert!(up.headers()[0].get("authorization").is_none());
}

#[tokio::test]
async fn ollama_stream_cut_before_done_is_truncated() {
    let mut reply = Reply::ollama_stream(&["Hel", "lo"], None);
    reply = reply.reset_after(2);
    let up = FakeUpstream::start(vec![
        Reply::ndjson(vec!["{\"message\":{\"content\":\"Hel\"},\"done\":false}\n".into()]),
        reply,
    ])
    .await;
    let d = deployment(Wire::OllamaChat, "ollama_chat", "llama3.2", &up.url);
    let out = run(&d, &request()).await;
    assert_eq!(out.err().class, ErrorClass::Protocol);
    let out = run(&d, &request()).await;
    assert_eq!(out.text(), "Hello");
    assert_eq!(out.err().class, ErrorClass::Network);
}

#[tokio::test]
async fn rate_limits_carry_retry_after_in_seconds_or_as_a_date() {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
    let up = FakeUpstream::start(vec![
        Reply::status(429).retry_after("1"),
        Reply::status(429).retry_after(&date),
        Reply::status(429).header("retry-after-ms", "1500"),
    ])
    .await;
    let d = openai(&up);
    let e = run(&d, &request()).await.error.unwrap();
    assert_eq!((e.class, e.status), (ErrorClass::RateLimit, Some(429)));
    assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
    let e = run(&d, &request()).await.error.unwrap();
    let wait = e.retry_after.unwrap();
    assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120), "{wait:?}");
    let e = run(&d, &request()).await.error.unwrap();
    assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
}

#[tokio::test]
async fn error_statuses_map_to_classes_and_never_echo_the_key() {
    let echo = json!({"error": {"message": format!("Incorrect API key provided: {KEY}")}});
    let up = FakeUpstream::start(vec![
        Reply::status(500),
        Reply::status(503),
        Reply::raw(401, "application/json", vec![echo.to_string()]),
        Reply::status(404),
        Reply::raw(400, "application/json", vec![json!({"error": {"message":
            "This model's maximum context length is 8192 tokens"}}).to_string()]),
    ])
    .await;
    let d = openai(&up);
    let expect = [
        (ErrorClass::Server, 500),
        (ErrorClass::Server, 503),
        (ErrorClass::Auth, 401),
        (ErrorClass::NotFound, 404),
        (ErrorClass::ContextWindow, 400),
    ];
    for (class, status) in expect {
        let e = run(&d, &request()).await.error.unwrap();
        assert_eq!((e.class, e.status), (class, Some(status)), "{e}");
        assert!(!e.message.contains(KEY) && !e.to_string().contains(KEY));
    }
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let d = deployment(Wire::OpenAi, "openai", "gpt-4o", &format!("http://{addr}/v1"));
    let e = run(&d, &request()).await.error.unwrap();
    assert_eq!(e.class, ErrorClass::Network);
    assert!(e.message.contains("connection refused"), "{e}");
}

#[tokio::test]
async fn a_reset_mid_stream_is_a_network_error_after_the_text_so_far() {
    // Chunks: role, "Hel", "lo", ... — cut after "Hel".
    let reply = Reply::openai_stream(&["Hel", "lo", "!"], Some((5, 3))).reset_after(2);
    let up = FakeUpstream::start(vec![reply]).await;
    let out = run(&openai(&up), &request()).await;
    assert_eq!(out.text(), "Hel");
    assert_eq!(out.err().class, ErrorClass::Network);
    assert!(out.err().message.contains("mid-stream"), "{}", out.err());
}

#[tokio::test]
async fn malformed_and_truncated_streams_are_protocol_errors() {
    let malformed = vec!["data: {\"choices\": [{\"delta\": {\"content\": \"x\"}\n\n".to_string()];
    let no_end = sse(&[json!({"choices": [{"index": 0, "delta": {"content": "Hel"}}]})]);
    let cut_in_event = vec![
        "data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"Hel\"}}]}\n\n".to_string(),
        "data: {\"choices\": [{\"index\": 0, \"delta\":".to_string(),
    ];
    let up = FakeUpstream::start(vec![
        Reply::sse(malformed),
        Reply::sse(no_end),
        Reply::sse(cut_in_event),
        Reply::raw(200, "application/json", vec!["{not json".into()]),
    ])
    .await;
    let d = openai(&up);
    for (what, req) in [
        ("malformed", request()),
        ("truncated", request()),
        ("truncated", request()),
        ("malformed", non_streaming()),
    ] {
        let out = run(&d, &req).await;
        assert_eq!(out.err().class, ErrorClass::Protocol, "{what}");
        assert!(out.err().message.contains(what), "{what}: {}", out.err());
    }
}

#[tokio::test]
async fn a_finish_reason_without_done_still_completes() {
    let chunks = sse(&[
        json!({"choices": [{"index": 0, "delta": {"content": "All"}}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
    ]);
    let up = FakeUpstream::start(vec![Reply::sse(chunks)]).await;
    let out = run(&openai(&up), &request()).await;
    assert_eq!(out.text(), "All");
    assert_eq!(out.finish, Some(Some("length".into())));
}

#[tokio::test]
async fn usage_is_estimated_and_marked_when_the_provider_sends_none() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["Hello", " there"], None)]).await;
    let req = request();
    let u = run(&openai(&up), &req).await.usage();
    assert!(u.estimated);
    assert_eq!(u.input, estimate_prompt_tokens(&req.messages));
    assert_eq!(u.output, estimate_tokens("Hello there"));
}

#[tokio::test]
async fn dropping_a_stream_closes_the_upstream_connection() {
    let texts: Vec<String> = (0..200).map(|i| format!(" w{i}")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let reply = Reply::openai_stream(&texts, None).delay_each(Duration::from_millis(5));
    let up = FakeUpstream::start(vec![reply]).await;
    let client = HttpClient::new().unwrap();
    let mut stream = provider::open(&client, &openai(&up), &request()).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), StreamEvent::Delta(" w0".into()));
    drop(stream);
    tokio::time::timeout(Duration::from_secs(20), up.wait_disconnect())
        .await
        .expect("the upstream should see the client go away");
    assert_eq!(up.disconnects(), 1);
}

fn mock(params: MockParams) -> Deployment {
    let mut d = deployment(Wire::Mock, "mock", "demo", "");
    d.api_key = None;
    d.mock = Some(params);
    d
}

#[tokio::test(start_paused = true)]
async fn mock_answers_its_response_a_word_at_a_time_after_ttft() {
    let d = mock(MockParams {
        response: Some("Hello mock world".into()),
        ttft: Duration::from_millis(800),
        tokens_per_s: 10.0,
        ..MockParams::default()
    });
    let req = request();
    let started = tokio::time::Instant::now();
    let client = HttpClient::new().unwrap();
    let mut stream = provider::open(&client, &d, &req).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first, StreamEvent::Delta("Hello".into()));
    assert!(started.elapsed() >= Duration::from_millis(800), "ttft is waited");
    let out = drain(stream).await;
    assert_eq!(out.deltas, [" mock", " world"]);
    let u = out.usage();
    assert_eq!(
        (u.input, u.output, u.estimated),
        (estimate_prompt_tokens(&req.messages), 3, false)
    );
    assert_eq!(out.finish, Some(Some("stop".into())));
}

#[tokio::test(start_paused = true)]
async fn mock_generates_the_asked_number_of_tokens() {
    let d = mock(MockParams {
        tokens: 40,
        ..MockParams::default()
    });
    let out = run(&d, &request()).await;
    assert_eq!(out.deltas.len(), 40);
    assert_eq!(out.usage().output, 40);
    assert!(out.text().starts_with("## "), "{}", out.text());
}

#[tokio::test(start_paused = true)]
async fn mock_error_rate_one_always_fails_before_any_token() {
    let d = mock(MockParams {
        error: Some(503),
        error_rate: 1.0,
        ..MockParams::default()
    });
    let e = run(&d, &request()).await.error.unwrap();
    assert_eq!((e.class, e.status), (ErrorClass::Server, Some(503)));
    assert!(e.message.contains("mock_error_rate"));
    let d = mock(MockParams {
        error_rate: 1.0,
        ..MockParams::default()
    });
    assert_eq!(run(&d, &request()).await.error.unwrap().status, Some(500));
}
