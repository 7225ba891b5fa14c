//! The one HTTP client every networked provider shares, and the edges where HTTP turns into
//! our types.
//!
//! Requests enter as a URL, headers and a JSON body ([`HttpClient::post_json`]); what leaves
//! is either a [`Response`] with a success status, or a [`ProviderError`] already
//! classified: connection failures are [`ErrorClass::Network`], a non-2xx status becomes
//! [`ProviderError::from_http`] with its (bounded, key-scrubbed) body and Retry-After. A
//! successful response is then read through [`body_stream`] (bounded, errors mid-body are
//! `Network`) or [`json_events`] for the providers' non-streaming answers.
//!
//! Plain `http://` upstreams go through [`super::h1`], a small HTTP/1.1 client run inside the
//! request's own future (no connection task to hand each piece over); https and everything
//! else, and every upstream when a proxy is configured in the environment, go through reqwest.
//!
//! There is no total timeout here on purpose: the router owns first-token and whole-request
//! deadlines, and dropping a stream drops its connection.

// Keys are configured api_base URLs: foldhash, not SipHash (looked up per request).
use foldhash::HashMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::h1::{self, H1Client, Target};
use super::outbound::Secrets;
use super::{ErrorClass, EventStream, ProviderError, StreamEvent};

/// How long we wait for a TCP (and TLS) connection before calling the upstream unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle pooled connection is kept for reuse.
pub(super) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// TCP keep-alive probes, so a silently dead peer is noticed on long streams.
pub(super) const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
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

/// Environment variables that send plain-HTTP requests through a proxy (reqwest honours
/// them; the in-task client does not speak to proxies, so it stands aside when one is set).
const HTTP_PROXY_VARS: [&str; 4] = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/// A deployment URL parsed, with its plain-HTTP target when the in-task client can take it.
type ParsedUrl = (reqwest::Url, Option<Target>);

/// One pooled HTTP client (connections are kept per upstream host), cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
    /// The in-task client for `http://` upstreams; `None` when a proxy is configured.
    fast: Option<H1Client>,
    /// Deployment URLs parsed once: parsing one cost a request several microseconds.
    urls: Arc<Mutex<HashMap<String, Arc<ParsedUrl>>>>,
}

/// Installs ring as rustls's crypto provider: every reqwest client needs one first (we
/// build reqwest without a default provider), or building it panics.
pub fn install_tls_provider() {
    // Installing twice is harmless: the second call returns Err, which we ignore.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl HttpClient {
    /// Builds the client: rustls with the ring provider, TCP_NODELAY (tokens are small writes
    /// and must not wait for Nagle), a connect timeout and no total timeout.
    pub fn new() -> Result<HttpClient, ProviderError> {
        install_tls_provider();
        let inner = reqwest::Client::builder()
            .tcp_nodelay(true)
            .tcp_keepalive(TCP_KEEPALIVE)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::network(format!("cannot build the HTTP client: {e}")))?;
        let proxied = HTTP_PROXY_VARS
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        Ok(HttpClient {
            inner,
            fast: (!proxied).then(H1Client::default),
            urls: Arc::default(),
        })
    }

    /// `url` parsed, from the cache when it was seen before. A URL that does not parse is
    /// left to reqwest, whose error says why.
    fn parsed(&self, url: &str) -> Option<Arc<ParsedUrl>> {
        let mut urls = match self.urls.lock() {
            Ok(u) => u,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(u) = urls.get(url) {
            return Some(Arc::clone(u));
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        let target = Target::of(&parsed);
        if urls.len() >= MAX_CACHED_URLS {
            urls.clear();
        }
        let parsed = Arc::new((parsed, target));
        urls.insert(url.to_string(), Arc::clone(&parsed));
        Some(parsed)
    }

    /// The underlying reqwest client, for callers that need a request shape not covered here.
    pub fn inner(&self) -> &reqwest::Client {
        &self.inner
    }

    /// POSTs `body` as JSON to `url` and returns the response once it has a success status.
    /// `secret` is what the deployment sends that no error text we keep may hold.
    pub async fn post_json<B: serde::Serialize + ?Sized>(
        &self,
        url: &str,
        headers: HeaderMap,
        body: &B,
        secret: Secrets<'_>,
    ) -> Result<Response, ProviderError> {
        let parsed = self.parsed(url);
        let target = parsed.as_deref().and_then(|(_, target)| target.as_ref());
        let response = match (&self.fast, target) {
            (Some(fast), Some(target)) => {
                let bytes = serde_json::to_vec(body).map_err(|e| {
                    ProviderError::new(
                        ErrorClass::BadRequest,
                        format!("cannot encode the request as JSON: {e}"),
                    )
                })?;
                let sent = fast.post(target, &headers, &bytes).await;
                Response::H1(sent.map_err(|e| scrub_error(e, secret))?)
            }
            _ => {
                let builder = match parsed.as_deref() {
                    Some((url, _)) => self.inner.post(url.clone()),
                    None => self.inner.post(url),
                };
                let sent = builder.headers(headers).json(body).send().await;
                match sent {
                    Ok(r) => Response::Reqwest(r),
                    Err(e) => return Err(send_error(&e, secret)),
                }
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = parse_retry_after(response.headers());
        let text = read_bounded(response, MAX_ERROR_BODY).await;
        let text = secret.scrub(&String::from_utf8_lossy(&text));
        Err(ProviderError::from_http(
            status.as_u16(),
            &text,
            retry_after,
        ))
    }
}

/// An upstream's answer whose status and headers arrived, from either client.
#[derive(Debug)]
pub enum Response {
    Reqwest(reqwest::Response),
    H1(h1::Response),
}

impl Response {
    pub fn status(&self) -> reqwest::StatusCode {
        match self {
            Response::Reqwest(r) => r.status(),
            Response::H1(r) => r.status,
        }
    }

    /// The answer's headers. From the in-task HTTP/1.1 client only a failure's are kept
    /// (Retry-After and the like; see `h1::Response::headers`): a success's are empty there.
    pub fn headers(&self) -> &HeaderMap {
        match self {
            Response::Reqwest(r) => r.headers(),
            Response::H1(r) => &r.headers,
        }
    }

    /// The declared body length, when the answer has one.
    pub fn content_length(&self) -> Option<u64> {
        match self {
            Response::Reqwest(r) => r.content_length(),
            Response::H1(r) => r.content_length(),
        }
    }
}

fn scrub_error(mut e: ProviderError, secret: Secrets<'_>) -> ProviderError {
    e.message = secret.scrub(&e.message);
    e
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

/// A failed send: nothing HTTP came back. A connect timeout is a timeout; the rest is network.
fn send_error(e: &reqwest::Error, secret: Secrets<'_>) -> ProviderError {
    let what = describe_transport(e);
    let where_ = e
        .url()
        // Host and path only: never userinfo or a query string, which can carry credentials.
        .map(|u| {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let host = u.host_str().unwrap_or_default();
            format!(" ({}://{host}{port}{})", u.scheme(), u.path())
        })
        .unwrap_or_default();
    let message = secret.scrub(&format!("{what}{where_}"));
    if e.is_timeout() {
        ProviderError::timeout(message)
    } else {
        ProviderError::network(message)
    }
}

/// How a socket failure of this kind is told to the user, for the kinds we recognize (the
/// reqwest path and `h1` word them alike).
pub(super) fn io_failure_words(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::TimedOut => "connection timed out",
        K::UnexpectedEof | K::BrokenPipe => "connection closed by the upstream",
        _ => return None,
    })
}

/// A short human description of a transport failure, from the innermost cause we recognize.
fn describe_transport(e: &reqwest::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
    let mut chain = Vec::new();
    while let Some(c) = cause {
        if let Some(words) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io_failure_words(io.kind()))
        {
            return words.to_string();
        }
        chain.push(c.to_string());
        cause = c.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    if e.is_timeout() {
        "connection timed out".to_string()
    } else if all.contains("dns") {
        "DNS lookup failed".to_string()
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        format!(
            "TLS handshake failed: {}",
            chain.last().cloned().unwrap_or_default()
        )
    } else if all.contains("closed") || all.contains("incomplete") {
        "connection closed by the upstream".to_string()
    } else if let Some(last) = chain.last() {
        format!("connection failed: {last}")
    } else {
        format!("connection failed: {e}")
    }
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
    let chunks = match response {
        Response::Reqwest(r) => r
            .bytes_stream()
            .map(|c| c.map_err(|e| describe_body_error(&e)))
            .left_stream(),
        Response::H1(r) => r.into_body().right_stream(),
    };
    // State: bytes seen so far, and whether an error already ended the stream.
    chunks.scan((0u64, false), |(seen, stopped), chunk| {
        if *stopped {
            return futures::future::ready(None);
        }
        let item = match chunk {
            Ok(bytes) => {
                *seen += bytes.len() as u64;
                if *seen > MAX_STREAM_BODY {
                    Err(ProviderError::protocol(format!(
                        "the streamed answer exceeded {MAX_STREAM_BODY} bytes"
                    )))
                } else {
                    Ok(bytes)
                }
            }
            Err(e) => Err(ProviderError::network(format!(
                "connection reset mid-stream: {e}"
            ))),
        };
        *stopped = item.is_err();
        futures::future::ready(Some(item))
    })
}

fn describe_body_error(e: &reqwest::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
    let mut last = e.to_string();
    while let Some(c) = cause {
        last = c.to_string();
        cause = c.source();
    }
    last
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
