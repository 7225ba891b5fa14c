//! Ollama's native chat API (`ollama_chat/`, `POST {api_base}/api/chat`).
//!
//! A [`ChatRequest`] enters [`open`] as `{model, messages, stream, options}`; the answer is
//! newline-delimited JSON, one `{message: {content}, done: false}` object per piece and a last
//! `{done: true, prompt_eval_count, eval_count}`. [`OllamaDecoder`] turns those lines into
//! [`StreamEvent`]s (a `thinking` field is reasoning, `message.tool_calls` are whole tool
//! calls with made-up ids); `{"error": "..."}` lines are classified errors, and EOF before
//! `done: true` is a truncated stream. Tools go as OpenAI-shaped `tools`, an assistant's calls
//! as `tool_calls` with object arguments, tool results as `role: tool` with the tool's name,
//! images as the base64 `images` list; `stop`, `top_p`, `top_k`, `seed` and the penalties
//! join `options`.

use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{
    HttpClient, body_stream, inband_error, json_events, scrub_errors, secret_header,
};
use super::outbound::{self, Secrets};
use super::params::SAMPLING_TAKES;
use super::sse::{NdjsonSplitter, UsageTracker, WireDecoder, drive};
use super::tools::generated_id;
use super::{
    ChatRequest, EventStream, ImageSource, Message, Part, ProviderError, Role, StreamEvent,
    ToolCallDelta, Usage, estimate_prompt_tokens,
};
use crate::config::Deployment;

/// Sends the request and returns its event stream (see the module docs).
pub async fn open(
    client: &HttpClient,
    deployment: &Deployment,
    request: &ChatRequest,
) -> Result<EventStream, ProviderError> {
    let mut headers = HeaderMap::new();
    // Ollama itself has no auth; proxies in front of it (and Ollama's cloud) take a bearer key.
    if let Some(key) = deployment.api_key.as_ref().filter(|k| !k.is_empty()) {
        headers.insert(
            AUTHORIZATION,
            secret_header(&format!("Bearer {}", key.expose()))?,
        );
    }
    outbound::apply(deployment, &mut headers)?;
    let body = request_body(deployment, request)?;
    let response = client
        .post_json(
            &endpoint(deployment),
            headers,
            &body,
            Secrets::of(deployment),
        )
        .await?;
    let prompt = estimate_prompt_tokens(&request.messages);
    let events = if request.stream {
        drive(
            body_stream(response),
            NdjsonSplitter::new(),
            OllamaDecoder::new(prompt),
        )
    } else {
        json_events(response, move |v| decode_response(&v, prompt))
    };
    Ok(scrub_errors(events, Secrets::of(deployment)))
}

/// `{api_base}/api/chat`.
pub fn endpoint(deployment: &Deployment) -> String {
    format!("{}/api/chat", deployment.api_base.trim_end_matches('/'))
}

/// The `/api/chat` body; `max_tokens` is Ollama's `num_predict`.
pub fn request_body(
    deployment: &Deployment,
    request: &ChatRequest,
) -> Result<Value, ProviderError> {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| message_json(m, request))
        .collect::<Result<_, _>>()?;
    let mut body = json!({
        "model": deployment.model,
        "messages": messages,
        "stream": request.stream,
    });
    let mut options = serde_json::Map::new();
    if let Some(max) = request.max_tokens.or(deployment.max_tokens) {
        options.insert("num_predict".into(), json!(max));
    }
    if let Some(t) = request.temperature.or(deployment.temperature) {
        options.insert("temperature".into(), json!(t));
    }
    // The `extra` parameters Ollama takes go into `options` under the same name.
    for key in SAMPLING_TAKES {
        if let Some(v) = request.extra.get(key).filter(|v| !v.is_null()) {
            options.insert(key.into(), v.clone());
        }
    }
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    // Ollama has no tool_choice: `none` is offering no tools.
    if !request.tools.is_empty() && request.tool_choice != Some(super::ToolChoice::None) {
        body["tools"] = request.tools.iter().map(super::openai::tool_json).collect();
    }
    Ok(body)
}

/// One message: text, base64 `images`, an assistant's `tool_calls` (object arguments), a
/// tool result's `tool_name`.
fn message_json(m: &Message, request: &ChatRequest) -> Result<Value, ProviderError> {
    let mut out = json!({ "role": m.role.as_str(), "content": m.content });
    let images: Vec<&str> = m
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Image {
                source: ImageSource::Base64 { data, .. },
                ..
            } => Some(data.as_str()),
            _ => None,
        })
        .collect();
    if !images.is_empty() {
        out["images"] = json!(images);
    }
    if !m.tool_calls.is_empty() {
        let calls = m
            .tool_calls
            .iter()
            .map(|c| {
                let args = c.arguments_object()?;
                Ok(json!({ "function": { "name": c.name, "arguments": args } }))
            })
            .collect::<Result<Vec<_>, ProviderError>>()?;
        out["tool_calls"] = Value::Array(calls);
    }
    if m.role == Role::Tool
        && let Some(id) = &m.tool_call_id
        && let Some(call) = request
            .messages
            .iter()
            .flat_map(|x| x.tool_calls.iter())
            .find(|c| &c.id == id)
    {
        out["tool_name"] = json!(call.name);
    }
    Ok(out)
}

#[derive(Debug, Default, Deserialize)]
struct Line {
    #[serde(default)]
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Vec<LineToolCall>,
}

#[derive(Debug, Default, Deserialize)]
struct LineToolCall {
    #[serde(default)]
    function: Option<LineFunction>,
}

#[derive(Debug, Default, Deserialize)]
struct LineFunction {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// Decodes Ollama's NDJSON lines (see the module docs).
#[derive(Debug)]
pub struct OllamaDecoder {
    usage: UsageTracker,
    /// Tool calls seen so far (the next one's index).
    tool_calls: u32,
    done: bool,
}

impl OllamaDecoder {
    pub fn new(prompt_estimate: u64) -> OllamaDecoder {
        OllamaDecoder {
            usage: UsageTracker::new(prompt_estimate),
            tool_calls: 0,
            done: false,
        }
    }

    fn decode_line(&mut self, line: &Line) -> Result<Vec<StreamEvent>, ProviderError> {
        if let Some(error) = &line.error {
            return Err(inband_error(error));
        }
        let mut out = Vec::new();
        if let Some(m) = &line.message {
            if let Some(t) = m.thinking.as_ref().filter(|t| !t.is_empty()) {
                self.usage.saw_text(t);
                out.push(StreamEvent::Reasoning(t.clone()));
            }
            if let Some(t) = m.content.as_ref().filter(|t| !t.is_empty()) {
                self.usage.saw_text(t);
                out.push(StreamEvent::Delta(t.clone()));
            }
            for f in m.tool_calls.iter().filter_map(|c| c.function.as_ref()) {
                let arguments = match &f.arguments {
                    Value::Object(_) => f.arguments.to_string(),
                    Value::String(s) => s.clone(),
                    _ => "{}".to_string(),
                };
                self.usage.saw_text(&arguments);
                out.push(StreamEvent::ToolCall(ToolCallDelta {
                    index: self.tool_calls,
                    id: Some(generated_id()),
                    name: Some(f.name.clone()),
                    arguments,
                }));
                self.tool_calls += 1;
            }
        }
        if line.done {
            if line.prompt_eval_count.is_some() || line.eval_count.is_some() {
                self.usage.report(Usage {
                    input: line.prompt_eval_count.unwrap_or(0),
                    output: line.eval_count.unwrap_or(0),
                    ..Usage::default()
                });
            }
            self.done = true;
            out.push(StreamEvent::Usage(self.usage.finish()));
            let finish_reason = match line.done_reason.as_deref() {
                Some("stop") | None if self.tool_calls > 0 => Some("tool_calls".to_string()),
                _ => line.done_reason.clone(),
            };
            out.push(StreamEvent::Done { finish_reason });
        }
        Ok(out)
    }
}

impl WireDecoder for OllamaDecoder {
    type Item = String;

    fn decode_event(&mut self, line: &String) -> Result<Vec<StreamEvent>, ProviderError> {
        if self.done {
            return Ok(Vec::new());
        }
        let parsed: Line = serde_json::from_str(line).map_err(|e| {
            ProviderError::protocol(format!("malformed JSON in an Ollama stream line: {e}"))
        })?;
        self.decode_line(&parsed)
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn end(&mut self, cause: Option<ProviderError>) -> Result<Vec<StreamEvent>, ProviderError> {
        Err(cause.unwrap_or_else(|| {
            ProviderError::protocol("truncated stream: it ended before the line with done: true")
        }))
    }
}

/// Decodes a whole (non-streaming) `/api/chat` answer into the same events.
pub fn decode_response(
    value: &Value,
    prompt_estimate: u64,
) -> Result<Vec<StreamEvent>, ProviderError> {
    let mut line = Line::deserialize(value)
        .map_err(|e| ProviderError::protocol(format!("malformed Ollama answer: {e}")))?;
    // A whole answer is complete by definition, whatever its `done` says.
    line.done = true;
    OllamaDecoder::new(prompt_estimate).decode_line(&line)
}
