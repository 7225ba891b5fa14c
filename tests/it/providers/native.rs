//! Native wire formats over real HTTP: Anthropic Messages, Gemini and Ollama's NDJSON chat
//! (requests as sent, streamed and whole answers, usage, in-band errors, truncation).

use llmux::config::{Deployment, Wire};
use llmux::provider::{ChatRequest, ErrorClass, Message};
use serde_json::json;

use super::{KEY, deployment, non_streaming, request, run, run_releasing, sse};
use crate::upstream::{FakeUpstream, Net, Reply, ResetGate, net_test};

net_test!(anthropic_streams_and_sends_system_max_tokens_and_headers);
async fn anthropic_streams_and_sends_system_max_tokens_and_headers(net: Net) {
    let up = FakeUpstream::start_on(
        net,
        vec![Reply::anthropic_stream(&["Hel", "lo"], Some((20, 5)))],
    )
    .await;
    for base in [up.url.clone(), format!("{}/v1", up.url)] {
        let d = deployment(Wire::Anthropic, "anthropic", "claude-sonnet-4-5", &base);
        let out = run(net, &d, &request()).await;
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
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "Say hello."}])
    );
}

fn anthropic_events(events: &[(&str, serde_json::Value)]) -> Vec<String> {
    events
        .iter()
        .map(|(name, v)| format!("event: {name}\ndata: {v}\n\n"))
        .collect()
}

net_test!(anthropic_cached_input_and_thinking);
async fn anthropic_cached_input_and_thinking(net: Net) {
    let chunks = anthropic_events(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"usage": {
            "input_tokens": 10, "output_tokens": 1,
            "cache_creation_input_tokens": 50, "cache_read_input_tokens": 100}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Let me see."}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": "abc"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "text_delta", "text": "Yes."}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 42}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let up = FakeUpstream::start_on(net, vec![Reply::sse(chunks)]).await;
    let d = deployment(Wire::Anthropic, "anthropic", "claude-sonnet-4-5", &up.url);
    let out = run(net, &d, &request()).await;
    assert_eq!(out.reasoning, "Let me see.");
    assert_eq!(out.text(), "Yes.");
    let u = out.usage();
    assert_eq!(
        (u.input, u.cached_input, u.cache_write, u.output),
        (160, 100, 50, 42)
    );
}

net_test!(anthropic_non_streaming);
async fn anthropic_non_streaming(net: Net) {
    let up = FakeUpstream::start_on(net, vec![Reply::anthropic_json("Hi!", Some((8, 2)))]).await;
    let mut d = deployment(Wire::Anthropic, "anthropic", "claude-haiku-4-5", &up.url);
    d.max_tokens = Some(256);
    let out = run(net, &d, &non_streaming()).await;
    assert_eq!(out.text(), "Hi!");
    assert_eq!((out.usage().input, out.usage().output), (8, 2));
    assert_eq!(up.bodies()[0]["max_tokens"], 256);
}

net_test!(anthropic_error_events_after_a_200_are_classified);
async fn anthropic_error_events_after_a_200_are_classified(net: Net) {
    let cases = [
        ("overloaded_error", ErrorClass::Server, 529),
        ("rate_limit_error", ErrorClass::RateLimit, 429),
        ("api_error", ErrorClass::Server, 500),
        ("invalid_request_error", ErrorClass::BadRequest, 400),
    ];
    for (kind, class, status) in cases {
        let chunks = anthropic_events(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"usage": {
                "input_tokens": 10, "output_tokens": 1}}}),
            ),
            ("ping", json!({"type": "ping"})),
            (
                "error",
                json!({"type": "error", "error": {"type": kind, "message": "Overloaded"}}),
            ),
        ]);
        let up = FakeUpstream::start_on(net, vec![Reply::sse(chunks)]).await;
        let d = deployment(Wire::Anthropic, "anthropic", "claude-sonnet-4-5", &up.url);
        let out = run(net, &d, &request()).await;
        assert_eq!(out.err().class, class, "{kind}");
        assert_eq!(out.err().status, Some(status), "{kind}");
    }
}

net_test!(anthropic_stream_without_message_stop_is_truncated);
async fn anthropic_stream_without_message_stop_is_truncated(net: Net) {
    let chunks = anthropic_events(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"usage": {
            "input_tokens": 10, "output_tokens": 1}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Hel"}}),
        ),
    ]);
    let up = FakeUpstream::start_on(net, vec![Reply::sse(chunks)]).await;
    let d = deployment(Wire::Anthropic, "anthropic", "claude-sonnet-4-5", &up.url);
    let out = run(net, &d, &request()).await;
    assert_eq!(out.text(), "Hel");
    assert_eq!(out.err().class, ErrorClass::Protocol);
    assert!(out.err().message.contains("truncated"), "{}", out.err());
}

fn gemini(up: &FakeUpstream) -> Deployment {
    deployment(Wire::Gemini, "gemini", "gemini-2.5-flash", &up.url)
}

net_test!(gemini_streams_and_sends_contents_system_instruction_and_config);
async fn gemini_streams_and_sends_contents_system_instruction_and_config(net: Net) {
    let up = FakeUpstream::start_on(
        net,
        vec![Reply::gemini_stream(&["Hel", "lo"], Some((7, 2)))],
    )
    .await;
    let mut d = gemini(&up);
    d.max_tokens = Some(64);
    d.temperature = Some(0.5);
    let req = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("Hi"),
        Message::assistant("Hello."),
        Message::user("Again"),
    ]);
    let out = run(net, &d, &req).await;
    assert_eq!(out.text(), "Hello");
    assert_eq!((out.usage().input, out.usage().output), (7, 2));
    assert_eq!(out.finish, Some(Some("stop".into())));
    assert_eq!(
        up.uris(),
        ["/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"]
    );
    assert_eq!(up.headers()[0]["x-goog-api-key"], KEY);
    let body = &up.bodies()[0];
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "Hi"}]},
               {"role": "model", "parts": [{"text": "Hello."}]},
               {"role": "user", "parts": [{"text": "Again"}]}])
    );
    assert_eq!(
        body["generationConfig"],
        json!({"maxOutputTokens": 64, "temperature": 0.5})
    );
}

net_test!(gemini_thoughts_and_cached_tokens);
async fn gemini_thoughts_and_cached_tokens(net: Net) {
    let chunks = sse(&[
        json!({"candidates": [{"index": 0, "content": {"role": "model", "parts": [
            {"text": "Pondering.", "thought": true}]}}]}),
        json!({"candidates": [{"index": 0, "finishReason": "STOP",
            "content": {"role": "model", "parts": [{"text": "Done."}]}}],
            "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": 10,
                "thoughtsTokenCount": 40, "cachedContentTokenCount": 800,
                "totalTokenCount": 950}}),
    ]);
    let up = FakeUpstream::start_on(net, vec![Reply::sse(chunks)]).await;
    let out = run(net, &gemini(&up), &request()).await;
    assert_eq!(out.reasoning, "Pondering.");
    assert_eq!(out.text(), "Done.");
    let u = out.usage();
    assert_eq!(
        (u.input, u.cached_input, u.output, u.reasoning),
        (900, 800, 50, 40)
    );
}

net_test!(gemini_non_streaming_uses_generate_content);
async fn gemini_non_streaming_uses_generate_content(net: Net) {
    let up = FakeUpstream::start_on(net, vec![Reply::gemini_json("Hi!", Some((4, 1)))]).await;
    let d = deployment(
        Wire::Gemini,
        "gemini",
        "models/gemini-2.5-pro",
        &format!("{}/v1beta/", up.url),
    );
    let out = run(net, &d, &non_streaming()).await;
    assert_eq!(out.text(), "Hi!");
    assert_eq!(out.usage().input, 4);
    assert_eq!(up.uris(), ["/v1beta/models/gemini-2.5-pro:generateContent"]);
}

net_test!(gemini_safety_stops_and_blocked_prompts_are_content_policy);
async fn gemini_safety_stops_and_blocked_prompts_are_content_policy(net: Net) {
    let safety = sse(
        &[json!({"candidates": [{"index": 0, "finishReason": "SAFETY",
        "content": {"role": "model", "parts": [{"text": ""}]}}]})],
    );
    let blocked = sse(&[json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})]);
    let up = FakeUpstream::start_on(net, vec![Reply::sse(safety), Reply::sse(blocked)]).await;
    for _ in 0..2 {
        let out = run(net, &gemini(&up), &request()).await;
        assert_eq!(out.err().class, ErrorClass::ContentPolicy);
    }
}

net_test!(gemini_eof_without_finish_reason_is_truncated_and_in_band_errors_classified);
async fn gemini_eof_without_finish_reason_is_truncated_and_in_band_errors_classified(net: Net) {
    let cut = sse(&[json!({"candidates": [{"index": 0,
        "content": {"role": "model", "parts": [{"text": "Hal"}]}}]})]);
    let error = sse(&[
        json!({"error": {"code": 503, "message": "The model is overloaded.",
        "status": "UNAVAILABLE"}}),
    ]);
    let up = FakeUpstream::start_on(net, vec![Reply::sse(cut), Reply::sse(error)]).await;
    let out = run(net, &gemini(&up), &request()).await;
    assert_eq!(out.text(), "Hal");
    assert_eq!(out.err().class, ErrorClass::Protocol);
    assert!(out.err().message.contains("truncated"));
    let out = run(net, &gemini(&up), &request()).await;
    assert_eq!(out.err().class, ErrorClass::Server);
    assert_eq!(out.err().status, Some(503));
}

net_test!(ollama_streams_ndjson_and_answers_whole);
async fn ollama_streams_ndjson_and_answers_whole(net: Net) {
    let up = FakeUpstream::start_on(
        net,
        vec![
            Reply::ollama_stream(&["Hel", "lo"], Some((26, 2))),
            Reply::ollama_json("Whole.", Some((26, 3))),
        ],
    )
    .await;
    let mut d = deployment(Wire::OllamaChat, "ollama_chat", "llama3.2", &up.url);
    d.api_key = None;
    d.max_tokens = Some(32);
    let out = run(net, &d, &request()).await;
    assert_eq!(out.text(), "Hello");
    assert_eq!((out.usage().input, out.usage().output), (26, 2));
    assert_eq!(out.finish, Some(Some("stop".into())));
    let out = run(net, &d, &non_streaming()).await;
    assert_eq!(out.text(), "Whole.");
    assert_eq!(out.usage().output, 3);
    assert_eq!(up.paths(), ["/api/chat", "/api/chat"]);
    let body = &up.bodies()[0];
    assert_eq!(body["options"], json!({"num_predict": 32}));
    assert_eq!(body["model"], "llama3.2");
    assert!(up.headers()[0].get("authorization").is_none());
}

net_test!(ollama_stream_cut_before_done_is_truncated);
async fn ollama_stream_cut_before_done_is_truncated(net: Net) {
    let gate = ResetGate::new("Hello");
    let reply = Reply::ollama_stream(&["Hel", "lo"], None).reset_after_shown(2, gate.clone());
    let up = FakeUpstream::start_on(
        net,
        vec![
            Reply::ndjson(vec![
                "{\"message\":{\"content\":\"Hel\"},\"done\":false}\n".into(),
            ]),
            reply,
        ],
    )
    .await;
    let d = deployment(Wire::OllamaChat, "ollama_chat", "llama3.2", &up.url);
    let out = run(net, &d, &request()).await;
    assert_eq!(out.err().class, ErrorClass::Protocol);
    let out = run_releasing(net, &d, &request(), Some(&gate)).await;
    assert_eq!(out.text(), "Hello");
    assert_eq!(out.err().class, ErrorClass::Network);
}
