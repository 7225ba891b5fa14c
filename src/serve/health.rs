//! Health endpoints, in LiteLLM's places. `/health/liveliness` (and `/health/liveness`)
//! answers while the process runs; `/health/readiness` answers 200 until shutdown begins,
//! then 503 so load balancers stop sending; both need no key. `/health` (with the key) lists
//! deployments as healthy or unhealthy from the router's own state (cooling down, or not
//! callable at all) without calling any upstream. `/health?ping=true` does what LiteLLM's
//! `/health` does: it sends the smallest request to every deployment at once
//! ([`crate::router::Router::ping_all`], outside routing, metrics and cooldowns; `&timeout=SECS`
//! bounds each) and sorts them by whether they answered. Entries carry the model, the
//! api_base and the error, never a key.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use crate::router::ping::DEFAULT_PING_TIMEOUT;

/// `/health`'s query: `ping=true` calls every deployment; `timeout` (seconds) bounds each call.
#[derive(Debug, Default, serde::Deserialize)]
pub struct HealthQuery {
    #[serde(default)]
    ping: Option<String>,
    #[serde(default)]
    timeout: Option<f64>,
}

impl HealthQuery {
    fn ping(&self) -> bool {
        matches!(self.ping.as_deref(), Some("true" | "1" | "yes"))
    }
}

/// `GET /health/liveliness`.
pub async fn liveliness() -> Json<&'static str> {
    Json("I'm alive!")
}

/// `GET /health/readiness`.
pub async fn readiness(State(state): State<Shared>) -> Response {
    let shutting_down = state.is_shutting_down();
    let status = if shutting_down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "status": if shutting_down { "shutting_down" } else { "healthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "in_flight": state.in_flight.load(Ordering::Relaxed),
        "groups": state.router.config().groups.len(),
        "deployments": state.router.config().deployments.len(),
    });
    (status, Json(body)).into_response()
}

/// `GET /health`, and `GET /health?ping=true`.
pub async fn health(State(state): State<Shared>, Query(query): Query<HealthQuery>) -> Response {
    if query.ping() {
        let timeout = match query.timeout.map(Duration::try_from_secs_f64) {
            None => DEFAULT_PING_TIMEOUT,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(_) => {
                let body = json!({"error": {
                    "message": "timeout must be a number of seconds above 0",
                    "type": "invalid_request_error",
                }});
                return (StatusCode::BAD_REQUEST, Json(body)).into_response();
            }
        };
        return Json(pinged(&state, timeout).await).into_response();
    }
    Json(from_state(&state)).into_response()
}

/// Every deployment pinged, in LiteLLM's shape.
async fn pinged(state: &Shared, timeout: Duration) -> Value {
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    for r in state.router.ping_all(timeout).await {
        let mut entry = json!({
            "id": r.deployment,
            "model_group": r.group,
            "model": r.model,
            "api_base": r.api_base,
            "state": r.state,
            "latency_ms": r.latency.as_millis() as u64,
        });
        if r.reachable() {
            healthy.push(entry);
        } else {
            entry["error"] = json!(r.error);
            entry["status"] = json!(r.status);
            unhealthy.push(entry);
        }
    }
    json!({
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
    })
}

/// The router's own view, no upstream called.
fn from_state(state: &Shared) -> Value {
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    let config = state.router.config();
    for (d, status) in config.deployments.iter().zip(state.router.deployments()) {
        let mut entry = json!({
            "id": d.id,
            "model_group": d.group,
            "model": d.litellm_model,
        });
        if let Some(why) = &status.unavailable {
            entry["error"] = json!(why);
            unhealthy.push(entry);
        } else if let Some(left) = status.health.cooling_for {
            entry["cooling_down_s"] = json!(left.as_secs_f64());
            entry["error"] = json!(status.health.cooldown_reason.unwrap_or_default());
            unhealthy.push(entry);
        } else {
            healthy.push(entry);
        }
    }
    json!({
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
    })
}
