//! Embeddings on every wire that has them: OpenAI's `/embeddings` (OpenAI and the compatible
//! families), Azure's deployment `/embeddings`, Gemini's `:batchEmbedContents`, Ollama's
//! `/api/embed`, and `mock/` (vectors made from a hash of the text, for the demo and tests).
//! Anthropic has no embeddings API: a request to it is refused before any network.
//!
//! A request enters as [`Operation::Embedding`](super::Operation) on a `ChatRequest` (the
//! router routes it as any other) and leaves as the same three events on every wire: a
//! [`Passthrough`] whose `top` members are OpenAI's `"data": [{"object": "embedding",
//! "index": i, "embedding": …}, …]`, the [`Usage`] (input tokens only: reported, else
//! estimated), and `Done`. An OpenAI-compatible upstream's `data` is passed back as it was
//! sent (base64 or floats, as the client asked); for the other wires llmux writes it, as
//! base64 little-endian `f32`s when the client asked for `encoding_format: "base64"` (the
//! OpenAI SDKs ask for it by default).

use base64::Engine;
use rand::RngExt;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::http::{HttpClient, json_body_events, malformed_json, scrub_errors, secret_header};
use super::mock::{DEFAULT_MOCK_ERROR_STATUS, MOCK_ERROR_MESSAGE};
use super::openai::DEFAULT_AZURE_API_VERSION;
use super::outbound::{self, Secrets};
use super::{
    ChatRequest, ErrorClass, EventStream, Members, Passthrough, ProviderError, StreamEvent, Usage,
    estimate_tokens,
};
use crate::config::{Deployment, Wire};

/// Dimensions of a `mock/` embedding when the request names none.
pub const MOCK_DIMENSIONS: usize = 16;
/// The most dimensions a `mock/` embedding has.
const MAX_MOCK_DIMENSIONS: usize = 4096;

/// The input of an embeddings request, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// One or more texts.
    Texts(Vec<String>),
    /// One or more lists of token ids (only OpenAI-compatible upstreams take them).
    Tokens(Vec<Vec<u64>>),
}

/// An embeddings `input` that is none of the shapes OpenAI takes; a client's bad request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("`input` is empty; give a string or a list of strings")]
    Empty,
    /// A list whose items are neither all strings nor all (lists of) token ids.
    #[error(
        "`input` must be a string, a list of strings, a list of token ids or a list of lists \
         of token ids"
    )]
    MixedList,
    /// Neither a string nor a list.
    #[error("`input` must be a string or a list of strings")]
    NotText,
}

impl From<InputError> for ProviderError {
    fn from(e: InputError) -> ProviderError {
        ProviderError::new(ErrorClass::BadRequest, e.to_string())
    }
}

impl Input {
    /// Reads OpenAI's `input`: a string, a list of strings, a list of token ids, or a list
    /// of lists of token ids; none of them empty.
    pub fn parse(v: &Value) -> Result<Input, InputError> {
        let tokens =
            |v: &Value| -> Option<Vec<u64>> { v.as_array()?.iter().map(Value::as_u64).collect() };
        match v {
            Value::String(s) => Ok(Input::Texts(vec![s.clone()])),
            Value::Array(items) if items.is_empty() => Err(InputError::Empty),
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(Input::Texts(
                items
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
            )),
            Value::Array(items) if items.iter().all(Value::is_u64) => {
                Ok(Input::Tokens(vec![tokens(v).unwrap_or_default()]))
            }
            Value::Array(items) => items
                .iter()
                .map(|i| tokens(i).filter(|t| !t.is_empty()))
                .collect::<Option<Vec<_>>>()
                .map(Input::Tokens)
                .ok_or(InputError::MixedList),
            _ => Err(InputError::NotText),
        }
    }

    /// How many embeddings it asks for.
    pub fn len(&self) -> usize {
        match self {
            Input::Texts(t) => t.len(),
            Input::Tokens(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its texts joined (for the router's estimates; token ids are not text).
    pub fn joined_text(&self) -> String {
        match self {
            Input::Texts(t) => t.join("\n"),
            Input::Tokens(_) => String::new(),
        }
    }

    /// Its size in tokens, estimated (token ids are counted).
    pub fn estimated_tokens(&self) -> u64 {
        match self {
            Input::Texts(t) => t.iter().map(|s| estimate_tokens(s)).sum(),
            Input::Tokens(t) => t.iter().map(|ids| ids.len() as u64).sum(),
        }
    }
}

/// Sends the embeddings request `input` (with `request.extra`'s fields) to `d`.
pub async fn open(
    client: &HttpClient,
    d: &Deployment,
    input: &Value,
    request: &ChatRequest,
) -> Result<EventStream, ProviderError> {
    let parsed = Input::parse(input)?;
    let base64 = request.extra.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let dimensions = request
        .extra
        .get("dimensions")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0);
    let estimate = parsed.estimated_tokens();
    match d.wire {
        Wire::OpenAi | Wire::Azure => {
            let mut body = serde_json::Map::new();
            body.insert("model".into(), Value::String(d.model.clone()));
            body.insert("input".into(), input.clone());
            for (k, v) in &request.extra {
                body.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let headers = super::openai::headers(d, false)?;
            let response = client
                .post_json(&openai_endpoint(d), headers, &body, Secrets::of(d))
                .await?;
            let events = json_body_events(response, move |body| decode_openai(body, estimate));
            Ok(scrub_errors(events, Secrets::of(d)))
        }
        Wire::Gemini => {
            let texts = texts_for(&parsed, d)?;
            let model = d.model.strip_prefix("models/").unwrap_or(&d.model);
            let requests: Vec<Value> = texts
                .iter()
                .map(|t| {
                    let mut r = json!({
                        "model": format!("models/{model}"),
                        "content": { "parts": [{ "text": t }] },
                    });
                    if let Some(n) = dimensions {
                        r["outputDimensionality"] = json!(n);
                    }
                    r
                })
                .collect();
            let mut headers = HeaderMap::new();
            if let Some(key) = d.api_key.as_ref().filter(|k| !k.is_empty()) {
                headers.insert("x-goog-api-key", secret_header(key.expose())?);
            }
            outbound::apply(d, &mut headers)?;
            let response = client
                .post_json(
                    &gemini_endpoint(d),
                    headers,
                    &json!({ "requests": requests }),
                    Secrets::of(d),
                )
                .await?;
            let events =
                json_body_events(response, move |body| decode_gemini(body, estimate, base64));
            Ok(scrub_errors(events, Secrets::of(d)))
        }
        Wire::OllamaChat => {
            let texts = texts_for(&parsed, d)?;
            let mut body = json!({ "model": d.model, "input": texts });
            if let Some(n) = dimensions {
                body["dimensions"] = json!(n);
            }
            let mut headers = HeaderMap::new();
            if let Some(key) = d.api_key.as_ref().filter(|k| !k.is_empty()) {
                headers.insert(
                    AUTHORIZATION,
                    secret_header(&format!("Bearer {}", key.expose()))?,
                );
            }
            outbound::apply(d, &mut headers)?;
            let url = format!("{}/api/embed", d.api_base.trim_end_matches('/'));
            let response = client
                .post_json(&url, headers, &body, Secrets::of(d))
                .await?;
            let events =
                json_body_events(response, move |body| decode_ollama(body, estimate, base64));
            Ok(scrub_errors(events, Secrets::of(d)))
        }
        Wire::Mock => mock(d, &parsed, dimensions, base64).await,
        Wire::Anthropic => Err(ProviderError::new(
            ErrorClass::BadRequest,
            format!(
                "deployment {}: Anthropic has no embeddings API; put an embedding model \
                 (OpenAI, Azure, Gemini, Ollama) in this group",
                d.id
            ),
        )),
    }
}

/// The texts of `input`, for a wire that takes no token ids.
fn texts_for(input: &Input, d: &Deployment) -> Result<Vec<String>, ProviderError> {
    match input {
        Input::Texts(t) => Ok(t.clone()),
        Input::Tokens(_) => Err(ProviderError::new(
            ErrorClass::BadRequest,
            format!(
                "deployment {}: token-id input needs an OpenAI-compatible deployment; send text",
                d.id
            ),
        )),
    }
}

/// `{api_base}/embeddings`, or Azure's deployment URL.
pub fn openai_endpoint(d: &Deployment) -> String {
    let base = d.api_base.trim_end_matches('/');
    match d.wire {
        Wire::Azure => {
            let base = base.strip_suffix("/openai").unwrap_or(base);
            let version = d
                .api_version
                .as_deref()
                .unwrap_or(DEFAULT_AZURE_API_VERSION);
            format!(
                "{base}/openai/deployments/{}/embeddings?api-version={version}",
                d.model
            )
        }
        _ => format!("{base}/embeddings"),
    }
}

/// Gemini's batch URL; `api_base` with or without `/v1beta`.
pub fn gemini_endpoint(d: &Deployment) -> String {
    let base = d.api_base.trim_end_matches('/');
    let base = base.strip_suffix("/v1beta").unwrap_or(base);
    let model = d.model.strip_prefix("models/").unwrap_or(&d.model);
    format!("{base}/v1beta/models/{model}:batchEmbedContents")
}

/// The three events of an answer.
fn events(data: &str, usage: Usage) -> Vec<StreamEvent> {
    let mut top = Members::default();
    top.push("data", data);
    vec![
        StreamEvent::Passthrough(Box::new(Passthrough {
            top,
            ..Passthrough::default()
        })),
        StreamEvent::Usage(usage),
        StreamEvent::Done {
            finish_reason: None,
        },
    ]
}

fn estimated(input: u64) -> Usage {
    Usage {
        input,
        estimated: true,
        ..Usage::default()
    }
}

fn reported(input: u64) -> Usage {
    Usage {
        input,
        ..Usage::default()
    }
}

#[derive(Deserialize)]
struct OpenAiAnswer<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// An OpenAI-compatible answer: its `data` passed back as sent.
fn decode_openai(body: &[u8], estimate: u64) -> Result<Vec<StreamEvent>, ProviderError> {
    let answer: OpenAiAnswer = serde_json::from_slice(body).map_err(|e| malformed_json(&e))?;
    if let Some(error) = answer.error.filter(|e| !e.is_null()) {
        return Err(super::http::inband_error(&error));
    }
    let data = answer
        .data
        .filter(|d| d.get().trim_start().starts_with('['))
        .ok_or_else(|| ProviderError::protocol("the embeddings answer has no `data` list"))?;
    let usage = answer
        .usage
        .and_then(|u| u.prompt_tokens.or(u.total_tokens))
        .map_or_else(|| estimated(estimate), reported);
    Ok(events(data.get(), usage))
}

/// A Gemini batch answer: `{"embeddings": [{"values": […]}, …]}` (no usage: estimated).
fn decode_gemini(
    body: &[u8],
    estimate: u64,
    base64: bool,
) -> Result<Vec<StreamEvent>, ProviderError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        embeddings: Option<Vec<Embedding>>,
        #[serde(default)]
        error: Option<Value>,
    }
    #[derive(Deserialize)]
    struct Embedding {
        values: Vec<f32>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| malformed_json(&e))?;
    if let Some(error) = answer.error.filter(|e| !e.is_null()) {
        return Err(super::http::inband_error(&error));
    }
    let vectors: Vec<Vec<f32>> = answer
        .embeddings
        .ok_or_else(|| ProviderError::protocol("the Gemini answer has no `embeddings`"))?
        .into_iter()
        .map(|e| e.values)
        .collect();
    Ok(events(&data_json(&vectors, base64), estimated(estimate)))
}

/// An Ollama answer: `{"embeddings": [[…], …], "prompt_eval_count": n}`.
fn decode_ollama(
    body: &[u8],
    estimate: u64,
    base64: bool,
) -> Result<Vec<StreamEvent>, ProviderError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        embeddings: Option<Vec<Vec<f32>>>,
        #[serde(default)]
        prompt_eval_count: Option<u64>,
        #[serde(default)]
        error: Option<Value>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| malformed_json(&e))?;
    if let Some(error) = answer.error.filter(|e| !e.is_null()) {
        return Err(super::http::inband_error(&error));
    }
    let vectors = answer
        .embeddings
        .ok_or_else(|| ProviderError::protocol("the Ollama answer has no `embeddings`"))?;
    let usage = answer
        .prompt_eval_count
        .map_or_else(|| estimated(estimate), reported);
    Ok(events(&data_json(&vectors, base64), usage))
}

/// OpenAI's `data` list for `vectors`: floats, or base64 of little-endian `f32`s.
pub fn data_json(vectors: &[Vec<f32>], base64: bool) -> String {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    Value::Array(data).to_string()
}

/// `mock/`: a unit vector per text made from its hash (the same text, the same vector),
/// failing as the deployment's `mock_error_rate` says.
async fn mock(
    d: &Deployment,
    input: &Input,
    dimensions: Option<u64>,
    base64: bool,
) -> Result<EventStream, ProviderError> {
    let params = d.mock.clone().unwrap_or_default();
    let rate = params.error_rate;
    let fail = rate >= 1.0 || (rate > 0.0 && rand::rng().random::<f64>() < rate);
    tokio::time::sleep(params.ttft).await;
    if fail {
        return Err(ProviderError::from_http(
            params.error.unwrap_or(DEFAULT_MOCK_ERROR_STATUS),
            MOCK_ERROR_MESSAGE,
            None,
        ));
    }
    let dims = dimensions.map_or(MOCK_DIMENSIONS, |n| {
        (n as usize).clamp(1, MAX_MOCK_DIMENSIONS)
    });
    let keys: Vec<String> = match input {
        Input::Texts(t) => t.clone(),
        Input::Tokens(t) => t.iter().map(|ids| format!("{ids:?}")).collect(),
    };
    let vectors: Vec<Vec<f32>> = keys.iter().map(|k| mock_vector(k, dims)).collect();
    let usage = reported(input.estimated_tokens());
    Ok(Box::pin(futures::stream::iter(
        events(&data_json(&vectors, base64), usage)
            .into_iter()
            .map(Ok),
    )))
}

/// A unit vector of `dims` numbers drawn from SHA-256 of `text` (and the block number).
pub fn mock_vector(text: &str, dims: usize) -> Vec<f32> {
    use sha2::{Digest, Sha256};
    let mut v = Vec::with_capacity(dims);
    let mut block = 0u32;
    while v.len() < dims {
        let digest = Sha256::new()
            .chain_update(block.to_le_bytes())
            .chain_update(text.as_bytes())
            .finalize();
        for pair in digest.chunks(2) {
            if v.len() == dims {
                break;
            }
            let n = u16::from_le_bytes([pair[0], pair[1]]);
            v.push(f32::from(n) / 32767.5 - 1.0);
        }
        block += 1;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_takes_openai_s_four_shapes_and_refuses_the_rest() {
        assert_eq!(
            Input::parse(&json!("a")),
            Ok(Input::Texts(vec!["a".into()]))
        );
        assert_eq!(Input::parse(&json!(["a", "b"])).map(|i| i.len()), Ok(2));
        assert_eq!(
            Input::parse(&json!([1, 2, 3])),
            Ok(Input::Tokens(vec![vec![1, 2, 3]]))
        );
        assert_eq!(
            Input::parse(&json!([[1], [2, 3]])),
            Ok(Input::Tokens(vec![vec![1], vec![2, 3]]))
        );
        for (bad, why) in [
            (json!([]), InputError::Empty),
            (json!(5), InputError::NotText),
            (json!(["a", 1]), InputError::MixedList),
            (json!([[]]), InputError::MixedList),
            (json!(null), InputError::NotText),
        ] {
            assert_eq!(Input::parse(&bad), Err(why), "{bad}");
        }
        assert_eq!(
            InputError::Empty.to_string(),
            "`input` is empty; give a string or a list of strings"
        );
        let e = ProviderError::from(InputError::MixedList);
        assert_eq!(e.class, ErrorClass::BadRequest);
        assert_eq!(
            e.message,
            "`input` must be a string, a list of strings, a list of token ids or a list of lists \
             of token ids"
        );
    }

    #[test]
    fn base64_data_is_little_endian_f32s() {
        let data: Value = serde_json::from_str(&data_json(&[vec![1.0, -0.5]], true)).unwrap();
        let text = data[0]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        let back: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(back, vec![1.0, -0.5]);
        let floats: Value = serde_json::from_str(&data_json(&[vec![0.25]], false)).unwrap();
        assert_eq!(
            floats,
            json!([{"object": "embedding", "index": 0, "embedding": [0.25]}])
        );
    }

    #[test]
    fn mock_vectors_are_unit_length_and_the_same_for_the_same_text() {
        let a = mock_vector("hello", 40);
        assert_eq!(a.len(), 40);
        assert!((a.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
        assert_eq!(a, mock_vector("hello", 40));
        assert_ne!(a, mock_vector("hello!", 40));
    }
}
