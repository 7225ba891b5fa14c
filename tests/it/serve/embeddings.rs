//! `POST /v1/embeddings` through the router: every wire that has embeddings (OpenAI-compatible,
//! Azure, Gemini, Ollama, mock) asked as its API asks, the answer in OpenAI's shape; retries
//! and fallbacks, cost and metrics as for chat; `model_info.mode` keeping chat and embeddings
//! apart.

use base64::Engine;
use serde_json::{Value, json};

use super::prometheus::parse;
use super::{KEY, get, header, keyed, post, start};
use crate::upstream::{FakeUpstream, Reply};

fn entry(group: &str, id: &str, model: &str, base: &str, extra: &str) -> String {
    format!(
        "  - model_name: {group}\n    litellm_params:\n      model: {model}\n      api_base: {base}\n      api_key: sk-{id}-key\n{extra}    model_info: {{ id: {id}, mode: embedding }}\n"
    )
}

fn openai_answer(vectors: &[&[f32]], prompt_tokens: u64) -> Reply {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    Reply::json(json!({
        "object": "list",
        "data": data,
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }))
}

fn floats(v: &Value) -> Vec<f32> {
    match v {
        Value::String(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        v => v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect(),
    }
}

async fn embed(server: &llmux::serve::Running, body: Value) -> (u16, Value, Option<String>) {
    let r = post(server, "/v1/embeddings", &body, Some(KEY)).await;
    let status = r.status().as_u16();
    let deployment = header(&r, "x-llmux-deployment");
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, v, deployment)
}

#[tokio::test]
async fn every_wire_answers_in_openai_s_shape() {
    let oa = FakeUpstream::start(vec![openai_answer(&[&[0.5, -0.5], &[1.0, 0.0]], 7)]).await;
    let az = FakeUpstream::start(vec![openai_answer(&[&[0.25]], 3)]).await;
    let ge = FakeUpstream::start(vec![Reply::json(
        json!({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]}),
    )])
    .await;
    let ol = FakeUpstream::start(vec![Reply::json(
        json!({"model": "nomic", "embeddings": [[0.5, 0.5, 0.5]], "prompt_eval_count": 5}),
    )])
    .await;
    let yaml = keyed(
        &[
            entry(
                "oa",
                "oa-1",
                "openai/text-embedding-3-small",
                &format!("{}/v1", oa.url),
                "      extra_headers: {X-Team: blue}\n",
            ),
            entry("az", "az-1", "azure/my-embedder", &az.url, ""),
            entry("ge", "ge-1", "gemini/text-embedding-004", &ge.url, ""),
            entry("ol", "ol-1", "ollama_chat/nomic-embed-text", &ol.url, ""),
            "  - model_name: mk\n    litellm_params: { model: mock/embed, mock_ttft_ms: 0 }\n    model_info: { mode: embedding }\n".to_string(),
        ],
        "",
    );
    let server = start(&yaml).await;

    let (status, v, deployment) = embed(
        &server,
        json!({"model": "oa", "input": ["a", "b"], "dimensions": 2, "user": "u-1"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "oa");
    assert_eq!(v["data"][1]["embedding"], json!([1.0, 0.0]));
    assert_eq!(v["usage"], json!({"prompt_tokens": 7, "total_tokens": 7}));
    assert_eq!(deployment.as_deref(), Some("oa-1"));
    assert_eq!(oa.paths()[0], "/v1/embeddings");
    assert_eq!(
        oa.bodies()[0],
        json!({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 2, "user": "u-1"})
    );
    let h = &oa.headers()[0];
    assert_eq!(h["authorization"], "Bearer sk-oa-1-key");
    assert_eq!(
        h["x-team"], "blue",
        "configured headers go with embeddings too"
    );

    let (status, v, _) = embed(&server, json!({"model": "az", "input": "x"})).await;
    assert_eq!(
        (status, v["data"][0]["embedding"].clone()),
        (200, json!([0.25]))
    );
    assert_eq!(
        az.uris()[0],
        "/openai/deployments/my-embedder/embeddings?api-version=2024-10-21"
    );
    assert_eq!(az.headers()[0]["api-key"], "sk-az-1-key");

    // The OpenAI SDKs ask for base64 by default: Gemini's floats are encoded for them.
    let (status, v, _) = embed(
        &server,
        json!({"model": "ge", "input": ["one", "two"], "encoding_format": "base64", "dimensions": 2}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(floats(&v["data"][0]["embedding"]), vec![0.1, 0.2]);
    assert_eq!(floats(&v["data"][1]["embedding"]), vec![0.3, 0.4]);
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(
        ge.paths()[0],
        "/v1beta/models/text-embedding-004:batchEmbedContents"
    );
    assert_eq!(
        ge.bodies()[0]["requests"][1],
        json!({"model": "models/text-embedding-004", "content": {"parts": [{"text": "two"}]}, "outputDimensionality": 2})
    );
    assert_eq!(ge.headers()[0]["x-goog-api-key"], "sk-ge-1-key");
    assert!(
        v["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
        "estimated: {v}"
    );

    let (status, v, _) = embed(&server, json!({"model": "ol", "input": "hello"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"][0]["embedding"], json!([0.5, 0.5, 0.5]));
    assert_eq!(v["usage"]["prompt_tokens"], 5);
    assert_eq!(ol.paths()[0], "/api/embed");
    assert_eq!(
        ol.bodies()[0],
        json!({"model": "nomic-embed-text", "input": ["hello"]})
    );

    let (status, v, _) = embed(
        &server,
        json!({"model": "mk", "input": ["same", "same"], "dimensions": 12}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (a, b) = (
        floats(&v["data"][0]["embedding"]),
        floats(&v["data"][1]["embedding"]),
    );
    assert_eq!((a.len(), &a), (12, &b), "the same text, the same vector");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn embeddings_retry_fall_back_and_are_counted_like_chat() {
    let down = FakeUpstream::start(vec![Reply::status(503)]).await;
    let up = FakeUpstream::start(vec![openai_answer(&[&[0.5]], 1000)]).await;
    let yaml = keyed(
        &[
            entry(
                "primary",
                "emb-down",
                "openai/text-embedding-3-small",
                &down.url,
                "",
            ),
            entry(
                "backup",
                "emb-up",
                "openai/text-embedding-3-large",
                &up.url,
                "      input_cost_per_token: 0.001\n",
            ),
        ],
        "router_settings:\n  num_retries: 1\n  fallbacks: [{ primary: [backup] }]\n",
    );
    let server = start(&yaml).await;
    let r = post(
        &server,
        "/v1/embeddings",
        &json!({"model": "primary", "input": "hi"}),
        Some(KEY),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-llmux-deployment").as_deref(), Some("emb-up"));
    assert_eq!(header(&r, "x-llmux-attempts").as_deref(), Some("3"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "primary");
    assert_eq!(v["usage"]["prompt_tokens"], 1000);
    assert_eq!(
        (down.calls(), up.calls()),
        (2, 1),
        "a retry, then the fallback"
    );

    let metrics = get(&server, "/metrics", None).await.text().await.unwrap();
    let m = parse(&metrics);
    let at = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in\n{metrics}"))
    };
    assert_eq!(
        at(r#"llmux_input_tokens_total{group="backup",deployment="emb-up"}"#),
        1000.0
    );
    assert!((at(r#"llmux_cost_usd_total{group="backup",deployment="emb-up"}"#) - 1.0).abs() < 1e-9);
    assert_eq!(
        at(
            r#"llmux_deployment_failures_total{group="primary",deployment="emb-down",class="server"}"#
        ),
        2.0
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn chat_and_embedding_groups_are_kept_apart_and_bad_input_is_a_400() {
    let up = FakeUpstream::start(vec![Reply::openai_json("hi", Some((1, 1)))]).await;
    let yaml = keyed(
        &[
            entry("emb", "emb-1", "openai/text-embedding-3-small", &up.url, ""),
            format!(
                "  - model_name: chat\n    litellm_params: {{ model: openai/gpt-4o, api_base: {}, api_key: k }}\n    model_info: {{ mode: chat }}\n",
                up.url
            ),
            "  - model_name: claude\n    litellm_params: { model: anthropic/claude-x, api_key: k }\n".to_string(),
        ],
        "",
    );
    let server = start(&yaml).await;
    let chat = post(
        &server,
        "/v1/chat/completions",
        &super::chat("emb", "hi"),
        Some(KEY),
    )
    .await;
    assert_eq!(chat.status(), 400);
    let v: Value = chat.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST /v1/embeddings"),
        "{v}"
    );
    for (body, says) in [
        (json!({"model": "chat", "input": "x"}), "no embedding model"),
        (json!({"model": "emb"}), "`input` is required"),
        (json!({"model": "emb", "input": []}), "`input` is empty"),
        (
            json!({"model": "emb", "input": {"text": "x"}}),
            "`input` must be",
        ),
        (json!({"input": "x"}), "`model` is required"),
        (
            json!({"model": "claude", "input": "x"}),
            "Anthropic has no embeddings API",
        ),
    ] {
        let r = post(&server, "/v1/embeddings", &body, Some(KEY)).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    let unknown = post(
        &server,
        "/v1/embeddings",
        &json!({"model": "nope", "input": "x"}),
        Some(KEY),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(up.calls(), 0, "nothing reached the upstream");
    server.shutdown().await.unwrap();
}
