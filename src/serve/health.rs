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
use serde::Serialize;

use super::Shared;
use crate::router::ping::{DEFAULT_PING_TIMEOUT, PingState};

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

/// `/health/readiness`'s answer. The bodies here have their members in alphabetical order,
/// as the `serde_json` maps they were once written from printed them.
#[derive(Serialize)]
struct Readiness {
    deployments: usize,
    groups: usize,
    in_flight: usize,
    status: &'static str,
    version: &'static str,
}

/// `/health`'s answer: deployments sorted by whether they are healthy.
#[derive(Serialize)]
struct Sorted<T> {
    healthy_count: usize,
    healthy_endpoints: Vec<T>,
    unhealthy_count: usize,
    unhealthy_endpoints: Vec<T>,
}

impl<T> Sorted<T> {
    fn new(healthy: Vec<T>, unhealthy: Vec<T>) -> Sorted<T> {
        Sorted {
            healthy_count: healthy.len(),
            healthy_endpoints: healthy,
            unhealthy_count: unhealthy.len(),
            unhealthy_endpoints: unhealthy,
        }
    }
}

/// A deployment as the router sees it.
#[derive(Serialize)]
struct Seen<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cooling_down_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    id: &'a str,
    model: &'a str,
    model_group: &'a str,
}

/// A deployment pinged. An unreachable one has `error` and `status`, `null` when unknown.
#[derive(Serialize)]
struct Pinged<'a> {
    api_base: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Option<&'a str>>,
    id: &'a str,
    latency_ms: u64,
    model: &'a str,
    model_group: &'a str,
    state: PingState,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Option<u16>>,
}

/// A query `/health` cannot take.
#[derive(Serialize)]
struct BadQuery {
    error: BadQueryError,
}

#[derive(Serialize)]
struct BadQueryError {
    message: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `GET /health/readiness`.
pub async fn readiness(State(state): State<Shared>) -> Response {
    let shutting_down = state.is_shutting_down();
    let status = if shutting_down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = Readiness {
        deployments: state.router.config().deployments.len(),
        groups: state.router.config().groups.len(),
        in_flight: state.in_flight.load(Ordering::Relaxed),
        status: if shutting_down {
            "shutting_down"
        } else {
            "healthy"
        },
        version: env!("CARGO_PKG_VERSION"),
    };
    (status, Json(body)).into_response()
}

/// `GET /health`, and `GET /health?ping=true`.
pub async fn health(State(state): State<Shared>, Query(query): Query<HealthQuery>) -> Response {
    if query.ping() {
        let timeout = match query.timeout.map(Duration::try_from_secs_f64) {
            None => DEFAULT_PING_TIMEOUT,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(_) => {
                let body = BadQuery {
                    error: BadQueryError {
                        message: "timeout must be a number of seconds above 0",
                        kind: "invalid_request_error",
                    },
                };
                return (StatusCode::BAD_REQUEST, Json(body)).into_response();
            }
        };
        return pinged(&state, timeout).await;
    }
    from_state(&state)
}

/// Every deployment pinged, in LiteLLM's shape.
async fn pinged(state: &Shared, timeout: Duration) -> Response {
    let results = state.router.ping_all(timeout).await;
    let (healthy, unhealthy): (Vec<_>, Vec<_>) = results
        .iter()
        .map(|r| {
            let failed = (!r.reachable()).then_some(r);
            Pinged {
                api_base: &r.api_base,
                error: failed.map(|r| r.error.as_deref()),
                id: &r.deployment,
                latency_ms: r.latency.as_millis() as u64,
                model: &r.model,
                model_group: &r.group,
                state: r.state,
                status: failed.map(|r| r.status),
            }
        })
        .partition(|p| p.error.is_none());
    Json(Sorted::new(healthy, unhealthy)).into_response()
}

/// The router's own view, no upstream called.
fn from_state(state: &Shared) -> Response {
    let config = state.router.config();
    let statuses = state.router.deployments();
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    for (d, status) in config.deployments.iter().zip(&statuses) {
        let mut entry = Seen {
            cooling_down_s: None,
            error: None,
            id: &d.id,
            model: &d.litellm_model,
            model_group: &d.group,
        };
        if let Some(why) = &status.unavailable {
            entry.error = Some(why);
            unhealthy.push(entry);
        } else if let Some(left) = status.health.cooling_for {
            entry.cooling_down_s = Some(left.as_secs_f64());
            entry.error = Some(status.health.cooldown_reason.as_deref().unwrap_or_default());
            unhealthy.push(entry);
        } else {
            healthy.push(entry);
        }
    }
    Json(Sorted::new(healthy, unhealthy)).into_response()
}
