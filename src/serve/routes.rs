//! The one route table: every route `llmux serve` answers, which need the master key, and the
//! handler each goes to. Every request passes through [`serve`] (from `conn`, once hyper has
//! its head): what concerns all routes — the key check today, the request's context (a trace
//! parent) when it comes — goes there, once, and no route can miss it.
//!
//! A request enters with its method and path; [`find`] looks them up in [`TABLE`] (the chat
//! routes first: they are the hot path, and a lookup is a few string compares); an unknown
//! path, or a known one asked with another method, gets 404 "no such route" in the shape of
//! the API the path looks like. `HEAD` is answered as `GET` (hyper sends no body).

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{Method, Request};
use axum::response::{IntoResponse, Response};

use super::error::{Api, ApiError};
use super::{Shared, anthropic, auth, chat, completions, count_tokens, embeddings, error};
use super::{events, health, metrics, models, openai};

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// OpenAI's chat completions.
    ChatCompletions,
    /// Anthropic's Messages.
    Messages,
    /// Anthropic's token count.
    CountTokens,
    /// OpenAI's legacy text completions.
    Completions,
    Embeddings,
    /// The model list.
    Models,
    /// One model; its id is the rest of the path.
    Model,
    /// The deployments' health (`?ping=true` calls them).
    Health,
    /// The monitors' event stream.
    Events,
    Liveliness,
    Readiness,
    Metrics,
}

impl Endpoint {
    /// Whether the route needs the master key (the probes and `/metrics` do not).
    fn needs_key(self) -> bool {
        !matches!(
            self,
            Endpoint::Liveliness | Endpoint::Readiness | Endpoint::Metrics
        )
    }
}

/// The methods llmux serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Post,
}

/// Every route: method, path (ending in `/*` for a path whose rest is an id) and endpoint.
const TABLE: &[(Verb, &str, Endpoint)] = &[
    (
        Verb::Post,
        "/v1/chat/completions",
        Endpoint::ChatCompletions,
    ),
    (Verb::Post, "/chat/completions", Endpoint::ChatCompletions),
    (Verb::Post, "/v1/messages", Endpoint::Messages),
    (
        Verb::Post,
        "/v1/messages/count_tokens",
        Endpoint::CountTokens,
    ),
    (Verb::Post, "/v1/completions", Endpoint::Completions),
    (Verb::Post, "/completions", Endpoint::Completions),
    (Verb::Post, "/v1/embeddings", Endpoint::Embeddings),
    (Verb::Post, "/embeddings", Endpoint::Embeddings),
    (Verb::Get, "/v1/models", Endpoint::Models),
    (Verb::Get, "/models", Endpoint::Models),
    (Verb::Get, "/v1/models/*", Endpoint::Model),
    (Verb::Get, "/models/*", Endpoint::Model),
    (Verb::Get, "/health", Endpoint::Health),
    (Verb::Get, "/llmux/events", Endpoint::Events),
    (Verb::Get, "/health/liveliness", Endpoint::Liveliness),
    (Verb::Get, "/health/liveness", Endpoint::Liveliness),
    (Verb::Get, "/health/readiness", Endpoint::Readiness),
    (Verb::Get, "/metrics", Endpoint::Metrics),
];

/// The route of `method` on `path`, with the rest of the path for a `/*` route.
fn find<'p>(method: &Method, path: &'p str) -> Option<(Endpoint, &'p str)> {
    let verb = match *method {
        Method::POST => Verb::Post,
        Method::GET | Method::HEAD => Verb::Get,
        _ => return None,
    };
    TABLE
        .iter()
        .filter(|(v, _, _)| *v == verb)
        .find_map(|&(_, pattern, endpoint)| match pattern.strip_suffix('*') {
            None => (pattern == path).then_some((endpoint, "")),
            Some(prefix) => path
                .strip_prefix(prefix)
                .filter(|rest| !rest.is_empty())
                .map(|rest| (endpoint, rest)),
        })
}

/// Answers one request: its route, the key check, its handler.
pub(super) async fn serve(state: Shared, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let Some((endpoint, rest)) = find(&parts.method, parts.uri.path()) else {
        return error::not_found(parts.method, parts.uri).await;
    };
    if endpoint.needs_key()
        && let Some(refused) = auth::refusal(&state, &parts.headers, parts.uri.path())
    {
        return refused;
    }
    let headers = parts.headers;
    match endpoint {
        Endpoint::ChatCompletions => {
            chat::serve::<openai::ChatCompletions>(state, headers, body).await
        }
        Endpoint::Messages => chat::serve::<anthropic::Messages>(state, headers, body).await,
        Endpoint::Completions => {
            chat::serve::<completions::Completions>(state, headers, body).await
        }
        Endpoint::CountTokens => count_tokens::count_tokens(State(state), headers, body).await,
        Endpoint::Embeddings => embeddings::embeddings(State(state), headers, body).await,
        Endpoint::Models => models::list(State(state)).await,
        Endpoint::Model => {
            let id = percent_decoded(rest).into_owned();
            models::retrieve(State(state), Path(id)).await
        }
        Endpoint::Health => match Query::try_from_uri(&parts.uri) {
            Ok(query) => health::health(State(state), query).await,
            Err(e) => {
                ApiError::bad_request(format!("invalid query: {e}")).into_response_for(Api::OpenAi)
            }
        },
        Endpoint::Events => events::events(State(state)).await,
        Endpoint::Liveliness => health::liveliness().await.into_response(),
        Endpoint::Readiness => health::readiness(State(state)).await,
        Endpoint::Metrics => metrics::metrics(State(state)).await,
    }
}

/// A path segment with its `%XX` escapes decoded (a model id may hold `/`, sent as `%2F` or
/// as is); an escape that is not one, or bytes that are not UTF-8, are kept as they came.
fn percent_decoded(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(value as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(decoded) => Cow::Owned(decoded),
        Err(_) => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_by_method_and_path_with_ids_as_the_rest() {
        let post = Method::POST;
        let get = Method::GET;
        assert_eq!(
            find(&post, "/v1/chat/completions"),
            Some((Endpoint::ChatCompletions, ""))
        );
        assert_eq!(find(&get, "/v1/chat/completions"), None);
        assert_eq!(
            find(&Method::HEAD, "/health/readiness"),
            Some((Endpoint::Readiness, ""))
        );
        assert_eq!(
            find(&get, "/v1/models/openai/gpt-4o"),
            Some((Endpoint::Model, "openai/gpt-4o"))
        );
        assert_eq!(find(&get, "/v1/models/"), None);
        assert_eq!(find(&get, "/v1/models"), Some((Endpoint::Models, "")));
        assert_eq!(find(&Method::PUT, "/v1/messages"), None);
        assert!(!Endpoint::Metrics.needs_key() && Endpoint::Events.needs_key());
    }

    #[test]
    fn ids_are_percent_decoded() {
        assert_eq!(percent_decoded("a%2Fb%20c"), "a/b c");
        assert_eq!(percent_decoded("plain"), "plain");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%ff"), "%ff");
    }
}
