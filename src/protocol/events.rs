//! The `/llmux/events` feed's wire types: what `llmux serve` sends and `llmux monitor` reads.
//!
//! The feed is SSE. In order: `event: hello` ([`Hello`]: version, groups, deployments),
//! `event: recent` (a JSON array of the router's latest [`RouteEvent`]s, oldest first; every
//! later event follows as `route`, none missing or repeated in between), `event: metrics`
//! ([`MonitorSnapshot`]) at once and then every snapshot interval (which doubles as the
//! keep-alive), `event: route` for each [`RouteEvent`] as it happens, and `event: lagged`
//! ([`Lagged`]) when a client fell so far behind that events were dropped for it. Fields added
//! later carry `#[serde(default)]`, so a monitor reads an older server's feed.
//!
//! [`RouteEvent`]: crate::router::RouteEvent

use serde::{Deserialize, Serialize};

use crate::metrics::MetricsSnapshot;
use crate::router::{BudgetStatus, DeploymentStatus};

/// SSE event names of the feed.
pub const EVENT_HELLO: &str = "hello";
pub const EVENT_METRICS: &str = "metrics";
pub const EVENT_ROUTE: &str = "route";
pub const EVENT_LAGGED: &str = "lagged";
pub const EVENT_RECENT: &str = "recent";

/// The first event: what the server is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub version: String,
    pub groups: Vec<String>,
    /// Deployment ids in config order.
    pub deployments: Vec<String>,
}

/// `event: lagged`: the server dropped this many route events for this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lagged {
    pub missed: u64,
}

/// One deployment's routing state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentHealth {
    pub id: String,
    pub group: String,
    /// Milliseconds of cooldown left, while cooling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooling_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_reason: Option<String>,
    pub rpm_used: u32,
    pub tpm_used: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_limit: Option<u64>,
    /// Why it cannot be called at all (a missing key variable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Failures in the last minute, as the cooldown rules count them (absent from older
    /// servers: 0).
    #[serde(default)]
    pub failures_last_minute: u32,
}

impl From<&DeploymentStatus> for DeploymentHealth {
    fn from(d: &DeploymentStatus) -> Self {
        DeploymentHealth {
            id: d.id.clone(),
            group: d.group.clone(),
            cooling_ms: d.health.cooling_for.map(|c| c.as_millis() as u64),
            cooldown_reason: d.health.cooldown_reason.clone(),
            rpm_used: d.health.requests_last_minute,
            tpm_used: d.health.tokens_last_minute,
            rpm_limit: d.rpm_limit,
            tpm_limit: d.tpm_limit,
            unavailable: d.unavailable.clone(),
            failures_last_minute: d.health.failures_last_minute,
        }
    }
}

/// Everything the metrics panel shows, at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorSnapshot {
    pub at_unix_ms: u64,
    pub uptime_s: u64,
    /// Chat requests the server is serving now.
    pub in_flight: usize,
    pub metrics: MetricsSnapshot,
    pub deployments: Vec<DeploymentHealth>,
    /// Every budget with its spend this period (absent from older servers: none).
    #[serde(default)]
    pub budgets: Vec<BudgetStatus>,
}
