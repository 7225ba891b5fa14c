//! What an OpenAI upstream sends that llmux does not model comes back to the client: every
//! choice of `n > 1`, `logprobs`, `system_fingerprint` and any other member, in plain answers
//! and in streams (whether the stream's chunks keep one shape, read against the learned shape,
//! or change shape every chunk, read in full). Response ids are random in each API's format,
//! and Anthropic's `message_start` announces the input tokens the final usage reports.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{chat, one_group, post, sse, start, streaming_chat};
use crate::upstream::{FakeUpstream, Reply};

/// An OpenAI stream chunk of the fake upstream, with what a real one carries besides text.
pub(super) fn chunk(choices: Value, extra: Value) -> String {
    let mut v = json!({
        "id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "gpt-up",
        "system_fingerprint": "fp_up", "choices": choices,
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    format!("data: {v}\n\n")
}

/// A token's `logprobs` entry (its shape changes with the token's length, like OpenAI's).
pub(super) fn logprobs(token: &str) -> Value {
    json!({"content": [{"token": token, "logprob": -0.25,
        "bytes": token.bytes().collect::<Vec<u8>>(), "top_logprobs": []}]})
}

/// A plain answer of two choices, each with its token's logprobs; the second ends with
/// `second_finish`.
pub(super) fn two_choice_answer(second_finish: &str) -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-up",
        "system_fingerprint": "fp_up",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello"},
             "logprobs": logprobs("Hello"), "finish_reason": "stop"},
            {"index": 1, "message": {"role": "assistant", "content": "Bonjour"},
             "logprobs": logprobs("Bonjour"), "finish_reason": second_finish}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    })
}

/// Two choices streamed interleaved, each token with its logprobs, then the finishes and a
/// usage chunk.
pub(super) fn two_choice_stream() -> Reply {
    let mut chunks = Vec::new();
    for i in 0..2 {
        chunks.push(chunk(
            json!([{"index": i, "delta": {"role": "assistant", "content": "", "refusal": null},
                    "logprobs": null, "finish_reason": null}]),
            json!({}),
        ));
    }
    for (a, b) in [("Hel", "Bon"), ("lo", "jour")] {
        for (i, t) in [(0, a), (1, b)] {
            chunks.push(chunk(
                json!([{"index": i, "delta": {"content": t}, "logprobs": logprobs(t),
                        "finish_reason": null}]),
                json!({}),
            ));
        }
    }
    for i in 0..2 {
        chunks.push(chunk(
            json!([{"index": i, "delta": {}, "logprobs": null, "finish_reason": "stop"}]),
            json!({}),
        ));
    }
    chunks.push(chunk(
        json!([]),
        json!({"usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}),
    ));
    chunks.push("data: [DONE]\n\n".into());
    Reply::sse(chunks)
}

/// Per choice index: the text, the logprob tokens and the finish reasons of a stream.
#[derive(Debug, Default, PartialEq)]
struct Choice {
    text: String,
    tokens: Vec<String>,
    finish: Vec<String>,
}

fn read_stream(body: &str) -> (BTreeMap<u64, Choice>, Vec<Value>) {
    let mut choices: BTreeMap<u64, Choice> = BTreeMap::new();
    let mut chunks = Vec::new();
    for (_, data) in sse(body) {
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(&data).unwrap();
        for c in v["choices"].as_array().unwrap() {
            let entry = choices.entry(c["index"].as_u64().unwrap()).or_default();
            if let Some(t) = c["delta"]["content"].as_str() {
                entry.text.push_str(t);
            }
            for lp in c["logprobs"]["content"].as_array().into_iter().flatten() {
                entry.tokens.push(lp["token"].as_str().unwrap().to_string());
            }
            if let Some(f) = c["finish_reason"].as_str() {
                entry.finish.push(f.to_string());
            }
        }
        chunks.push(v);
    }
    (choices, chunks)
}

#[tokio::test]
async fn a_streamed_answer_passes_back_every_choice_and_its_logprobs() {
    let up = FakeUpstream::start(vec![two_choice_stream()]).await;
    let server = start(&one_group(&up.url, "")).await;
    let mut body = streaming_chat("fast", "hi");
    body["n"] = json!(2);
    body["logprobs"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let sent = &up.bodies()[0];
    assert_eq!((&sent["n"], &sent["logprobs"]), (&json!(2), &json!(true)));

    let (choices, chunks) = read_stream(&text);
    let want = |text: &str, tokens: &[&str]| Choice {
        text: text.into(),
        tokens: tokens.iter().map(|t| t.to_string()).collect(),
        finish: vec!["stop".into()],
    };
    assert_eq!(choices[&0], want("Hello", &["Hel", "lo"]), "{text}");
    assert_eq!(choices[&1], want("Bonjour", &["Bon", "jour"]), "{text}");
    let ids: Vec<&str> = chunks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one id per stream: {ids:?}"
    );
    assert!(
        ids[0].starts_with("chatcmpl-") && ids[0] != "chatcmpl-up",
        "{}",
        ids[0]
    );
    for c in &chunks {
        assert_eq!(c["model"], "fast", "the model as the client named it");
        let texts = c["choices"].as_array().unwrap();
        if texts.iter().any(|c| {
            c["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        }) {
            assert_eq!(c["system_fingerprint"], "fp_up", "{c}");
        }
    }
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 13);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_of_one_shape_passes_its_members_back_through_the_learned_shape() {
    let texts = ["One", " two", " three", " four", " five"];
    let mut chunks = vec![chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
        json!({"service_tier": "default"}),
    )];
    for (i, t) in texts.iter().enumerate() {
        // Every chunk has the same shape; `obfuscation` changes length as OpenAI's does.
        chunks.push(chunk(
            json!([{"index": 0, "delta": {"content": t}, "finish_reason": null}]),
            json!({"service_tier": "default", "obfuscation": "x".repeat(i + 1)}),
        ));
    }
    chunks.push(chunk(
        json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
        json!({"service_tier": "default"}),
    ));
    chunks.push("data: [DONE]\n\n".into());
    let up = FakeUpstream::start(vec![Reply::sse(chunks)]).await;
    let server = start(&one_group(&up.url, "")).await;
    let body = streaming_chat("fast", "hi");
    let text = post(&server, "/v1/chat/completions", &body, None)
        .await
        .text()
        .await
        .unwrap();
    let (choices, out) = read_stream(&text);
    assert_eq!(choices[&0].text, texts.concat());
    let pads: Vec<&str> = out
        .iter()
        .filter_map(|c| c["obfuscation"].as_str())
        .collect();
    assert_eq!(pads, ["x", "xx", "xxx", "xxxx", "xxxxx"], "{text}");
    for c in &out {
        assert_eq!(c["system_fingerprint"], "fp_up", "{c}");
        assert_eq!(c["service_tier"], "default", "{c}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_plain_answer_passes_back_every_choice_and_member() {
    let answer = json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-up",
        "system_fingerprint": "fp_up", "service_tier": "default",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello",
                "refusal": null, "annotations": [{"type": "url_citation"}]},
             "logprobs": logprobs("Hello"), "finish_reason": "stop"},
            {"index": 1, "message": {"role": "assistant", "content": "Bonjour"},
             "logprobs": logprobs("Bonjour"), "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
        "x_vendor": {"region": "eu"}
    });
    let up = FakeUpstream::start(vec![Reply::json(answer)]).await;
    let server = start(&one_group(&up.url, "")).await;
    let mut body = chat("fast", "hi");
    body["n"] = json!(2);
    body["logprobs"] = json!(true);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let v: Value = post(&server, "/v1/chat/completions", &body, None)
            .await
            .json()
            .await
            .unwrap();
        let choices = v["choices"].as_array().unwrap();
        assert_eq!(choices.len(), 2, "{v}");
        assert_eq!(choices[0]["message"]["content"], "Hello");
        assert_eq!(
            choices[0]["message"]["annotations"],
            json!([{"type": "url_citation"}])
        );
        assert_eq!(choices[0]["logprobs"], logprobs("Hello"));
        assert_eq!(choices[1]["message"]["content"], "Bonjour");
        assert_eq!(choices[1]["logprobs"], logprobs("Bonjour"));
        assert_eq!(choices[1]["finish_reason"], "length");
        assert_eq!(v["system_fingerprint"], "fp_up");
        assert_eq!(v["service_tier"], "default");
        assert_eq!(v["x_vendor"], json!({"region": "eu"}));
        assert_eq!(v["model"], "fast");
        assert_eq!(v["usage"]["total_tokens"], 11);
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    assert!(
        ids.iter()
            .all(|id| id.starts_with("chatcmpl-") && id.len() > 20),
        "{ids:?}"
    );
    assert_ne!(ids[0], ids[1], "every answer has its own id");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn anthropic_message_start_announces_the_input_tokens_the_usage_reports() {
    let up = FakeUpstream::start(vec![Reply::anthropic_stream(
        &["Hi", " there"],
        Some((321, 2)),
    )])
    .await;
    let yaml = format!(
        "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-x\n      api_base: {}\n      api_key: sk-ant-test\n",
        up.url
    );
    let server = start(&yaml).await;
    let body = json!({"model": "claude", "max_tokens": 64, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    let text = reqwest::Client::new()
        .post(format!("{}/v1/messages", server.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<Value> = sse(&text)
        .into_iter()
        .map(|(_, d)| serde_json::from_str(&d).unwrap())
        .collect();
    let start_input = &events[0]["message"]["usage"]["input_tokens"];
    let id = events[0]["message"]["id"].as_str().unwrap();
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(start_input, &json!(321), "{text}");
    assert_eq!(&delta["usage"]["input_tokens"], start_input, "{text}");
    assert!(id.starts_with("msg_") && id.len() > 20, "{id}");
    server.shutdown().await.unwrap();
}
