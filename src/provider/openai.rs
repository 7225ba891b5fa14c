//! OpenAI chat completions, spoken by OpenAI itself, Azure OpenAI and every OpenAI-compatible
//! family (DeepSeek, OpenRouter, Groq, vLLM, a LiteLLM proxy, …).
//!
//! A [`ChatRequest`] and a [`Deployment`] enter [`open`], which builds the URL (Azure's
//! deployment URL with `api-version`, else `{api_base}/chat/completions`), the auth header
//! (`api-key` for Azure, else a bearer key when one is set) and the JSON body, and returns the
//! stream once the status is a success. [`OpenAiDecoder`] turns `chat.completion.chunk` SSE
//! events into [`StreamEvent`]s: content, reasoning (DeepSeek's `reasoning_content`,
//! OpenRouter's `reasoning`), usage (asked for with `stream_options.include_usage`, which may
//! arrive after `finish_reason`), and `Done` at `[DONE]`. In-band `{"error": …}` objects after
//! a 200 become classified errors. Tools, tool calls, tool results and image parts are written
//! in OpenAI's own shape; streamed `delta.tool_calls` fragments become
//! [`StreamEvent::ToolCall`]s, and `extra` parameters pass through as they are.

use std::collections::VecDeque;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

use super::http::{
    HttpClient, inband_error, json_body_events, malformed_json, scrub_errors, secret_header,
};
use super::outbound::{self, Secrets};
use super::sse::{Decoded, SseEvent, UsageTracker, WireDecoder, drive_sse};
use super::tools::generated_id;
use super::{
    ChatRequest, ErrorClass, EventStream, Passthrough, ProviderError, StreamEvent, ToolCallDelta,
    estimate_prompt_tokens,
};
use crate::config::{Deployment, Wire};

mod body;
mod chunk;

use chunk::{Choice, Chunk, Text, WireFunction, WireToolCall, WireUsage};

pub use body::{RequestBody, message_json, request_body, tool_choice_json, tool_json};

/// Azure's API version when the deployment names none (the current GA version).
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
/// The data line that ends an OpenAI stream.
const DONE_SENTINEL: &str = "[DONE]";

/// Sends the request and returns its event stream (see the module docs).
pub async fn open(
    client: &HttpClient,
    deployment: &Deployment,
    request: &ChatRequest,
) -> Result<EventStream, ProviderError> {
    let url = endpoint(deployment);
    let headers = headers(deployment, request.stream)?;
    let body = request_body(deployment, request);
    let response = client
        .post_json(&url, headers, &body, Secrets::of(deployment))
        .await?;
    let prompt = estimate_prompt_tokens(&request.messages);
    let events = if request.stream {
        drive_sse(response, OpenAiDecoder::new(prompt))
    } else {
        json_body_events(response, move |body| decode_body(body, prompt))
    };
    Ok(scrub_errors(events, Secrets::of(deployment)))
}

/// The chat completions URL of a deployment.
pub fn endpoint(deployment: &Deployment) -> String {
    let base = deployment.api_base.trim_end_matches('/');
    match deployment.wire {
        Wire::Azure => {
            let base = base.strip_suffix("/openai").unwrap_or(base);
            let version = deployment
                .api_version
                .as_deref()
                .unwrap_or(DEFAULT_AZURE_API_VERSION);
            format!(
                "{base}/openai/deployments/{}/chat/completions?api-version={version}",
                deployment.model
            )
        }
        _ => format!("{base}/chat/completions"),
    }
}

pub(super) fn headers(deployment: &Deployment, stream: bool) -> Result<HeaderMap, ProviderError> {
    let mut h = HeaderMap::new();
    if stream {
        h.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    if let Some(key) = deployment.api_key.as_ref().filter(|k| !k.is_empty()) {
        match deployment.wire {
            Wire::Azure => {
                h.insert("api-key", secret_header(key.expose())?);
            }
            _ => {
                h.insert(
                    AUTHORIZATION,
                    secret_header(&format!("Bearer {}", key.expose()))?,
                );
            }
        }
    }
    outbound::apply(deployment, &mut h)?;
    Ok(h)
}

/// Tool-call pieces of one delta (or whole message) as events. `seen` holds the indexes
/// already started, so a call whose first piece lacks an id gets one made up.
fn tool_call_events(
    calls: &[WireToolCall],
    seen: &mut Vec<u32>,
    usage: &mut UsageTracker,
) -> Vec<StreamEvent> {
    let mut out = Vec::with_capacity(calls.len());
    for (pos, c) in calls.iter().enumerate() {
        let index = c.index.unwrap_or(pos as u32);
        let f = c.function.as_ref();
        let arguments = f.map(WireFunction::arguments_text).unwrap_or_default();
        usage.saw_text(&arguments);
        let mut id = owned(c.id.as_ref());
        if !seen.contains(&index) {
            seen.push(index);
            id = id.or_else(|| Some(generated_id()));
        }
        out.push(StreamEvent::ToolCall(ToolCallDelta {
            index,
            id,
            name: owned(f.and_then(|f| f.name.as_ref())),
            arguments,
        }));
    }
    out
}

/// A text that is not empty, as a `String`.
fn owned(text: Option<&Text>) -> Option<String> {
    text.filter(|t| !t.0.is_empty()).map(|t| t.0.to_string())
}

/// Decodes `chat.completion.chunk` events (see the module docs).
#[derive(Debug)]
pub struct OpenAiDecoder {
    usage: UsageTracker,
    finish_reason: Option<String>,
    /// Tool-call indexes already started.
    tool_indexes: Vec<u32>,
    done: bool,
}

impl OpenAiDecoder {
    /// `prompt_estimate` is what usage says for input when the provider reports none.
    pub fn new(prompt_estimate: u64) -> OpenAiDecoder {
        OpenAiDecoder {
            usage: UsageTracker::new(prompt_estimate),
            finish_reason: None,
            tool_indexes: Vec::new(),
            done: false,
        }
    }

    fn close(&mut self) -> Vec<StreamEvent> {
        self.done = true;
        vec![
            StreamEvent::Usage(self.usage.finish()),
            StreamEvent::Done {
                finish_reason: self.finish_reason.clone(),
            },
        ]
    }
}

impl WireDecoder for OpenAiDecoder {
    type Item = SseEvent;

    fn decode_event(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, ProviderError> {
        let mut queue = VecDeque::new();
        self.decode_into(event, &mut Decoded::new(&mut queue))?;
        Ok(queue.into_iter().filter_map(Result::ok).collect())
    }

    fn decode_into(&mut self, event: &SseEvent, out: &mut Decoded) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim();
        if data == DONE_SENTINEL {
            for event in self.close() {
                out.push(event);
            }
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut chunk = chunk::read(data).map_err(|e| {
            ProviderError::protocol(format!("malformed JSON in an OpenAI stream chunk: {e}"))
        })?;
        if let Some(error) = &chunk.error {
            return Err(inband_error(error));
        }
        if let Some(usage) = &chunk.usage {
            self.usage.report(usage.normalize());
        }
        if let Some(p) = take_passthrough(&mut chunk) {
            out.push(StreamEvent::Passthrough(p));
        }
        let Some(choice) = &chunk.choice else {
            return Ok(());
        };
        if let Some(delta) = &choice.delta {
            if let Some(Text(r)) = delta
                .reasoning_content
                .as_ref()
                .or(delta.reasoning.as_ref())
                && !r.is_empty()
            {
                self.usage.saw_text(r);
                out.push(StreamEvent::Reasoning(r.to_string()));
            }
            if let Some(Text(c)) = &delta.content
                && !c.is_empty()
            {
                self.usage.saw_text(c);
                out.push(StreamEvent::Delta(c.to_string()));
            }
            if let Some(calls) = &delta.tool_calls {
                for event in tool_call_events(calls, &mut self.tool_indexes, &mut self.usage) {
                    out.push(event);
                }
            }
        }
        if let Some(Text(reason)) = &choice.finish_reason {
            finish_error(reason)?;
            self.finish_reason = Some(reason.to_string());
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn end(&mut self, cause: Option<ProviderError>) -> Result<Vec<StreamEvent>, ProviderError> {
        // A finish_reason means the answer is whole even if [DONE] (or the usage chunk) was
        // lost: close it rather than fail a complete answer.
        if self.finish_reason.is_some() {
            return Ok(self.close());
        }
        Err(cause.unwrap_or_else(|| {
            ProviderError::protocol("truncated stream: it ended before [DONE] or a finish_reason")
        }))
    }
}

/// Finish reasons that are failures rather than answers.
fn finish_error(reason: &str) -> Result<(), ProviderError> {
    match reason {
        "content_filter" => Err(ProviderError::new(
            ErrorClass::ContentPolicy,
            "the provider's content filter stopped the answer",
        )),
        // OpenRouter ends a failed generation this way (usually with an error object first).
        "error" => Err(ProviderError::new(
            ErrorClass::Server,
            "the upstream ended the answer with an error",
        )),
        _ => Ok(()),
    }
}

/// A whole answer's body decoded into the same events as a stream. An answer that does not
/// read as a chat completion is read again as a JSON tree, whose errors say what is wrong,
/// and which may hold an in-band error.
fn decode_body(body: &[u8], prompt_estimate: u64) -> Result<Vec<StreamEvent>, ProviderError> {
    let read = std::str::from_utf8(body).ok().map(chunk::read);
    let chunk = match read {
        Some(Ok(chunk)) => chunk,
        failed => {
            // Not UTF-8 is not JSON either: the tree's error says where.
            let value: Value = serde_json::from_slice(body).map_err(|e| malformed_json(&e))?;
            if let Some(error) = value.get("error") {
                return Err(inband_error(error));
            }
            let why = failed
                .and_then(Result::err)
                .map_or_else(|| "not UTF-8".to_string(), |e| e.to_string());
            return Err(ProviderError::protocol(format!(
                "malformed chat completion: {why}"
            )));
        }
    };
    if let Some(error) = &chunk.error {
        return Err(inband_error(error));
    }
    decode_chunk(chunk, prompt_estimate)
}

/// The members of `chunk` llmux does not read, taken out of it, as the event that passes
/// them back (`None` when there are none).
fn take_passthrough(chunk: &mut Chunk) -> Option<Box<Passthrough>> {
    let kept =
        |c: &Choice| !c.extra.is_empty() || c.delta.as_ref().is_some_and(|d| !d.extra.is_empty());
    if chunk.extra.is_empty() && chunk.others.is_empty() && !chunk.choice.as_ref().is_some_and(kept)
    {
        return None;
    }
    let mut p = Passthrough {
        top: std::mem::take(&mut chunk.extra),
        choices: chunk.others.iter().map(|&raw| raw.into()).collect(),
        ..Passthrough::default()
    };
    if let Some(c) = &mut chunk.choice {
        p.choice = std::mem::take(&mut c.extra);
        if let Some(d) = &mut c.delta {
            p.delta = std::mem::take(&mut d.extra);
            p.carries = d.carries();
        }
    }
    (!p.is_empty()).then(|| Box::new(p))
}

/// The events of a whole answer without an in-band error.
fn decode_chunk(mut chunk: Chunk, prompt_estimate: u64) -> Result<Vec<StreamEvent>, ProviderError> {
    let passthrough = take_passthrough(&mut chunk);
    let choice = chunk
        .choice
        .ok_or_else(|| ProviderError::protocol("a chat completion without choices"))?;
    let mut out = Vec::new();
    if let Some(p) = passthrough {
        out.push(StreamEvent::Passthrough(p));
    }
    let mut text = String::new();
    if let Some(message) = &choice.delta {
        if let Some(Text(r)) = message
            .reasoning_content
            .as_ref()
            .or(message.reasoning.as_ref())
            && !r.is_empty()
        {
            text.push_str(r);
            out.push(StreamEvent::Reasoning(r.to_string()));
        }
        if let Some(Text(c)) = &message.content
            && !c.is_empty()
        {
            text.push_str(c);
            out.push(StreamEvent::Delta(c.to_string()));
        }
        if let Some(calls) = &message.tool_calls {
            let mut tracker = UsageTracker::new(0);
            for event in tool_call_events(calls, &mut Vec::new(), &mut tracker) {
                if let StreamEvent::ToolCall(c) = &event {
                    text.push_str(&c.arguments);
                }
                out.push(event);
            }
        }
    }
    let finish_reason = choice.finish_reason.map(|Text(r)| r.into_owned());
    if let Some(reason) = &finish_reason {
        finish_error(reason)?;
    }
    let reported = chunk.usage.as_ref().map(WireUsage::normalize);
    out.push(StreamEvent::Usage(UsageTracker::for_whole(
        prompt_estimate,
        reported,
        &text,
    )));
    out.push(StreamEvent::Done { finish_reason });
    Ok(out)
}
