//! Gemini (`generativelanguage.googleapis.com`, API key in `x-goog-api-key`).
//!
//! A [`ChatRequest`] enters [`open`] and [`body`] writes it as `contents` (roles `user` /
//! `model`, with images, function calls and responses), a `systemInstruction`, a
//! `generationConfig` and `tools`; streaming uses `:streamGenerateContent?alt=sse`, else
//! `:generateContent`. [`GeminiDecoder`] turns each SSE `GenerateContentResponse` into
//! [`StreamEvent`]s: part text (parts marked `thought` are reasoning), `functionCall` parts
//! as whole tool calls (Gemini does not split them; ids made up when it sends none),
//! `usageMetadata` (thought tokens counted in output and as reasoning), and `finishReason`
//! (`STOP` after function calls is reported as `tool_calls`). Gemini sends no `[DONE]`: the answer ends at EOF, and an EOF before any
//! finish reason is a truncated stream. Safety stops are content-policy errors.

use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::http::{HttpClient, inband_error, json_events, scrub_errors, secret_header};
use super::outbound::{self, Secrets};
use super::sse::{SseEvent, UsageTracker, WireDecoder, drive_sse};
use super::tools::generated_id;
use super::{
    ChatRequest, ErrorClass, EventStream, ProviderError, StreamEvent, ToolCallDelta, Usage,
    estimate_prompt_tokens,
};
use crate::config::Deployment;

mod body;

pub use body::{THOUGHT_SEPARATOR, clean_schema, request_body};

/// Finish reasons that mean the provider refused the content.
const POLICY_FINISH_REASONS: [&str; 6] = [
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "IMAGE_SAFETY",
    "RECITATION",
];
/// A finish reason that is a placeholder, not an end.
const UNSPECIFIED_FINISH: &str = "FINISH_REASON_UNSPECIFIED";

/// Sends the request and returns its event stream (see the module docs).
pub async fn open(
    client: &HttpClient,
    deployment: &Deployment,
    request: &ChatRequest,
) -> Result<EventStream, ProviderError> {
    let mut headers = HeaderMap::new();
    if request.stream {
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    if let Some(key) = deployment.api_key.as_ref().filter(|k| !k.is_empty()) {
        headers.insert("x-goog-api-key", secret_header(key.expose())?);
    }
    outbound::apply(deployment, &mut headers)?;
    let body = request_body(deployment, request)?;
    let url = endpoint(deployment, request.stream);
    let response = client
        .post_json(&url, headers, &body, Secrets::of(deployment))
        .await?;
    let prompt = estimate_prompt_tokens(&request.messages);
    let events = if request.stream {
        drive_sse(response, GeminiDecoder::new(prompt))
    } else {
        json_events(response, move |v| decode_response(&v, prompt))
    };
    Ok(scrub_errors(events, Secrets::of(deployment)))
}

/// The model's URL; `api_base` may be given with or without `/v1beta`, the model with or
/// without its `models/` prefix.
pub fn endpoint(deployment: &Deployment, stream: bool) -> String {
    let base = deployment.api_base.trim_end_matches('/');
    let base = base.strip_suffix("/v1beta").unwrap_or(base);
    let model = deployment
        .model
        .strip_prefix("models/")
        .unwrap_or(&deployment.model);
    if stream {
        format!("{base}/v1beta/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("{base}/v1beta/models/{model}:generateContent")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    #[serde(default)]
    function_call: Option<FunctionCall>,
    #[serde(default)]
    thought_signature: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
}

impl UsageMetadata {
    fn normalize(&self) -> Usage {
        Usage {
            input: self.prompt_token_count,
            output: self
                .candidates_token_count
                .saturating_add(self.thoughts_token_count),
            cached_input: self.cached_content_token_count,
            cache_write: 0,
            reasoning: self.thoughts_token_count,
            estimated: false,
        }
    }
}

/// Decodes Gemini's SSE chunks (see the module docs).
#[derive(Debug)]
pub struct GeminiDecoder {
    usage: UsageTracker,
    finish_reason: Option<String>,
    /// Tool calls seen so far (the next one's index).
    tool_calls: u32,
    done: bool,
}

impl GeminiDecoder {
    pub fn new(prompt_estimate: u64) -> GeminiDecoder {
        GeminiDecoder {
            usage: UsageTracker::new(prompt_estimate),
            finish_reason: None,
            tool_calls: 0,
            done: false,
        }
    }

    /// One `GenerateContentResponse`: its text and thoughts; usage and finish are recorded.
    fn decode_value(&mut self, response: &Response) -> Result<Vec<StreamEvent>, ProviderError> {
        if let Some(error) = &response.error {
            return Err(inband_error(error));
        }
        if let Some(reason) = response
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_deref())
        {
            return Err(ProviderError::new(
                ErrorClass::ContentPolicy,
                format!("Gemini blocked the prompt ({reason})"),
            ));
        }
        if let Some(meta) = &response.usage_metadata {
            self.usage.report(meta.normalize());
        }
        let mut out = Vec::new();
        let Some(candidate) = response.candidates.iter().find(|c| c.index == 0) else {
            return Ok(out);
        };
        let parts = candidate.content.iter().flat_map(|c| c.parts.iter());
        for part in parts {
            if let Some(call) = &part.function_call {
                out.push(self.tool_call(call, part.thought_signature.as_deref()));
                continue;
            }
            let Some(text) = part.text.as_ref().filter(|t| !t.is_empty()) else {
                continue;
            };
            self.usage.saw_text(text);
            out.push(if part.thought {
                StreamEvent::Reasoning(text.clone())
            } else {
                StreamEvent::Delta(text.clone())
            });
        }
        if let Some(reason) = candidate
            .finish_reason
            .as_deref()
            .filter(|r| *r != UNSPECIFIED_FINISH)
        {
            if POLICY_FINISH_REASONS.contains(&reason) {
                return Err(ProviderError::new(
                    ErrorClass::ContentPolicy,
                    format!("Gemini stopped the answer (finishReason {reason})"),
                ));
            }
            self.finish_reason = Some(match normalize_finish(reason) {
                stop if stop == "stop" && self.tool_calls > 0 => "tool_calls".to_string(),
                other => other,
            });
        }
        Ok(out)
    }

    /// A whole `functionCall` part as one tool call; its thought signature rides in the id.
    fn tool_call(&mut self, call: &FunctionCall, signature: Option<&str>) -> StreamEvent {
        let index = self.tool_calls;
        self.tool_calls += 1;
        let arguments = match &call.args {
            Some(v @ Value::Object(_)) => v.to_string(),
            _ => "{}".to_string(),
        };
        self.usage.saw_text(&arguments);
        let mut id = call
            .id
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(generated_id);
        if let Some(sig) = signature.filter(|s| !s.is_empty()) {
            id = format!("{id}{THOUGHT_SEPARATOR}{sig}");
        }
        StreamEvent::ToolCall(ToolCallDelta {
            index,
            id: Some(id),
            name: Some(call.name.clone()),
            arguments,
        })
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

/// Gemini's finish reasons in OpenAI's words, as LiteLLM reports them.
fn normalize_finish(reason: &str) -> String {
    match reason {
        "STOP" => "stop".to_string(),
        "MAX_TOKENS" => "length".to_string(),
        other => other.to_ascii_lowercase(),
    }
}

impl WireDecoder for GeminiDecoder {
    type Item = SseEvent;

    fn decode_event(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, ProviderError> {
        if self.done {
            return Ok(Vec::new());
        }
        let response: Response = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::protocol(format!("malformed JSON in a Gemini stream chunk: {e}"))
        })?;
        self.decode_value(&response)
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn end(&mut self, cause: Option<ProviderError>) -> Result<Vec<StreamEvent>, ProviderError> {
        if self.finish_reason.is_some() {
            return Ok(self.close());
        }
        Err(cause.unwrap_or_else(|| {
            ProviderError::protocol("truncated stream: it ended before a finishReason")
        }))
    }
}

/// Decodes a whole (non-streaming) `generateContent` answer into the same events.
pub fn decode_response(
    value: &Value,
    prompt_estimate: u64,
) -> Result<Vec<StreamEvent>, ProviderError> {
    let response = Response::deserialize(value)
        .map_err(|e| ProviderError::protocol(format!("malformed Gemini answer: {e}")))?;
    let mut decoder = GeminiDecoder::new(prompt_estimate);
    let mut out = decoder.decode_value(&response)?;
    out.extend(decoder.close());
    Ok(out)
}
