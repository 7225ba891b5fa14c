//! `GET /metrics`: Prometheus text exposition (format 0.0.4), every name prefixed `llmux_`.
//!
//! Two sources feed it. The handlers record what this endpoint served in [`ServeMetrics`]:
//! chat requests by API, group, deployment and outcome, requests refused before routing, and
//! cumulative histograms of time to first token and total latency. The router supplies the
//! rest at scrape time: per-deployment attempts, failures by class, tokens, cost, in-flight
//! attempts, rolling percentiles and error rate ([`MetricsSnapshot`]), and cooldown and
//! rpm/tpm use ([`crate::router::DeploymentStatus`]), and each budget's spend, limit and
//! reset (`Router::budgets`). Label values come from the config, never from what a client
//! sent, so the series count is bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::error::Api;
use crate::cache::CacheStats;
use crate::metrics::MetricsSnapshot;
use crate::provider::ErrorClass;
use crate::router::{BudgetStatus, DeploymentStatus};

/// Upper bounds (seconds) of the TTFT and latency histogram buckets; `+Inf` is implied.
pub const HISTOGRAM_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A cumulative histogram.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations at or below each bucket bound (not yet cumulative).
    counts: [u64; HISTOGRAM_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = HISTOGRAM_BUCKETS.iter().position(|&b| secs <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// group → deployment → `T`. Nested rather than keyed by a `(String, String)` pair so that a
/// series that exists is found by `&str`, without building owned keys per request.
type ByPair<T> = BTreeMap<String, BTreeMap<String, T>>;

/// `map`'s entry for (`group`, `deployment`), made on first use (only then are the names
/// copied).
fn entry<'m, T: Default>(map: &'m mut ByPair<T>, group: &str, deployment: &str) -> &'m mut T {
    if !map.contains_key(group) {
        map.insert(group.to_string(), BTreeMap::new());
    }
    let Some(deployments) = map.get_mut(group) else {
        unreachable!("inserted above");
    };
    if !deployments.contains_key(deployment) {
        deployments.insert(deployment.to_string(), T::default());
    }
    let Some(value) = deployments.get_mut(deployment) else {
        unreachable!("inserted above");
    };
    value
}

/// (group, deployment, value) in label order.
fn pairs<T>(map: &ByPair<T>) -> impl Iterator<Item = (&str, &str, &T)> {
    map.iter().flat_map(|(group, deployments)| {
        deployments
            .iter()
            .map(move |(deployment, value)| (group.as_str(), deployment.as_str(), value))
    })
}

#[derive(Debug, Default)]
struct Registry {
    /// api → group → deployment → outcome → count
    requests: BTreeMap<&'static str, ByPair<BTreeMap<&'static str, u64>>>,
    rejected: BTreeMap<&'static str, u64>,
    ttft: ByPair<Histogram>,
    latency: ByPair<Histogram>,
}

/// What this endpoint served. One mutex; every record is a map lookup and an add.
#[derive(Debug, Default)]
pub struct ServeMetrics {
    inner: Mutex<Registry>,
}

impl ServeMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A chat request ended with `outcome` (`success`, `failed`, `unavailable`,
    /// `unknown_model`, `rejected`, `cancelled`).
    pub fn request(&self, api: Api, group: &str, deployment: &str, outcome: &'static str) {
        let mut r = self.lock();
        let by_pair = r.requests.entry(api.label()).or_default();
        *entry(by_pair, group, deployment)
            .entry(outcome)
            .or_default() += 1;
    }

    /// A chat request was answered by `deployment` of `group`.
    pub fn request_succeeded(
        &self,
        api: Api,
        group: &str,
        deployment: &str,
        ttft: Option<Duration>,
        total: Duration,
    ) {
        let mut r = self.lock();
        let by_pair = r.requests.entry(api.label()).or_default();
        *entry(by_pair, group, deployment)
            .entry("success")
            .or_default() += 1;
        if let Some(t) = ttft {
            entry(&mut r.ttft, group, deployment).observe(t);
        }
        entry(&mut r.latency, group, deployment).observe(total);
    }

    /// A request was refused before routing (`unauthorized`, `bad_request`,
    /// `body_too_large`, `overloaded`, `shutting_down`).
    pub fn rejected(&self, reason: &'static str) {
        *self.lock().rejected.entry(reason).or_default() += 1;
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Shared>) -> Response {
    let mut text = render(
        &state.metrics,
        &state.router.metrics(),
        &state.router.deployments(),
        state.in_flight.load(Ordering::Relaxed),
    );
    if let Some(cache) = state.router.cache_stats() {
        cache_metrics(&mut text, &cache);
    }
    budget_metrics(&mut text, &state.router.budgets());
    connection_metrics(&mut text, &state.connections);
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// The response cache's counters (only when `litellm_settings.cache` is on). A cached answer
/// is counted in `llmux_requests_total` (it was served) but never as a deployment attempt.
fn cache_metrics(out: &mut String, c: &CacheStats) {
    for (name, help, value) in [
        (
            "llmux_cache_hits_total",
            "Chat requests answered from the response cache (no upstream call, cost 0).",
            c.hits,
        ),
        (
            "llmux_cache_misses_total",
            "Response cache lookups that found nothing (or found Redis away).",
            c.misses,
        ),
        (
            "llmux_cache_stores_total",
            "Answers stored in the response cache.",
            c.stores,
        ),
    ] {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    header(
        out,
        "llmux_cache_entries",
        "gauge",
        "Answers held by the in-memory response cache (0 with Redis).",
    );
    let _ = writeln!(out, "llmux_cache_entries {}", c.entries);
}

/// The client connections: open now, the cap, and those closed before sending a request.
fn connection_metrics(out: &mut String, c: &super::connections::Connections) {
    for (name, kind, help, value) in [
        (
            "llmux_open_connections",
            "gauge",
            "Client connections open now.",
            c.open() as u64,
        ),
        (
            "llmux_max_connections",
            "gauge",
            "Client connections held at most; at the cap, those that have not sent a request are closed, oldest first.",
            c.cap() as u64,
        ),
        (
            "llmux_idle_connections_closed_total",
            "counter",
            "Connections closed before sending a request head, at the cap or past the short head deadline under pressure.",
            c.closed_waiting(),
        ),
    ] {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// Each budget's spend in its current period, its limit and the time to its reset (only with
/// budgets configured). `scope` is `llmux.budget`, a provider or `deployment <id>`, all from
/// the config.
fn budget_metrics(out: &mut String, budgets: &[BudgetStatus]) {
    if budgets.is_empty() {
        return;
    }
    let label = |b: &BudgetStatus| labels(&[("scope", &b.label), ("period", &b.period)]);
    type Family = (&'static str, &'static str, fn(&BudgetStatus) -> Option<f64>);
    let families: [Family; 3] = [
        (
            "llmux_budget_spent_usd",
            "Spent against each budget in its current period, in US dollars (0 between periods).",
            |b| Some(b.spent.as_f64()),
        ),
        (
            "llmux_budget_limit_usd",
            "Each budget's limit per period, in US dollars.",
            |b| Some(b.limit.as_f64()),
        ),
        (
            "llmux_budget_resets_in_seconds",
            "Seconds until each budget's running period ends (absent while none runs).",
            |b| b.resets_in.map(|d| d.as_secs_f64()),
        ),
    ];
    for (name, help, value) in families {
        header(out, name, "gauge", help);
        for b in budgets {
            if let Some(v) = value(b) {
                let _ = writeln!(out, "{name}{} {}", label(b), num(v));
            }
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A float as Prometheus writes it.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

fn histogram(out: &mut String, name: &str, help: &str, data: &ByPair<Histogram>) {
    header(out, name, "histogram", help);
    for (group, deployment, h) in pairs(data) {
        let mut cumulative = 0;
        for (bound, n) in HISTOGRAM_BUCKETS.iter().zip(h.counts) {
            cumulative += n;
            let le = num(*bound);
            let l = labels(&[("group", group), ("deployment", deployment), ("le", &le)]);
            let _ = writeln!(out, "{name}_bucket{l} {cumulative}");
        }
        let l = labels(&[("group", group), ("deployment", deployment), ("le", "+Inf")]);
        let _ = writeln!(out, "{name}_bucket{l} {}", h.count);
        let l = labels(&[("group", group), ("deployment", deployment)]);
        let _ = writeln!(out, "{name}_sum{l} {}", num(h.sum));
        let _ = writeln!(out, "{name}_count{l} {}", h.count);
    }
}

/// The whole exposition.
pub fn render(
    serve: &ServeMetrics,
    snapshot: &MetricsSnapshot,
    deployments: &[DeploymentStatus],
    in_flight: usize,
) -> String {
    let mut out = String::with_capacity(8192);
    {
        let r = serve.lock();
        header(
            &mut out,
            "llmux_requests_total",
            "counter",
            "Chat requests this endpoint finished, by API, the group and deployment that answered (the requested group and an empty deployment on failure) and outcome.",
        );
        for (api, by_pair) in &r.requests {
            for (group, deployment, outcomes) in pairs(by_pair) {
                for (outcome, n) in outcomes {
                    let l = labels(&[
                        ("api", api),
                        ("group", group),
                        ("deployment", deployment),
                        ("outcome", outcome),
                    ]);
                    let _ = writeln!(out, "llmux_requests_total{l} {n}");
                }
            }
        }
        header(
            &mut out,
            "llmux_rejected_requests_total",
            "counter",
            "Requests refused before routing, by reason.",
        );
        for (reason, n) in &r.rejected {
            let _ = writeln!(
                out,
                "llmux_rejected_requests_total{} {n}",
                labels(&[("reason", reason)])
            );
        }
        histogram(
            &mut out,
            "llmux_time_to_first_token_seconds",
            "Time from receiving a chat request to its first token, for answered requests.",
            &r.ttft,
        );
        histogram(
            &mut out,
            "llmux_request_duration_seconds",
            "Time from receiving a chat request to the end of its answer, for answered requests.",
            &r.latency,
        );
    }
    header(
        &mut out,
        "llmux_in_flight_requests",
        "gauge",
        "Chat requests being served now.",
    );
    let _ = writeln!(out, "llmux_in_flight_requests {in_flight}");

    deployment_metrics(&mut out, snapshot);
    health_metrics(&mut out, deployments);
    out
}

/// One gauge or counter family with a value per deployment.
fn per_deployment<F>(
    out: &mut String,
    snapshot: &MetricsSnapshot,
    name: &str,
    kind: &str,
    help: &str,
    value: F,
) where
    F: Fn(&crate::metrics::DeploymentStats) -> Option<f64>,
{
    header(out, name, kind, help);
    for d in &snapshot.deployments {
        if let Some(v) = value(d) {
            let l = labels(&[("group", &d.group), ("deployment", &d.id)]);
            let _ = writeln!(out, "{name}{l} {}", num(v));
        }
    }
}

fn deployment_metrics(out: &mut String, snapshot: &MetricsSnapshot) {
    header(
        out,
        "llmux_deployment_attempts_total",
        "counter",
        "Attempts the router made at each deployment, by outcome (success, failure, cancelled; in-flight ones are not counted yet).",
    );
    for d in &snapshot.deployments {
        for (outcome, n) in [
            ("success", d.successes),
            ("failure", d.failed()),
            ("cancelled", d.cancelled),
        ] {
            let l = labels(&[
                ("group", &d.group),
                ("deployment", &d.id),
                ("outcome", outcome),
            ]);
            let _ = writeln!(out, "llmux_deployment_attempts_total{l} {n}");
        }
    }
    header(
        out,
        "llmux_deployment_failures_total",
        "counter",
        "Failed attempts at each deployment, by error class.",
    );
    for d in &snapshot.deployments {
        for class in ErrorClass::ALL {
            let n = d.failures.get(&class).copied().unwrap_or(0);
            let l = labels(&[
                ("group", &d.group),
                ("deployment", &d.id),
                ("class", class.name()),
            ]);
            let _ = writeln!(out, "llmux_deployment_failures_total{l} {n}");
        }
    }
    per_deployment(
        out,
        snapshot,
        "llmux_input_tokens_total",
        "counter",
        "Prompt tokens of successful attempts (estimated where the provider sent none).",
        |d| Some(d.tokens_in as f64),
    );
    per_deployment(
        out,
        snapshot,
        "llmux_output_tokens_total",
        "counter",
        "Completion tokens of successful attempts (estimated where the provider sent none).",
        |d| Some(d.tokens_out as f64),
    );
    per_deployment(
        out,
        snapshot,
        "llmux_cost_usd_total",
        "counter",
        "What the priced successful attempts cost, in US dollars.",
        |d| Some(d.cost.as_f64()),
    );
    per_deployment(
        out,
        snapshot,
        "llmux_unpriced_requests_total",
        "counter",
        "Attempts billed at an unknown price (not in llmux_cost_usd_total).",
        |d| Some(d.unpriced as f64),
    );
    per_deployment(
        out,
        snapshot,
        "llmux_deployment_in_flight",
        "gauge",
        "Attempts at each deployment started and not yet ended.",
        |d| Some(f64::from(d.in_flight)),
    );
    per_deployment(
        out,
        snapshot,
        "llmux_deployment_error_rate",
        "gauge",
        "Failed / finished attempts over the rolling window (5 minutes).",
        |d| Some(d.error_rate),
    );
    quantiles(
        out,
        snapshot,
        "llmux_deployment_ttft_seconds",
        "Time to first token of successful attempts over the rolling window, by quantile.",
        |d| [d.ttft_p50, d.ttft_p95],
    );
    quantiles(
        out,
        snapshot,
        "llmux_deployment_latency_seconds",
        "Total latency of successful attempts over the rolling window, by quantile.",
        |d| [d.latency_p50, d.latency_p95],
    );
}

fn quantiles<F>(out: &mut String, snapshot: &MetricsSnapshot, name: &str, help: &str, value: F)
where
    F: Fn(&crate::metrics::DeploymentStats) -> [Option<Duration>; 2],
{
    header(out, name, "gauge", help);
    for d in &snapshot.deployments {
        for (q, v) in ["0.5", "0.95"].iter().zip(value(d)) {
            if let Some(v) = v {
                let l = labels(&[("group", &d.group), ("deployment", &d.id), ("quantile", q)]);
                let _ = writeln!(out, "{name}{l} {}", num(v.as_secs_f64()));
            }
        }
    }
}

fn health_metrics(out: &mut String, deployments: &[DeploymentStatus]) {
    let each = |out: &mut String,
                name: &str,
                kind: &str,
                help: &str,
                f: &dyn Fn(&DeploymentStatus) -> Option<f64>| {
        header(out, name, kind, help);
        for d in deployments {
            if let Some(v) = f(d) {
                let l = labels(&[("group", &d.group), ("deployment", &d.id)]);
                let _ = writeln!(out, "{name}{l} {}", num(v));
            }
        }
    };
    each(
        out,
        "llmux_deployment_cooling",
        "gauge",
        "1 while the deployment is cooling down (skipped by routing), else 0.",
        &|d| {
            Some(if d.health.cooling_for.is_some() {
                1.0
            } else {
                0.0
            })
        },
    );
    each(
        out,
        "llmux_deployment_cooldown_seconds",
        "gauge",
        "Seconds of cooldown left (0 when not cooling).",
        &|d| Some(d.health.cooling_for.map_or(0.0, |c| c.as_secs_f64())),
    );
    each(
        out,
        "llmux_deployment_available",
        "gauge",
        "0 when the deployment cannot be called at all (e.g. its key variable is missing), else 1.",
        &|d| Some(if d.unavailable.is_some() { 0.0 } else { 1.0 }),
    );
    each(
        out,
        "llmux_deployment_rpm_used",
        "gauge",
        "Requests sent to the deployment in the last minute.",
        &|d| Some(f64::from(d.health.requests_last_minute)),
    );
    each(
        out,
        "llmux_deployment_tpm_used",
        "gauge",
        "Tokens used by the deployment in the last minute.",
        &|d| Some(d.health.tokens_last_minute as f64),
    );
    each(
        out,
        "llmux_deployment_rpm_limit",
        "gauge",
        "The deployment's configured rpm (absent when unlimited).",
        &|d| d.rpm_limit.map(f64::from),
    );
    each(
        out,
        "llmux_deployment_tpm_limit",
        "gauge",
        "The deployment's configured tpm (absent when unlimited).",
        &|d| d.tpm_limit.map(|t| t as f64),
    );
    each(
        out,
        "llmux_deployment_failures_last_minute",
        "gauge",
        "Failures in the last minute, as the cooldown rules count them.",
        &|d| Some(f64::from(d.health.failures_last_minute)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_inf() {
        let m = ServeMetrics::default();
        for ms in [3, 40, 40, 700] {
            m.request_succeeded(Api::OpenAi, "g", "d", None, Duration::from_millis(ms));
        }
        let text = render(&m, &MetricsSnapshot::default(), &[], 0);
        let bucket = |le: &str| {
            let prefix = format!(
                "llmux_request_duration_seconds_bucket{{group=\"g\",deployment=\"d\",le=\"{le}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap()
                .to_string()
        };
        assert_eq!(bucket("0.005"), "1");
        assert_eq!(bucket("0.05"), "3");
        assert_eq!(bucket("1"), "4");
        assert_eq!(bucket("+Inf"), "4");
        assert!(text.contains(
            "llmux_requests_total{api=\"openai\",group=\"g\",deployment=\"d\",outcome=\"success\"} 4"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
