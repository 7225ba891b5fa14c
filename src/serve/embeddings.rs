//! OpenAI's embeddings API: `POST /v1/embeddings` (and `/embeddings`).
//!
//! The body (`model`, `input`, and `dimensions`, `encoding_format`, `user`, … passed on) becomes
//! a `ChatRequest` of [`Operation::Embedding`] and goes through the router like a chat request
//! (groups and aliases, retries, cooldowns, fallbacks, cost, events, metrics); the answer is
//! OpenAI's `{"object": "list", "data": […], "model", "usage"}` with the upstream's `data` (or
//! the one llmux wrote for a Gemini, Ollama or mock deployment; see `provider::embed`).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value};

use super::Shared;
use super::body::{parse_json, read_body};
use super::chat::{
    Admission, Begun, Tracker, begin, finish_plain, json_bytes_response, outcome_headers,
};
use super::error::{Api, ApiError, Kind};
use super::json;
use super::openai::request::{no_cache, tags_of};
use crate::provider::embed::Input;
use crate::provider::{ChatRequest, Message, Operation, Passthrough};
use crate::router::ChatOutcome;

/// `POST /v1/embeddings`.
pub async fn embeddings(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    match handle(state, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response_for(Api::OpenAi),
    }
}

async fn handle(state: Shared, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let admission = Admission::take(&state)?;
    let bytes = read_body(&state, &headers, body).await?;
    let fields: Map<String, Value> = parse_json(&state, &bytes)?;
    let (model, request) = to_request(fields).inspect_err(|_| {
        state.metrics.rejected("bad_request");
    })?;
    super::chat::check_mode(&state, &model, true)?;
    let mut tracker = Tracker::new(&state, Api::OpenAi, &model, admission);
    let (result, passed) = match begin(&state, &headers, &model, request, &mut tracker).await {
        // An embedding has no text: this only happens if an upstream sent some.
        Begun::Streaming(started) => finish_plain(started).await,
        Begun::Done(result, passed) => (result, passed),
    };
    tracker.finish(&result);
    let outcome = result.map_err(ApiError::from)?;
    let mut response = json_bytes_response(answer(&outcome, &model, passed)?);
    outcome_headers(&mut response, &outcome);
    Ok(response)
}

/// The request's fields as a routed request: `model` and `input` checked, LiteLLM's
/// `metadata.tags` / `tags` and `cache` read, every other field passed on to the upstream.
fn to_request(mut fields: Map<String, Value>) -> Result<(String, ChatRequest), ApiError> {
    let model = match fields.remove("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m,
        _ => {
            return Err(ApiError::bad_request(
                "`model` is required: the name of a model group (GET /v1/models lists them)",
            ));
        }
    };
    let input = fields.remove("input").ok_or_else(|| {
        ApiError::bad_request("`input` is required: a string or a list of strings")
    })?;
    let parsed = Input::parse(&input).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut tags = tags_of(
        fields.get("metadata").and_then(|m| m.get("tags")),
        "metadata.tags",
    )?;
    for t in tags_of(fields.get("tags"), "tags")? {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let no_cache = no_cache(fields.get("cache"));
    for llmux_only in ["metadata", "tags", "cache"] {
        fields.remove(llmux_only);
    }
    let request = ChatRequest {
        // The texts, for the router's token estimates (tpm, the context window, the log).
        messages: vec![Message::user(parsed.joined_text())],
        stream: false,
        tags,
        no_cache,
        extra: fields,
        operation: Operation::Embedding { input },
        ..ChatRequest::default()
    };
    Ok((model, request))
}

/// An embeddings answer's first member.
#[derive(serde::Serialize)]
struct List {
    object: &'static str,
}

/// The members of an embeddings answer after its `data`.
#[derive(serde::Serialize)]
struct Tail<'a> {
    model: &'a str,
    usage: Usage,
}

/// An embeddings answer's `usage`.
#[derive(serde::Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// OpenAI's embeddings answer, the `data` as the provider gave it.
fn answer(o: &ChatOutcome, model: &str, passed: Vec<Passthrough>) -> Result<Vec<u8>, ApiError> {
    let data = passed
        .into_iter()
        .rev()
        .find(|p| !p.top.is_empty())
        .ok_or_else(|| ApiError::new(Kind::Upstream, "the upstream's answer held no embeddings"))?;
    let mut out = Vec::with_capacity(data.top.as_str().len() + 256);
    let tail = Tail {
        model,
        usage: Usage {
            prompt_tokens: o.usage.input,
            total_tokens: o.usage.input.saturating_add(o.usage.output),
        },
    };
    json::write_object(&mut out, &List { object: "list" }, |out| {
        // `"data":[…]`, as the provider wrote it.
        data.top.write_after(out);
        json::write_members(out, &tail);
    });
    Ok(out)
}
