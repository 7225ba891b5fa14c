//! The master key check. A request enters with its headers; it passes when there is no
//! master key, or when `Authorization: Bearer KEY` or `x-api-key: KEY` (what Anthropic
//! clients send) equals the key. The comparison takes the same time wherever the first
//! difference is, so response timing does not leak the key. A refusal leaves as 401 in the
//! error shape of the API that was called.

use axum::http::HeaderMap;
use axum::response::Response;

use super::Shared;
use super::error::{ApiError, api_of_path};

/// True when the two byte strings are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // A volatile read keeps the compiler from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// The key a request carries: the bearer token, else `x-api-key`.
fn presented(headers: &HeaderMap) -> Vec<&[u8]> {
    let mut keys = Vec::with_capacity(2);
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.as_bytes();
        let prefix = b"bearer ";
        if v.len() > prefix.len() && v[..prefix.len()].eq_ignore_ascii_case(prefix) {
            keys.push(v[prefix.len()..].trim_ascii());
        }
    }
    if let Some(v) = headers.get("x-api-key") {
        keys.push(v.as_bytes().trim_ascii());
    }
    keys
}

/// Whether the headers carry the master key (always true when none is configured).
pub fn authorized(state: &Shared, headers: &HeaderMap) -> bool {
    let Some(key) = &state.master_key else {
        return true;
    };
    let key = key.expose().as_bytes();
    // Check every presented key so the time does not say which header was right.
    presented(headers)
        .into_iter()
        .fold(false, |ok, k| constant_time_eq(k, key) | ok)
}

/// `None` when the request is authorized, else the 401 in the shape of the API `path`
/// belongs to (the route table asks here for every route that needs the key).
pub fn refusal(state: &Shared, headers: &HeaderMap, path: &str) -> Option<Response> {
    if authorized(state, headers) {
        return None;
    }
    let api = api_of_path(path);
    let missing = presented(headers).is_empty();
    state.metrics.rejected("unauthorized");
    let message = if missing {
        "missing API key: send the master key as `Authorization: Bearer KEY` or `x-api-key: KEY`"
    } else {
        "invalid API key"
    };
    Some(ApiError::unauthorized(message).into_response_for(api))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_bytes_and_length_match() {
        assert!(constant_time_eq(b"sk-abc", b"sk-abc"));
        assert!(!constant_time_eq(b"sk-abc", b"sk-abd"));
        assert!(!constant_time_eq(b"sk-abc", b"sk-ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn bearer_and_x_api_key_are_both_read() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer  sk-1 ".parse().unwrap());
        h.insert("x-api-key", "sk-2".parse().unwrap());
        assert_eq!(presented(&h), vec![b"sk-1".as_slice(), b"sk-2".as_slice()]);
        let mut basic = HeaderMap::new();
        basic.insert("authorization", "Basic sk-1".parse().unwrap());
        assert!(presented(&basic).is_empty());
    }
}
