//! Anthropic's token counting: `POST /v1/messages/count_tokens`.
//!
//! As LiteLLM's proxy does, the count comes from the deployment's own endpoint when the group
//! has an Anthropic deployment that can be called (its `/v1/messages/count_tokens`, asked
//! straight, outside routing: counting costs nothing and is no answer to retry or cool down);
//! otherwise, or when that call fails, it is llmux's estimate (about four bytes a token). The
//! answer says which, as LiteLLM's does: `{"input_tokens": n, "litellm_count_source":
//! "provider" | "local_estimate"}`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use super::Shared;
use super::anthropic::request::{MessagesRequest, Parsed, to_chat_request};
use super::body::{parse_json, read_body};
use super::chat::json_response;
use super::error::{Api, ApiError, DEPLOYMENT_HEADER, Kind};
use crate::config::Wire;
use crate::provider::{self, anthropic};

/// `litellm_count_source` of a count the deployment gave.
pub const FROM_PROVIDER: &str = "provider";
/// `litellm_count_source` of llmux's estimate.
pub const ESTIMATED: &str = "local_estimate";

/// The answer (members in alphabetical order, as the `serde_json` maps it was once written
/// from printed them).
#[derive(Serialize)]
struct Counted {
    input_tokens: u64,
    litellm_count_source: &'static str,
}

/// `POST /v1/messages/count_tokens`.
pub async fn count_tokens(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    match handle(state, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response_for(Api::Anthropic).into_response(),
    }
}

async fn handle(state: Shared, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(&state, &headers, body).await?;
    let fields: Map<String, Value> = parse_json(&state, &bytes)?;
    // Read as a Messages request (the same checks, and the messages for the estimate); a
    // count takes no `max_tokens`, so one is lent for the parse.
    let mut as_request = fields.clone();
    as_request.entry("max_tokens").or_insert(Value::from(1));
    let parsed: MessagesRequest = serde_json::from_value(Value::Object(as_request))
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    let Parsed { model, request, .. } =
        to_chat_request(parsed).inspect_err(|_| state.metrics.rejected("bad_request"))?;
    let config = state.router.config();
    let Some(group) = config.resolve_group(&model) else {
        return Err(ApiError::new(
            Kind::NotFound,
            format!(
                "no model group or alias named '{model}'; known groups: {}",
                config.groups.join(", ")
            ),
        ));
    };
    let asked = config
        .group_deployments(group)
        .find(|d| d.wire == Wire::Anthropic && d.unavailable.is_none());
    if let Some(d) = asked {
        let limit = d.timeout.unwrap_or(config.router.timeout);
        let counted = tokio::time::timeout(
            limit,
            anthropic::count_tokens(state.router.http(), d, &fields),
        )
        .await;
        if let Ok(Ok(n)) = counted {
            let mut response = json_response(&Counted {
                input_tokens: n,
                litellm_count_source: FROM_PROVIDER,
            });
            if let Ok(v) = HeaderValue::from_str(&d.id) {
                response.headers_mut().insert(DEPLOYMENT_HEADER, v);
            }
            return Ok(response);
        }
    }
    let tools = fields
        .get("tools")
        .filter(|t| !t.is_null())
        .map_or(0, |t| provider::estimate_tokens(&t.to_string()));
    let n = provider::estimate_prompt_tokens(&request.messages) + tools;
    Ok(json_response(&Counted {
        input_tokens: n,
        litellm_count_source: ESTIMATED,
    }))
}
