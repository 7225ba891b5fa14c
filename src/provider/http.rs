//! The one HTTP client every networked provider shares, and the edges where HTTP turns into
//! our types.
//!
//! Requests enter as a URL, headers and a JSON body ([`HttpClient::post_json`]); what leaves
//! is either a [`Response`] with a success status, or a [`ProviderError`] already
//! classified: transport failures are worded and classed in one place (`failure`), a non-2xx
//! status becomes [`ProviderError::from_http`] with its (bounded, key-scrubbed) body and
//! Retry-After. A successful response is then read through [`body_stream`] (bounded, errors
//! mid-body are `Network`) or [`json_events`] for the providers' non-streaming answers.
//!
//! Every upstream, `http://` or `https://`, goes through hyper's pooled client with rustls;
//! reqwest instead when the process has a proxy configured ([`Transport`], chosen by the
//! caller: see `transport`). A request that may have reached the upstream is never sent
//! again here: retrying is the router's decision.
//!
//! There is no total timeout here on purpose: the router owns first-token and whole-request
//! deadlines, and dropping a stream drops its connection.

mod conn;
mod failure;
pub mod tap;
mod target;
mod transport;

// Keys are configured api_base URLs: foldhash, not SipHash (looked up per request).
use foldhash::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::Full;
use hyper::body::Body as _;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;

use super::outbound::Secrets;
use super::{ErrorClass, EventStream, ProviderError, StreamEvent};
use target::{Target, TargetError};
use transport::Stack;

pub use tap::{RawResponse, RawTap};
pub use transport::{HttpOptions, Transport};

/// The most of an error body we read: enough for any provider's JSON error, and bounded so a
/// misbehaving upstream cannot make us buffer without end.
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// Bytes in a mebibyte, for limits and their messages.
const MIB: usize = 1024 * 1024;
/// The largest non-streaming JSON answer we accept: a whole answer at the largest output
/// limits is a few hundred KiB, so this is generous, and it bounds what one answer buffers.
pub const MAX_JSON_BODY: usize = 16 * MIB;
/// The most bytes one streamed answer may carry (far beyond any real completion).
pub const MAX_STREAM_BODY: u64 = 256 * 1024 * 1024;
/// The longest wait an upstream may ask for with Retry-After; longer values are capped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// How a LiteLLM proxy names the headers of its upstream's answer it passes on.
const LITELLM_PROXY_PREFIX: &str = "llm_provider-";
/// Milliseconds in a second, for `retry-after-ms`.
const MS_PER_SECOND: f64 = 1000.0;

/// Parsed upstream URLs kept for reuse; the cache starts over when it holds this many (they
/// come from the config, so it never should).
const MAX_CACHED_URLS: usize = 256;

/// One pooled HTTP client (connections are kept per upstream host), cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    stack: Stack,
    /// Deployment URLs parsed once.
    urls: Arc<Mutex<HashMap<String, Arc<Target>>>>,
    /// Where what comes back is copied, for one attempt being captured ([`Self::tapped`]).
    tap: Option<RawTap>,
}

/// Installs ring as rustls's process-wide crypto provider, for the reqwest clients built
/// without one of their own (`monitor`'s, the tests'); ours are given theirs.
pub fn install_tls_provider() {
    // Installing twice is harmless: the second call returns Err, which we ignore.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl HttpClient {
    /// A client on [`Transport::Hyper`] trusting the platform's certificate authorities
    /// (whatever the environment says: a process that honours proxies asks for
    /// [`HttpOptions::from_environment`]).
    pub fn new() -> Result<HttpClient, ProviderError> {
        HttpClient::with_options(&HttpOptions::default())
    }

    /// A client built as `options` say. Also installs ring as the process's rustls provider
    /// ([`install_tls_provider`]), for the reqwest clients built later without one.
    pub fn with_options(options: &HttpOptions) -> Result<HttpClient, ProviderError> {
        install_tls_provider();
        Ok(HttpClient {
            stack: transport::build(options)?,
            urls: Arc::default(),
            tap: None,
        })
    }

    /// This client (same pool), noting in `tap` the head and the body of each response it
    /// gets: for one attempt whose wire is captured.
    pub fn tapped(&self, tap: RawTap) -> HttpClient {
        HttpClient {
            tap: Some(tap),
            ..self.clone()
        }
    }

    /// Which stack this client sends on.
    pub fn transport(&self) -> Transport {
        match self.stack {
            Stack::Hyper(_) => Transport::Hyper,
            Stack::Reqwest(_) => Transport::Reqwest,
        }
    }

    /// `url` taken apart, from the cache when it was seen before.
    fn target(&self, url: &str) -> Result<Arc<Target>, TargetError> {
        let mut urls = match self.urls.lock() {
            Ok(u) => u,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(t) = urls.get(url) {
            return Ok(Arc::clone(t));
        }
        let target = Arc::new(Target::parse(url)?);
        if urls.len() >= MAX_CACHED_URLS {
            urls.clear();
        }
        urls.insert(url.to_string(), Arc::clone(&target));
        Ok(target)
    }

    /// POSTs `body` as JSON to `url` and returns the response once it has a success status.
    /// `secret` is what the deployment sends that no error text we keep may hold.
    pub async fn post_json<B: serde::Serialize + ?Sized>(
        &self,
        url: &str,
        mut headers: HeaderMap,
        body: &B,
        secret: Secrets<'_>,
    ) -> Result<Response, ProviderError> {
        let target = self.target(url).map_err(|e| {
            ProviderError::network(secret.scrub(&format!("the upstream URL is not valid: {e}")))
        })?;
        let body = serde_json::to_vec(body).map_err(|e| {
            ProviderError::new(
                ErrorClass::BadRequest,
                format!("cannot encode the request as JSON: {e}"),
            )
        })?;
        if !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        if let Some(auth) = &target.basic_auth
            && !headers.contains_key(AUTHORIZATION)
        {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        let mut request = hyper::Request::post(target.uri.clone())
            .body(Bytes::from(body))
            .map_err(|e| ProviderError::network(format!("cannot build the request: {e}")))?;
        *request.headers_mut() = headers;
        let no_answer =
            |e: &(dyn std::error::Error + 'static)| failure::no_answer(e, &target.shown, secret);
        let response = match &self.stack {
            Stack::Hyper(client) => {
                let sent = client.send(&target.key, request.map(Full::new)).await;
                sent.map_err(|e| no_answer(&*e))?.map(ResponseBody::Hyper)
            }
            Stack::Reqwest(client) => {
                let request = reqwest::Request::try_from(request).map_err(|e| no_answer(&e))?;
                let sent = client.execute(request).await.map_err(|e| no_answer(&e))?;
                hyper::Response::from(sent).map(ResponseBody::Reqwest)
            }
        };
        let (parts, body) = response.into_parts();
        if let Some(tap) = &self.tap {
            tap.head(parts.version, parts.status, &parts.headers);
        }
        let response = Response {
            status: parts.status,
            headers: parts.headers,
            body,
            tap: self.tap.clone(),
        };
        if response.status.is_success() {
            return Ok(response);
        }
        let retry_after = parse_retry_after(&response.headers);
        let status = response.status.as_u16();
        let text = read_bounded(response, MAX_ERROR_BODY).await;
        let text = secret.scrub(&String::from_utf8_lossy(&text));
        Err(ProviderError::from_http(status, &text, retry_after))
    }
}

/// An upstream's answer whose status and headers arrived, from either stack.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: ResponseBody,
    /// Where the body's bytes are copied as read (a captured attempt's).
    tap: Option<RawTap>,
}

/// The body of a [`Response`], as its stack delivers it.
#[derive(Debug)]
enum ResponseBody {
    Hyper(conn::LiveBody),
    Reqwest(reqwest::Body),
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The declared body length, when the answer has one.
    pub fn content_length(&self) -> Option<u64> {
        match &self.body {
            ResponseBody::Hyper(b) => b.content_length(),
            ResponseBody::Reqwest(b) => b.size_hint().exact(),
        }
    }
}

/// The data frames of a body, errors worded by `failure::mid_body`.
struct Frames(ResponseBody);

impl Stream for Frames {
    type Item = Result<Bytes, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let frame = match &mut this.0 {
                // Every frame that arrived comes joined, as one piece.
                ResponseBody::Hyper(b) => {
                    return b
                        .poll_chunk(cx)
                        .map(|chunk| chunk.map(|c| c.map_err(|e| failure::mid_body(&e))));
                }
                ResponseBody::Reqwest(b) => match Pin::new(b).poll_frame(cx) {
                    Poll::Ready(Some(Err(e))) => Some(Err(failure::mid_body(&e))),
                    Poll::Ready(Some(Ok(f))) => Some(Ok(f)),
                    Poll::Ready(None) => None,
                    Poll::Pending => return Poll::Pending,
                },
            };
            match frame {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                // Trailers and empty frames carry nothing for us.
                Some(Ok(f)) => match f.into_data() {
                    Ok(data) if !data.is_empty() => return Poll::Ready(Some(Ok(data))),
                    _ => {}
                },
            }
        }
    }
}

/// A header value holding a key: marked sensitive so it is never printed by the HTTP stack.
pub fn secret_header(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        ProviderError::new(
            ErrorClass::Auth,
            "the API key contains characters not allowed in an HTTP header",
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// `events` with `secret` scrubbed from every error's message: an in-band error after a 200
/// can quote what the request carried, as an error body can. Every provider's stream goes
/// through this before it leaves `open`.
pub fn scrub_errors(events: EventStream, secret: Secrets<'_>) -> EventStream {
    let Some(secrets) = secret.owned() else {
        return events;
    };
    Box::pin(events.map(move |item| {
        item.map_err(|mut e| {
            for s in &secrets {
                e.message = s.scrub(&e.message);
            }
            e
        })
    }))
}

/// How long the upstream asks us to wait: `retry-after-ms` (OpenAI, Azure), else
/// `retry-after` as seconds (fractions allowed) or an HTTP date, else the same two as a
/// LiteLLM proxy passes its upstream's on (`llm_provider-retry-after-ms`,
/// `llm_provider-retry-after`). Capped at [`MAX_RETRY_AFTER`]; a date in the past is zero.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let hint = |prefix: &str| {
        if let Some(ms) = get(&format!("{prefix}retry-after-ms")).and_then(parse_seconds) {
            return Some(Duration::from_secs_f64(ms / MS_PER_SECOND));
        }
        let v = get(&format!("{prefix}retry-after"))?;
        match parse_seconds(v) {
            Some(s) => Some(Duration::from_secs_f64(
                s.min(MAX_RETRY_AFTER.as_secs_f64()),
            )),
            None => httpdate::parse_http_date(v)
                .ok()
                .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default()),
        }
    };
    hint("")
        .or_else(|| hint(LITELLM_PROXY_PREFIX))
        .map(|d| d.min(MAX_RETRY_AFTER))
}

/// A non-negative finite number of seconds (or milliseconds).
fn parse_seconds(v: &str) -> Option<f64> {
    let n: f64 = v.parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| n.min(MAX_RETRY_AFTER.as_secs_f64() * MS_PER_SECOND))
}

/// Reads at most `limit` bytes of a body; a longer body is cut, and a read error keeps what
/// arrived (error bodies are informative, not essential).
async fn read_bounded(response: Response, limit: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunks = Box::pin(body_stream(response));
    while let Some(Ok(chunk)) = chunks.next().await {
        let room = limit - buf.len();
        if chunk.len() >= room {
            buf.extend_from_slice(&chunk[..room]);
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    buf
}

/// The body of a successful response as a stream of byte chunks. A read error mid-body is
/// [`ErrorClass::Network`]; a body beyond [`MAX_STREAM_BODY`] is [`ErrorClass::Protocol`].
pub fn body_stream(
    response: Response,
) -> impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static {
    let bytes = bounded(Frames(response.body));
    match response.tap {
        None => futures::future::Either::Left(bytes),
        // A captured attempt's: each chunk is copied as it passes.
        Some(tap) => futures::future::Either::Right(bytes.inspect(move |chunk| {
            if let Ok(b) = chunk {
                tap.body(b);
            }
        })),
    }
}

/// `frames` ended by an error after the first one, and past [`MAX_STREAM_BODY`] bytes.
fn bounded(frames: Frames) -> impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static {
    // State: bytes seen so far, and whether an error already ended the stream.
    frames.scan((0u64, false), |(seen, stopped), chunk| {
        if *stopped {
            return futures::future::ready(None);
        }
        let item = chunk.and_then(|bytes| {
            *seen += bytes.len() as u64;
            if *seen > MAX_STREAM_BODY {
                Err(ProviderError::protocol(format!(
                    "the streamed answer exceeded {MAX_STREAM_BODY} bytes"
                )))
            } else {
                Ok(bytes)
            }
        });
        *stopped = item.is_err();
        futures::future::ready(Some(item))
    })
}

/// A whole non-streaming JSON answer, decoded by `decode` into the normalized events. The
/// body is read when the stream is first polled (the status already arrived with `open`).
pub fn json_events<F>(response: Response, decode: F) -> EventStream
where
    F: FnOnce(serde_json::Value) -> Result<Vec<StreamEvent>, ProviderError> + Send + 'static,
{
    json_body_events(response, move |body| {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| malformed_json(&e))?;
        decode(value)
    })
}

/// The error for an answer that is not JSON.
pub fn malformed_json(e: &serde_json::Error) -> ProviderError {
    ProviderError::protocol(format!("malformed JSON in the answer: {e}"))
}

/// A whole non-streaming answer, its body bytes decoded by `decode` (for decoders that parse
/// the bytes themselves); bounded like [`json_events`].
pub fn json_body_events<F>(response: Response, decode: F) -> EventStream
where
    F: FnOnce(&[u8]) -> Result<Vec<StreamEvent>, ProviderError> + Send + 'static,
{
    let events = async move {
        // A declared length over the limit is refused before a byte of the body is read.
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JSON_BODY as u64)
        {
            return Err(json_too_large());
        }
        let mut body = Vec::new();
        let mut chunks = Box::pin(body_stream(response));
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            // Checked before growing, so the buffer never holds more than the limit.
            if body.len() + chunk.len() > MAX_JSON_BODY {
                return Err(json_too_large());
            }
            body.extend_from_slice(&chunk);
        }
        decode(&body)
    };
    Box::pin(futures::stream::once(events).flat_map(|result| {
        let items: Vec<Result<StreamEvent, ProviderError>> = match result {
            Ok(events) => events.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(items)
    }))
}

fn json_too_large() -> ProviderError {
    ProviderError::protocol(format!(
        "the JSON answer is over {} MiB, the most llmux reads",
        MAX_JSON_BODY / MIB
    ))
}

/// An in-band error object (`{"error": {...}}` after a 200, or as a whole JSON answer),
/// classified by its numeric code or status when it has one, else by its type or code name.
pub fn inband_error(error: &Value) -> ProviderError {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| error.as_str())
        .unwrap_or("the upstream reported an error");
    let numeric = ["code", "status"]
        .iter()
        .filter_map(|k| error.get(*k))
        .find_map(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (400..600).contains(n));
    if let Some(status) = numeric {
        return ProviderError::from_http(status, message, None);
    }
    let names = ["type", "code", "status"]
        .iter()
        .filter_map(|k| error.get(*k).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    let class = if names.contains("rate_limit") || names.contains("resource_exhausted") {
        ErrorClass::RateLimit
    } else if names.contains("context_length") {
        ErrorClass::ContextWindow
    } else if names.contains("content_filter") || names.contains("content_policy") {
        ErrorClass::ContentPolicy
    } else if names.contains("auth") || names.contains("permission") {
        ErrorClass::Auth
    } else if names.contains("invalid_request") {
        ErrorClass::BadRequest
    } else {
        ErrorClass::Server
    };
    ProviderError::new(class, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds_fractions_and_ms() {
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "1.5")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "9")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "soon")])),
            None
        );
        assert_eq!(parse_retry_after(&headers(&[("retry-after", "-3")])), None);
        assert_eq!(parse_retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_from_behind_a_litellm_proxy() {
        assert_eq!(
            parse_retry_after(&headers(&[("llm_provider-retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after(&headers(&[("llm_provider-retry-after-ms", "1500")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after(&headers(&[
                ("llm_provider-retry-after", "9"),
                ("retry-after", "2")
            ])),
            Some(Duration::from_secs(2)),
            "the proxy's own header wins"
        );
    }

    #[test]
    fn retry_after_is_capped() {
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "1e9")])),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after-ms", "99999999999")])),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn retry_after_http_dates() {
        let later = SystemTime::now() + Duration::from_secs(30);
        let v = httpdate::fmt_http_date(later);
        let d = parse_retry_after(&headers(&[("retry-after", &v)])).unwrap();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(28),
            "{d:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", &past)])),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn secret_headers_are_sensitive() {
        assert!(secret_header("sk-abc").unwrap().is_sensitive());
        assert_eq!(
            secret_header("bad\nkey").unwrap_err().class,
            ErrorClass::Auth
        );
    }
}
