//! The routes besides chat: `GET /v1/models/{id}`, `POST /v1/messages/count_tokens`,
//! `POST /v1/completions`, and the 404 of a route llmux does not serve.

use serde_json::{Value, json};

use super::{KEY, get, one_group, post, start};
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
