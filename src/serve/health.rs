//! Health endpoints, in LiteLLM's places. `/health/liveliness` (and `/health/liveness`)
//! answers while the process runs; `/health/readiness` answers 200 until shutdown begins,
//! then 503 so load balancers stop sending; both need no key. `/health` (with the key) lists
//! deployments as healthy or unhealthy from the router's own state (cooling down, or not
//! callable at all) without calling any upstream, unlike LiteLLM's, which spends a real request
//! on each deployment.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;

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

/// `GET /health`.
pub async fn health(State(state): State<Shared>) -> Json<Value> {
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
    Json(json!({
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
    }))
}
