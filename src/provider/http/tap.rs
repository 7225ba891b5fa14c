//! What an upstream sent back, as it came: the response's status line and headers, and its
//! body's bytes (an SSE stream as its lines, an error's body), for the TUI's inspector.
//!
//! Optional and per attempt: the router hands a [`RawTap`] to [`super::HttpClient::tapped`]
//! only when a capture was asked for (`router::capture`); the client then notes the head of
//! the response it gets and [`super::body_stream`] copies each chunk of the body, up to
//! [`MAX_RAW_BODY`] bytes (the rest is counted). Without a tap the client holds `None`: one
//! check when a response arrives and one when its body is read, nothing per chunk.
//! What is taken ([`RawTap::take`]) has cookies and credentials redacted and the
//! deployment's secrets scrubbed; nothing else here interprets the bytes.

use std::sync::{Arc, Mutex};

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::provider::outbound::Secrets;

/// Bytes of a response body kept per attempt (the rest is counted, not kept).
pub const MAX_RAW_BODY: usize = 64 * 1024;
/// What a redacted header value shows.
const REDACTED: &str = "[redacted]";
/// Response headers whose values are credentials or session state, never kept.
const SECRET_HEADERS: [&str; 7] = [
    "set-cookie",
    "cookie",
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
];

/// One attempt's response as received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawResponse {
    /// `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// In the order received; credentials shown as `[redacted]`.
    pub headers: Vec<(String, String)>,
    /// The body's bytes as they arrived, as text (invalid UTF-8 replaced), up to
    /// [`MAX_RAW_BODY`] bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// Body bytes past [`MAX_RAW_BODY`], not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub body_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Collects what one attempt received; cheap to clone (the clones share it).
#[derive(Debug, Clone, Default)]
pub struct RawTap(Arc<Mutex<Tapped>>);

#[derive(Debug, Default)]
struct Tapped {
    head: Option<(String, Vec<(String, String)>)>,
    body: Vec<u8>,
    dropped: u64,
}

impl RawTap {
    pub fn new() -> RawTap {
        RawTap::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Tapped) -> T) -> T {
        let mut t = match self.0.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        f(&mut t)
    }

    /// The response's head arrived.
    pub(super) fn head(
        &self,
        version: reqwest::Version,
        status: reqwest::StatusCode,
        h: &HeaderMap,
    ) {
        let headers = h
            .iter()
            .map(|(name, value)| {
                let name = name.as_str().to_string();
                let shown = if value.is_sensitive() || SECRET_HEADERS.contains(&name.as_str()) {
                    REDACTED.to_string()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                (name, shown)
            })
            .collect();
        let line = format!("{version:?} {status}");
        self.with(|t| t.head = Some((line, headers)));
    }

    /// A chunk of the body arrived.
    pub(super) fn body(&self, chunk: &[u8]) {
        self.with(|t| {
            let room = MAX_RAW_BODY.saturating_sub(t.body.len());
            let kept = chunk.len().min(room);
            t.body.extend_from_slice(&chunk[..kept]);
            t.dropped += (chunk.len() - kept) as u64;
        });
    }

    /// What was received, with `secrets` scrubbed (`None`: no response came).
    pub fn take(&self, secrets: Secrets<'_>) -> Option<RawResponse> {
        self.with(|t| {
            let (status_line, headers) = t.head.take()?;
            let headers = headers
                .into_iter()
                .map(|(n, v)| (n, secrets.scrub(&v)))
                .collect();
            let mut bytes = std::mem::take(&mut t.body);
            let mut dropped = t.dropped;
            if dropped > 0 {
                // A secret cut at the limit would not be found whole: its start goes too.
                let cut = bytes.len().saturating_sub(secrets.longest());
                dropped += (bytes.len() - cut) as u64;
                bytes.truncate(cut);
            }
            Some(RawResponse {
                status_line,
                headers,
                body: secrets.scrub(&String::from_utf8_lossy(&bytes)),
                body_dropped: dropped,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use reqwest::header::HeaderValue;

    #[test]
    fn credentials_are_redacted_secrets_scrubbed_and_the_body_bounded() {
        let tap = RawTap::new();
        let mut h = HeaderMap::new();
        h.insert("set-cookie", HeaderValue::from_static("session=abc"));
        h.insert("x-request-id", HeaderValue::from_static("req-1"));
        h.insert("x-echo", HeaderValue::from_static("key sk-abcdef123"));
        tap.head(reqwest::Version::HTTP_11, reqwest::StatusCode::OK, &h);
        tap.body(b"data: sk-abcdef123\n\n");
        let key = Secret::new("sk-abcdef123");
        let got = tap.take(Secrets::key(Some(&key))).unwrap();
        assert_eq!(got.status_line, "HTTP/1.1 200 OK");
        assert!(
            got.headers
                .contains(&("set-cookie".into(), REDACTED.into()))
        );
        assert!(
            got.headers
                .contains(&("x-request-id".into(), "req-1".into()))
        );
        assert!(!format!("{got:?}").contains("sk-abcdef123"), "{got:?}");
        assert!(tap.take(Secrets::default()).is_none(), "taken once");

        let tap = RawTap::new();
        tap.head(
            reqwest::Version::HTTP_2,
            reqwest::StatusCode::OK,
            &HeaderMap::new(),
        );
        tap.body(&vec![b'x'; MAX_RAW_BODY - 4]);
        tap.body(b"sk-abcdef123 and more");
        let got = tap.take(Secrets::key(Some(&key))).unwrap();
        assert!(
            !got.body.contains("sk-a"),
            "a key cut at the limit goes whole"
        );
        assert_eq!(
            got.body.len() as u64 + got.body_dropped,
            (MAX_RAW_BODY - 4 + 21) as u64
        );
    }
}
