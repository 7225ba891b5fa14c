//! Tools and images in the normalized request: what a [`Message`](super::Message) carries
//! besides its text (image parts, the assistant's tool calls, a tool's result) and what a
//! [`ChatRequest`](super::ChatRequest) offers the model ([`ToolSpec`], [`ToolChoice`]).
//!
//! These types are wire-neutral: `serve` fills them from OpenAI or Anthropic JSON, each
//! provider writes them in its own shape, and decoders report tool calls as they stream as
//! [`ToolCallDelta`]s (an index, the id and name when first seen, a fragment of the
//! arguments), which [`ToolCallBuilder`] folds into whole [`ToolCall`]s.

use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ErrorClass, ProviderError};

/// Prefix of the tool call ids llmux makes up for upstreams that send none (Gemini, Ollama).
pub const GENERATED_ID_PREFIX: &str = "call_llmux_";
/// Random hex digits in a made-up tool call id.
const GENERATED_ID_DIGITS: usize = 16;

/// One piece of a message that holds more than text, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
        /// OpenAI's `detail` (`low`, `high`, `auto`), kept for OpenAI upstreams.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// An `https://` (or other) URL the upstream fetches itself.
    Url { url: String },
    /// The image's bytes, base64-encoded, with their media type (`image/png`).
    Base64 { media_type: String, data: String },
}

impl ImageSource {
    /// A `data:` URL with base64 content becomes [`ImageSource::Base64`]; anything else is a URL.
    pub fn from_url(url: &str) -> ImageSource {
        if let Some(rest) = url.strip_prefix("data:")
            && let Some((meta, data)) = rest.split_once(',')
            && let Some(media_type) = meta.strip_suffix(";base64")
        {
            return ImageSource::Base64 {
                media_type: media_type.to_string(),
                data: data.to_string(),
            };
        }
        ImageSource::Url {
            url: url.to_string(),
        }
    }

    /// The image as OpenAI's `image_url.url`: the URL, or a `data:` URL.
    pub fn to_url(&self) -> String {
        match self {
            ImageSource::Url { url } => url.clone(),
            ImageSource::Base64 { media_type, data } => {
                format!("data:{media_type};base64,{data}")
            }
        }
    }
}

/// A function the model asked to call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text (OpenAI's shape; Anthropic's `input` object serialized).
    pub arguments: String,
}

impl ToolCall {
    /// The arguments as a JSON object for wires that take one (Anthropic `input`, Gemini
    /// `args`, Ollama): empty text is `{}`; text that is not a JSON object is an error
    /// naming the call.
    pub fn arguments_object(&self) -> Result<Value, ArgumentsNotAnObject> {
        if self.arguments.trim().is_empty() {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        match serde_json::from_str::<Value>(&self.arguments) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) | Err(_) => Err(ArgumentsNotAnObject {
                id: self.id.clone(),
                name: self.name.clone(),
            }),
        }
    }
}

/// A tool call in the conversation whose arguments a wire that takes an object cannot send;
/// a bad request (the caller's conversation), never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the arguments of tool call '{id}' ({name}) are not a JSON object")]
pub struct ArgumentsNotAnObject {
    pub id: String,
    pub name: String,
}

impl From<ArgumentsNotAnObject> for ProviderError {
    fn from(e: ArgumentsNotAnObject) -> ProviderError {
        ProviderError::new(ErrorClass::BadRequest, e.to_string())
    }
}

/// A piece of a tool call as it streams: `id` and `name` come with the first piece of each
/// `index`, `arguments` is a fragment to append.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCallDelta {
    /// Which call of the answer (0, 1, … in the order they started).
    pub index: u32,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
}

/// Folds [`ToolCallDelta`]s into whole calls, in the order their indexes first appeared.
#[derive(Debug, Clone, Default)]
pub struct ToolCallBuilder {
    calls: Vec<(u32, ToolCall)>,
}

impl ToolCallBuilder {
    pub fn push(&mut self, delta: &ToolCallDelta) {
        let pos = match self.calls.iter().position(|(i, _)| *i == delta.index) {
            Some(p) => p,
            None => {
                self.calls.push((delta.index, ToolCall::default()));
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[pos].1;
        if let Some(id) = delta.id.as_ref().filter(|s| !s.is_empty()) {
            call.id.clone_from(id);
        }
        if let Some(name) = delta.name.as_ref().filter(|s| !s.is_empty()) {
            call.name.clone_from(name);
        }
        call.arguments.push_str(&delta.arguments);
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The bytes of arguments so far (for token estimates).
    pub fn arguments_len(&self) -> usize {
        self.calls.iter().map(|(_, c)| c.arguments.len()).sum()
    }

    pub fn finish(self) -> Vec<ToolCall> {
        self.calls.into_iter().map(|(_, c)| c).collect()
    }
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema of the arguments (`Null` when none was given).
    #[serde(default)]
    pub parameters: Value,
    /// OpenAI's `strict` (structured outputs), kept for OpenAI upstreams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    /// A provider's own tool (Anthropic's `web_search_20250305`, `bash_…`; an OpenAI tool
    /// whose type is not `function`): passed as written, to that provider's wire only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinTool>,
}

impl ToolSpec {
    pub fn function(name: &str, description: Option<&str>, parameters: Value) -> ToolSpec {
        ToolSpec {
            name: name.to_string(),
            description: description.map(str::to_string),
            parameters,
            strict: None,
            builtin: None,
        }
    }

    /// The schema, or an empty object schema when none was given (Anthropic requires one).
    pub fn schema(&self) -> Value {
        match &self.parameters {
            Value::Object(_) => self.parameters.clone(),
            _ => serde_json::json!({ "type": "object", "properties": {} }),
        }
    }
}

/// A provider-specific tool and the API it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltinTool {
    pub api: ToolApi,
    /// The tool object exactly as the client sent it.
    pub spec: Value,
}

/// The API a built-in tool belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolApi {
    OpenAi,
    Anthropic,
}

/// Whether and which tool the model must call (OpenAI `auto`/`none`/`required`/a function;
/// Anthropic `auto`/`none`/`any`/`tool`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    None,
    /// At least one tool (Anthropic `any`, Gemini `ANY`).
    Required,
    /// This tool.
    Tool {
        name: String,
    },
}

/// A tool call id for upstreams that send none: unique enough within a conversation.
pub fn generated_id() -> String {
    let mut rng = rand::rng();
    let digits: String = (0..GENERATED_ID_DIGITS)
        .map(|_| char::from_digit(rng.random_range(0..16u32), 16).unwrap_or('0'))
        .collect();
    format!("{GENERATED_ID_PREFIX}{digits}")
}

/// A JSON value as the text of an argument string: strings as they are, the rest serialized
/// (some upstreams send `arguments` as an object).
pub fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_become_base64_and_back() {
        let src = ImageSource::from_url("data:image/png;base64,iVBORw0KGgo=");
        assert_eq!(
            src,
            ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "iVBORw0KGgo=".into()
            }
        );
        assert_eq!(src.to_url(), "data:image/png;base64,iVBORw0KGgo=");
        let url = ImageSource::from_url("https://example.com/a.png");
        assert_eq!(url.to_url(), "https://example.com/a.png");
        // Not base64: left as a URL for the upstream to judge.
        assert!(matches!(
            ImageSource::from_url("data:text/plain,hi"),
            ImageSource::Url { .. }
        ));
    }

    #[test]
    fn deltas_fold_into_calls_by_index() {
        let mut b = ToolCallBuilder::default();
        let d = |index, id: Option<&str>, name: Option<&str>, args: &str| ToolCallDelta {
            index,
            id: id.map(Into::into),
            name: name.map(Into::into),
            arguments: args.into(),
        };
        b.push(&d(0, Some("a"), Some("f"), ""));
        b.push(&d(0, None, None, "{\"x\":"));
        b.push(&d(1, Some("b"), Some("g"), "{}"));
        b.push(&d(0, None, None, "1}"));
        let calls = b.finish();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, "{\"x\":1}");
        assert_eq!(calls[0].arguments_object().unwrap()["x"], 1);
        assert_eq!((calls[1].id.as_str(), calls[1].name.as_str()), ("b", "g"));
    }

    #[test]
    fn arguments_object_accepts_empty_and_refuses_non_objects() {
        let call = |a: &str| ToolCall {
            id: "i".into(),
            name: "n".into(),
            arguments: a.into(),
        };
        assert_eq!(call("").arguments_object().unwrap(), serde_json::json!({}));
        let err = call("[1]").arguments_object().unwrap_err();
        assert_eq!(call("{oops").arguments_object(), Err(err.clone()));
        let err = ProviderError::from(err);
        assert_eq!(err.class, ErrorClass::BadRequest);
        assert_eq!(
            err.message,
            "the arguments of tool call 'i' (n) are not a JSON object"
        );
    }
}
