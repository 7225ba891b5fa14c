//! The routes besides chat: `GET /v1/models/{id}`, `POST /v1/messages/count_tokens`,
//! `POST /v1/completions`, and the 404 of a route llmux does not serve.

use serde_json::{Value, json};

use super::passthrough::{two_choice_answer, two_choice_stream};
use super::{KEY, deployment, get, one_group, post, sse, start};
use crate::upstream::{FakeUpstream, Reply};

#[tokio::test]
async fn an_unknown_route_is_a_404_that_says_no_such_route() {
    let up = FakeUpstream::start(vec![Reply::openai_json("x", None)]).await;
    let server = start(&one_group(&up.url, "")).await;
    for (path, api) in [
        ("/v1/responses", "openai"),
        ("/v1/messages/batches", "anthropic"),
    ] {
        let r = post(&server, path, &json!({"model": "fast"}), None).await;
        assert_eq!(r.status(), 404, "{path}");
        let v: Value = r.json().await.unwrap();
        let message = if api == "openai" {
            assert_eq!(v["error"]["code"], "no_such_route", "{v}");
            v["error"]["message"].as_str().unwrap().to_string()
        } else {
            assert_eq!(v["error"]["type"], "not_found_error", "{v}");
            v["error"]["message"].as_str().unwrap().to_string()
        };
        assert!(
            message.contains("no such route: POST ") && message.contains(path),
            "{message}"
        );
        assert!(
            !message.contains("model group") && !message.contains("model_not_found"),
            "not about a model: {message}"
        );
    }
    assert_eq!(up.calls(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_model_is_retrieved_by_its_group_or_alias_name() {
    let up = FakeUpstream::start(vec![Reply::openai_json("x", None)]).await;
    let server = start(&one_group(
        &up.url,
        "general_settings:\n  master_key: sk-llmux-test-master\n",
    ))
    .await;
    for id in ["fast", "quick"] {
        let r = get(&server, &format!("/v1/models/{id}"), Some(KEY)).await;
        assert_eq!(r.status(), 200, "{id}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["id"].as_str(), v["object"].as_str()),
            (Some(id), Some("model"))
        );
        assert_eq!(v["owned_by"], "llmux");
    }
    let missing = get(&server, "/v1/models/openai/gpt-9", Some(KEY)).await;
    assert_eq!(missing.status(), 404);
    let v: Value = missing.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'openai/gpt-9'")
    );
    assert_eq!(get(&server, "/v1/models/fast", None).await.status(), 401);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_legacy_completion_is_asked_as_a_chat_and_answered_as_a_text_completion() {
    // A 503 first: the route goes through the router's retries like chat.
    let up = FakeUpstream::start(vec![
        Reply::status(503),
        Reply::json(two_choice_answer("length")),
    ])
    .await;
    let yaml = format!(
        "model_list:\n{}router_settings:\n  num_retries: 1\n",
        deployment("fast", "dep-a", &up.url, "")
    );
    let server = start(&yaml).await;
    let body = json!({"model": "fast", "prompt": "Say hi", "n": 2, "logprobs": 1, "max_tokens": 5, "echo": false});
    let r = post(&server, "/v1/completions", &body, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(super::header(&r, "x-llmux-attempts").as_deref(), Some("2"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"), "{v}");
    assert_eq!(v["model"], "fast");
    assert_eq!(v["system_fingerprint"], "fp_up");
    assert_eq!(v["usage"]["total_tokens"], 11);
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(
        (choices[0]["text"].as_str(), choices[1]["text"].as_str()),
        (Some("Hello"), Some("Bonjour"))
    );
    assert_eq!(choices[1]["index"], 1);
    assert_eq!(choices[1]["finish_reason"], "length");
    assert_eq!(
        choices[1]["logprobs"],
        json!({"tokens": ["Bonjour"], "token_logprobs": [-0.25], "top_logprobs": [{}], "text_offset": [0]})
    );
    let sent = &up.bodies()[1];
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "Say hi"}])
    );
    assert_eq!(
        (&sent["logprobs"], &sent["top_logprobs"], &sent["n"]),
        (&json!(true), &json!(1), &json!(2))
    );
    assert!(
        sent.get("prompt").is_none() && sent.get("echo").is_none(),
        "{sent}"
    );

    for (bad, says) in [
        (
            json!({"model": "fast", "prompt": [1, 2, 3]}),
            "token-id prompts",
        ),
        (
            json!({"model": "fast", "prompt": "x", "echo": true}),
            "`echo: true`",
        ),
        (json!({"model": "fast"}), "`prompt` is required"),
    ] {
        let r = post(&server, "/v1/completions", &bad, None).await;
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    assert_eq!(up.calls(), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_streamed_legacy_completion_carries_every_choice() {
    let up = FakeUpstream::start(vec![two_choice_stream()]).await;
    let server = start(&one_group(&up.url, "")).await;
    let body = json!({"model": "fast", "prompt": "hi", "n": 2, "stream": true,
        "stream_options": {"include_usage": true}});
    let r = post(&server, "/v1/completions", &body, None).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let frames = sse(&text);
    assert_eq!(frames.last().unwrap().1, "[DONE]", "{text}");
    let mut texts = [String::new(), String::new()];
    let mut finishes = Vec::new();
    let mut usage = None;
    for (_, data) in &frames[..frames.len() - 1] {
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["object"], "text_completion", "{v}");
        assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
        for c in v["choices"].as_array().unwrap() {
            let i = c["index"].as_u64().unwrap() as usize;
            texts[i].push_str(c["text"].as_str().unwrap());
            if let Some(f) = c["finish_reason"].as_str() {
                finishes.push((i, f.to_string()));
            }
        }
        if !v["usage"].is_null() {
            usage = Some(v["usage"]["total_tokens"].clone());
        }
    }
    assert_eq!(texts, ["Hello".to_string(), "Bonjour".to_string()]);
    assert!(finishes.contains(&(0, "stop".into())) && finishes.contains(&(1, "stop".into())));
    assert_eq!(usage, Some(json!(13)));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn count_tokens_asks_an_anthropic_deployment_else_says_it_is_an_estimate() {
    let an = FakeUpstream::start(vec![
        Reply::json(json!({"input_tokens": 42})),
        Reply::status(500),
    ])
    .await;
    let oa = FakeUpstream::start(vec![Reply::openai_json("x", None)]).await;
    let yaml = format!(
        "model_list:\n  - model_name: claude\n    litellm_params: {{ model: anthropic/claude-x-1, api_base: {}, api_key: sk-ant-test, extra_headers: {{ X-Team: blue }} }}\n  - model_name: gpt\n    litellm_params: {{ model: openai/gpt-4o, api_base: {}, api_key: k }}\n",
        an.url, oa.url
    );
    let server = start(&yaml).await;
    let body = json!({
        "model": "claude", "max_tokens": 100, "metadata": {"user_id": "u"},
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello, how many tokens is this?"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]
    });
    let r = post(&server, "/v1/messages/count_tokens", &body, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        super::header(&r, "x-llmux-deployment").as_deref(),
        Some("anthropic/claude-x-1")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"input_tokens": 42, "litellm_count_source": "provider"})
    );
    assert_eq!(an.paths()[0], "/v1/messages/count_tokens");
    let sent = &an.bodies()[0];
    assert_eq!(sent["model"], "claude-x-1");
    assert_eq!(sent["system"], "Be brief.");
    assert!(
        sent.get("max_tokens").is_none() && sent.get("metadata").is_none(),
        "{sent}"
    );
    let h = &an.headers()[0];
    assert_eq!(
        (
            h["x-api-key"].to_str().unwrap(),
            h["x-team"].to_str().unwrap()
        ),
        ("sk-ant-test", "blue")
    );
    assert!(h.contains_key("anthropic-version"));

    // The deployment fails: llmux's estimate, marked as such.
    let v: Value = post(&server, "/v1/messages/count_tokens", &body, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["litellm_count_source"], "local_estimate", "{v}");
    let estimate = v["input_tokens"].as_u64().unwrap();
    assert!(estimate > 5, "{v}");

    // No Anthropic deployment to ask: the estimate, and nothing goes upstream.
    let mut to_gpt = body.clone();
    to_gpt["model"] = json!("gpt");
    let v: Value = post(&server, "/v1/messages/count_tokens", &to_gpt, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"input_tokens": estimate, "litellm_count_source": "local_estimate"})
    );
    assert_eq!(oa.calls(), 0);

    let mut unknown = body.clone();
    unknown["model"] = json!("nope");
    let r = post(&server, "/v1/messages/count_tokens", &unknown, None).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
    let r = post(
        &server,
        "/v1/messages/count_tokens",
        &json!({"model": "claude"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    server.shutdown().await.unwrap();
}
