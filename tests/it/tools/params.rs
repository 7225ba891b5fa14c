//! `drop_params` on and off (dropped vs a 400 naming the parameter and the deployment),
//! same-wire passthrough keeping tools intact, and Gemini and Ollama deployments.

use serde_json::{Value, json};

use super::{anthropic_weather_tool, config, openai_weather_tool, post, serve_one};
use crate::serve::start;
use crate::upstream::{FakeUpstream, Reply};

const CLAUDE: &str = "anthropic/claude-sonnet-4-20250514";

fn mock_config(rest: &str, params: &str) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params:\n      model: mock/toolless\n      mock_response: plain answer\n      mock_ttft_ms: 0\n{params}router_settings:\n  num_retries: 0\n{rest}"
    )
}

fn with_tools() -> Value {
    json!({
        "model": "g",
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [openai_weather_tool()],
        "tool_choice": "auto"
    })
}

#[tokio::test]
async fn tools_to_a_deployment_without_them_are_refused_unless_dropped() {
    let server = start(&mock_config("", "")).await;
    let r = post(&server, "/v1/chat/completions", &with_tools()).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("mock/toolless (group g) does not take tools"),
        "{message}"
    );
    assert!(message.contains("drop_params: true"), "{message}");
    server.shutdown().await.unwrap();

    let server = start(&mock_config("litellm_settings:\n  drop_params: true\n", "")).await;
    let r = post(&server, "/v1/chat/completions", &with_tools()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "plain answer");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    server.shutdown().await.unwrap();

    // The deployment's own setting wins over litellm_settings'.
    let server = start(&mock_config(
        "litellm_settings:\n  drop_params: true\n",
        "      drop_params: false\n",
    ))
    .await;
    let r = post(
        &server,
        "/v1/messages",
        &json!({
            "model": "g", "max_tokens": 10,
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [anthropic_weather_tool()]
        }),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("tools"),
        "{v}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn openai_params_anthropic_does_not_take_are_refused_or_dropped() {
    let body = json!({
        "model": "g",
        "messages": [{"role": "user", "content": "hi"}],
        "seed": 7,
        "logprobs": false,
        "top_p": 0.5,
        "stop": "END"
    });
    let (up, server) = serve_one(CLAUDE, Reply::anthropic_json("hello", None), "", "").await;
    let r = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("dep (group g) does not take `seed`"),
        "{message}"
    );
    assert!(
        !message.contains("logprobs"),
        "`logprobs: false` asks for nothing: {message}"
    );
    assert_eq!(up.calls(), 0, "refused before any network");
    server.shutdown().await.unwrap();

    let (up, server) = serve_one(
        CLAUDE,
        Reply::anthropic_json("hello", None),
        "      drop_params: true\n",
        "",
    )
    .await;
    let r = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let sent = &up.bodies()[0];
    assert!(
        sent.get("seed").is_none() && sent.get("logprobs").is_none(),
        "{sent}"
    );
    assert_eq!(sent["top_p"], 0.5);
    assert_eq!(sent["stop_sequences"], json!(["END"]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn images_to_a_text_only_deployment_are_refused_unless_dropped() {
    let up = FakeUpstream::start(vec![Reply::openai_json("ok", None)]).await;
    let params = "      drop_params: false\n";
    let yaml = config("openai/gpt-3.5-turbo", &up.url, params, "").replace(
        "model_info: { id: dep }",
        "model_info: { id: dep, supports_vision: false }",
    );
    let server = start(&yaml).await;
    let body = json!({"model": "g", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is it"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    ]}]});
    let r = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not take images"),
        "{v}"
    );
    server.shutdown().await.unwrap();

    let server = start(&yaml.replace("drop_params: false", "drop_params: true")).await;
    let r = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(up.bodies()[0]["messages"][0]["content"], "what is it");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn same_wire_openai_passthrough_keeps_tools_intact() {
    let answer = json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_x", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}
        ]}, "finish_reason": "tool_calls"}]
    });
    let (up, server) = serve_one("openai/gpt-4o", Reply::json(answer), "", "").await;
    let body = json!({
        "model": "g",
        "messages": [
            {"role": "user", "content": "weather in Oslo"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_prev", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Bergen\"}"}}]},
            {"role": "tool", "tool_call_id": "call_prev", "content": "rain"}
        ],
        "tools": [openai_weather_tool()],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": false,
        "seed": 3,
        "response_format": {"type": "json_object"}
    });
    let r = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["id"], "call_x");
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let sent = &up.bodies()[0];
    assert_eq!(sent["tools"], body["tools"]);
    assert_eq!(sent["tool_choice"], body["tool_choice"]);
    assert_eq!(sent["messages"][1], body["messages"][1]);
    assert_eq!(sent["messages"][2], body["messages"][2]);
    assert_eq!(sent["parallel_tool_calls"], false);
    assert_eq!(sent["seed"], 3);
    assert_eq!(sent["response_format"], json!({"type": "json_object"}));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn same_wire_anthropic_passthrough_keeps_tools_intact() {
    let (up, server) = serve_one(CLAUDE, Reply::anthropic_json("done", None), "", "").await;
    let web = json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 2});
    let body = json!({
        "model": "g",
        "max_tokens": 2048,
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Rome"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_9", "content": "hot", "is_error": true}]}
        ],
        "tools": [anthropic_weather_tool(), web],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "top_k": 5
    });
    let r = post(&server, "/v1/messages", &body).await;
    assert_eq!(r.status(), 200);
    let sent = &up.bodies()[0];
    assert_eq!(sent["tools"], body["tools"]);
    assert_eq!(sent["tool_choice"], body["tool_choice"]);
    assert_eq!(sent["messages"], body["messages"]);
    assert_eq!(sent["thinking"], body["thinking"]);
    assert_eq!(sent["top_k"], 5);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn gemini_deployments_take_tools_as_function_declarations() {
    let answer = json!({"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}, "thoughtSignature": "c2ln"}]}}],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 5, "totalTokenCount": 35}});
    let (up, server) = serve_one("gemini/gemini-2.5-flash", Reply::json(answer), "", "").await;
    let body = json!({
        "model": "g",
        "messages": [
            {"role": "user", "content": "weather in Bern, then Lyon"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Bern\"}"}}]},
            {"role": "tool", "tool_call_id": "call_b", "content": "{\"temp\": 12}"}
        ],
        "tools": [openai_weather_tool()],
        "tool_choice": "required"
    });
    let r = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Lyon\"}");
    assert!(
        call["id"].as_str().unwrap().ends_with("__thought__c2ln"),
        "{call}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let sent = &up.bodies()[0];
    assert_eq!(
        sent["tools"],
        json!([{"functionDeclarations": [{
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }]}]),
        "the schema cut to what Gemini takes"
    );
    assert_eq!(
        sent["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    assert_eq!(
        sent["contents"][1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Bern"}}}]})
    );
    assert_eq!(
        sent["contents"][2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 12}}}]})
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ollama_deployments_take_tools_and_base64_images() {
    let answer = json!({"model": "llama3.2", "done": true, "done_reason": "stop",
        "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Riga"}}}]},
        "prompt_eval_count": 20, "eval_count": 9});
    let (up, server) = serve_one("ollama_chat/llama3.2", Reply::json(answer), "", "").await;
    let body = json!({
        "model": "g",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "weather where this was taken?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}
        ]}],
        "tools": [openai_weather_tool()]
    });
    let r = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Riga\"}"
    );
    let sent = &up.bodies()[0];
    assert_eq!(sent["messages"][0]["images"], json!(["QUJD"]));
    assert_eq!(
        sent["messages"][0]["content"],
        "weather where this was taken?"
    );
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn spend_tags_reach_the_router_from_both_apis() {
    use llmux::router::RouteEventKind;
    let up = FakeUpstream::start(vec![Reply::openai_json("ok", None)]).await;
    let router = crate::support::router(&config("openai/gpt-4o", &up.url, "", ""));
    let mut events = router.subscribe();
    let server = llmux::serve::spawn(router, crate::serve::options())
        .await
        .unwrap();
    let openai = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"tags": ["team-a"]}, "tags": ["proj-x"], "cache": {"no-cache": true}});
    assert_eq!(
        post(&server, "/v1/chat/completions", &openai)
            .await
            .status(),
        200
    );
    let anthropic = json!({"model": "g", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "u", "tags": ["team-b"]}});
    assert_eq!(
        post(&server, "/v1/messages", &anthropic).await.status(),
        200
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        if let RouteEventKind::Request { tags, .. } = events.recv().await.unwrap().kind {
            seen.push(tags);
        }
    }
    assert_eq!(seen, [vec!["team-a", "proj-x"], vec!["team-b"]]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_group_mixing_tool_takers_sends_tool_requests_only_to_them() {
    let up = FakeUpstream::start(vec![Reply::openai_json("from upstream", Some((5, 2)))]).await;
    // The tool-less mock comes first by `order`, so plain requests go to it.
    let yaml = format!(
        "model_list:\n  - model_name: g\n    litellm_params:\n      model: mock/toolless\n      mock_response: plain answer\n      mock_ttft_ms: 0\n      order: 1\n  - model_name: g\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: {}\n      api_key: sk-upstream-test\n      order: 2\n    model_info: {{ id: dep-tools }}\nrouter_settings:\n  num_retries: 0\n",
        up.url
    );
    let server = start(&yaml).await;
    let plain = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}]});
    let r = post(&server, "/v1/chat/completions", &plain).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "plain answer");
    assert_eq!(up.calls(), 0);

    for n in 1..=3 {
        let r = post(&server, "/v1/chat/completions", &with_tools()).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-llmux-deployment"].to_str().unwrap(),
            "dep-tools"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "from upstream");
        assert_eq!(up.calls(), n);
    }
    assert_eq!(
        up.bodies()[0]["tools"][0]["function"]["name"],
        "get_weather"
    );
    server.shutdown().await.unwrap();
}
