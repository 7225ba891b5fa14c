//! Reading a request's body, the same for every route that takes one: JSON only (415
//! otherwise), within the configured size (413, whether declared, sent, or announced by a
//! chunk size, see `framing`) and time (408) limits, parsed with serde into a 400 when it is
//! not what the route reads.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use bytes::BytesMut;
use futures::StreamExt;

use super::Shared;
use super::error::{ApiError, Kind};
use super::framing::ChunkOverCap;

/// Reads the request body: JSON only (415 otherwise), within the configured size (413) and
/// time (408) limits.
pub async fn read_body(state: &Shared, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    require_json(state, headers)?;
    let limit = state.max_body_bytes;
    let too_large = || {
        state.metrics.rejected("body_too_large");
        ApiError::new(
            Kind::TooLarge,
            format!("the request body is larger than the {limit}-byte limit"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut buf = BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
        let mut frames = body.into_data_stream();
        while let Some(frame) = frames.next().await {
            let frame = frame.map_err(|e| {
                let e = e.into_inner();
                if e.is::<ChunkOverCap>() {
                    // Announced, not sent: refused before the client spends the time.
                    return too_large();
                }
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            })?;
            if buf.len() + frame.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&frame);
        }
        Ok(buf.freeze())
    };
    // A client trickling its body would hold an in-flight slot for as long as it likes.
    let deadline = state.body_read_timeout;
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or_else(|_| {
            state.metrics.rejected("body_timeout");
            Err(ApiError::new(
                Kind::Timeout,
                format!(
                    "the request body did not arrive within {}s",
                    deadline.as_secs_f64()
                ),
            ))
        })
}

/// The longest piece of a refused `Content-Type` quoted back.
const MAX_QUOTED_CONTENT_TYPE: usize = 64;

/// 415 unless the body is declared as JSON. Besides telling a client what to fix, this keeps
/// a web page from posting to a local server without a CORS preflight: browsers send
/// `text/plain` and form bodies cross-origin without asking first, never `application/json`.
fn require_json(state: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = value
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if essence.is_some_and(|e| e.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    state.metrics.rejected("unsupported_media_type");
    let got = match value {
        Some(v) => format!(
            "`{}`",
            v.chars().take(MAX_QUOTED_CONTENT_TYPE).collect::<String>()
        ),
        None => "none".to_string(),
    };
    Err(ApiError::new(
        Kind::UnsupportedMediaType,
        format!("send the request body as JSON with `Content-Type: application/json` (got {got})"),
    ))
}

/// Parses JSON, turning serde's message into a 400.
pub fn parse_json<'a, T: serde::Deserialize<'a>>(
    state: &Shared,
    bytes: &'a [u8],
) -> Result<T, ApiError> {
    from_json(bytes).inspect_err(|_| state.metrics.rejected("bad_request"))
}

/// Parses JSON into a 400 with serde's message, counting nothing (for callers that count).
pub fn from_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}
