//! The metrics registry: per deployment and per model group, what the router's attempts did.
//!
//! The router reports each attempt as it starts and as it ends ([`Metrics::attempt_started`],
//! `attempt_succeeded`, `attempt_failed`, `attempt_cancelled`), passing the time in, so tests
//! and tokio's paused clock drive the windows. It reads back what routing needs on its hot
//! path ([`Metrics::in_flight`], [`Metrics::ttft_rank`]); the TUI, `serve` and `check`
//! read a [`MetricsSnapshot`] of everything. One mutex guards it all; every call is a couple
//! of hash lookups and integer additions.

use std::collections::{BTreeMap, VecDeque};

// Keys are deployment ids and group names from the config: foldhash, not SipHash (a
// request looks several up).
use foldhash::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::window::{Reset, Ring, RollingHistogram, ticks};
use crate::config::RoutingArgs;
use crate::money::Usd;
use crate::provider::{ErrorClass, Usage};

/// How far back error rates, percentiles and tokens/s look.
pub const ROLLING_WINDOW: Duration = Duration::from_secs(300);
/// The width of one sparkline bar, and of the counters behind the error rate.
pub const SPARK_BUCKET: Duration = Duration::from_secs(10);
/// Bars in a sparkline: the rolling window in buckets.
pub const SPARK_BUCKETS: usize = (ROLLING_WINDOW.as_secs() / SPARK_BUCKET.as_secs()) as usize;
/// The time one latency histogram covers. Percentiles cover the last [`HISTOGRAM_SLOTS`] of
/// them: between 5 and 6 minutes of samples.
const HISTOGRAM_SLOT: Duration = Duration::from_secs(60);
const HISTOGRAM_SLOTS: usize = (ROLLING_WINDOW.as_secs() / HISTOGRAM_SLOT.as_secs()) as usize + 1;
/// TTFT samples behind [`Metrics::ttft_rank`] unless `routing_strategy_args` says otherwise
/// (LiteLLM's latency routing keeps 10).
pub const TTFT_SAMPLES: usize = 10;
/// A timed-out attempt enters the TTFT average as this many times what it waited, so a
/// deployment that times out ranks behind one that is merely slow.
const TIMEOUT_PENALTY_FACTOR: u32 = 2;
const MICROS_PER_SEC: f64 = 1_000_000.0;
const MICROS_PER_MILLI: u64 = 1_000;

/// What a successful attempt reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttemptSuccess {
    /// Time to the first token (`None` when the answer was not streamed).
    pub ttft: Option<Duration>,
    /// Time from sending the request to the end of the answer.
    pub total: Duration,
    pub usage: Usage,
    /// `None` when the deployment has no known price.
    pub cost: Option<Usd>,
}

/// Counters of one [`SPARK_BUCKET`].
#[derive(Debug, Clone, Default)]
struct Bucket {
    successes: u64,
    failures: u64,
    /// Sum of the successes' total latency.
    latency_micros: u64,
    /// Output tokens and streaming time after the first token, for tokens/s.
    stream_tokens: u64,
    stream_micros: u64,
}

/// The shortest stream after its first token that counts toward tokens/s: an answer that came
/// in one burst (a cache, a local upstream a millisecond away) spans microseconds, and its
/// "rate" (hundreds of thousands of tokens/s) says nothing about the model.
pub const MIN_RATE_SPAN: Duration = Duration::from_millis(5);

/// An answer's tokens/s: `tokens` over `span` (its first token to its end), or `None` when it
/// came in one burst (under [`MIN_RATE_SPAN`]) or brought no tokens. The metrics count the
/// same answers; the TUI's answer line and compare's columns show this figure.
pub fn answer_rate(tokens: u64, span: Duration) -> Option<f64> {
    (span >= MIN_RATE_SPAN && tokens > 0).then(|| tokens as f64 / span.as_secs_f64())
}

impl Reset for Bucket {
    fn reset(&mut self) {
        *self = Bucket::default();
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The current bucket numbers of both windows.
#[derive(Debug, Clone, Copy)]
struct Now {
    spark: u64,
    timing: u64,
    at: Instant,
}

/// Everything counted for one deployment or one group.
#[derive(Debug, Clone)]
struct Aggregate {
    requests: u64,
    successes: u64,
    cancelled: u64,
    failures: [u64; ErrorClass::ALL.len()],
    in_flight: u32,
    tokens_in: u64,
    tokens_out: u64,
    cost: Usd,
    unpriced: u64,
    buckets: Ring<Bucket>,
    ttft: RollingHistogram,
    latency: RollingHistogram,
    /// The latest times to first token (newest last), with when each was taken.
    ttft_recent: VecDeque<(Instant, Duration)>,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            requests: 0,
            successes: 0,
            cancelled: 0,
            failures: [0; ErrorClass::ALL.len()],
            in_flight: 0,
            tokens_in: 0,
            tokens_out: 0,
            cost: Usd::ZERO,
            unpriced: 0,
            buckets: Ring::new(SPARK_BUCKETS),
            ttft: RollingHistogram::new(HISTOGRAM_SLOTS),
            latency: RollingHistogram::new(HISTOGRAM_SLOTS),
            ttft_recent: VecDeque::with_capacity(TTFT_SAMPLES),
        }
    }
}

impl Aggregate {
    fn started(&mut self) {
        self.requests += 1;
        self.in_flight = self.in_flight.saturating_add(1);
    }

    fn push_ttft(&mut self, sample: Duration, now: Now, keep: usize) {
        while self.ttft_recent.len() >= keep.max(1) {
            self.ttft_recent.pop_front();
        }
        self.ttft_recent.push_back((now.at, sample));
    }

    /// Tokens an attempt was billed for and what they cost (`None`: no known price).
    fn spent(&mut self, usage: &Usage, cost: Option<Usd>) {
        self.tokens_in = self.tokens_in.saturating_add(usage.input);
        self.tokens_out = self.tokens_out.saturating_add(usage.output);
        match cost {
            Some(cost) => self.cost += cost,
            None => self.unpriced += 1,
        }
    }

    fn succeeded(&mut self, s: &AttemptSuccess, now: Now, keep: usize) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.successes += 1;
        // Without a stream the whole answer is the first token.
        self.push_ttft(s.ttft.unwrap_or(s.total), now, keep);
        if let Some(bucket) = self.buckets.at(now.spark) {
            bucket.successes += 1;
            bucket.latency_micros = bucket.latency_micros.saturating_add(micros(s.total));
            if let Some(ttft) = s
                .ttft
                .filter(|t| answer_rate(s.usage.output, s.total.saturating_sub(*t)).is_some())
            {
                bucket.stream_tokens = bucket.stream_tokens.saturating_add(s.usage.output);
                bucket.stream_micros = bucket.stream_micros.saturating_add(micros(s.total - ttft));
            }
        }
        if let Some(ttft) = s.ttft {
            self.ttft.record(now.timing, ttft);
        }
        self.latency.record(now.timing, s.total);
    }

    fn failed(&mut self, class: ErrorClass, elapsed: Duration, now: Now, keep: usize) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.failures[class as usize] += 1;
        if class == ErrorClass::Timeout {
            self.push_ttft(elapsed.saturating_mul(TIMEOUT_PENALTY_FACTOR), now, keep);
        }
        if let Some(bucket) = self.buckets.at(now.spark) {
            bucket.failures += 1;
        }
    }

    fn cancelled(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.cancelled += 1;
    }

    /// The samples younger than `args.ttl`, ranked as `args` says: their mean, or LiteLLM's
    /// nearest-rank `ttft_percentile` of them.
    fn ttft_rank(&self, args: &RoutingArgs, now: Instant) -> Option<Duration> {
        let mut fresh: Vec<Duration> = self
            .ttft_recent
            .iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) < args.ttl)
            .map(|(_, d)| *d)
            .collect();
        let n = u32::try_from(fresh.len()).ok().filter(|n| *n > 0)?;
        match args.ttft_percentile {
            Some(p) => {
                fresh.sort_unstable();
                let rank = (f64::from(n) * p).ceil() as usize;
                fresh.get(rank.saturating_sub(1)).copied()
            }
            None => Some(fresh.iter().sum::<Duration>() / n),
        }
    }

    fn summary(&mut self, now: Now) -> Summary {
        self.ttft.advance(now.timing);
        self.latency.advance(now.timing);
        let (mut ok, mut failed, mut tokens, mut stream) = (0u64, 0u64, 0u64, 0u64);
        for b in self.buckets.recent(now.spark) {
            ok += b.successes;
            failed += b.failures;
            tokens += b.stream_tokens;
            stream += b.stream_micros;
        }
        let attempts = ok + failed;
        let ttft = self.ttft.percentiles();
        let latency = self.latency.percentiles();
        Summary {
            requests: self.requests,
            successes: self.successes,
            cancelled: self.cancelled,
            failures: ErrorClass::ALL
                .iter()
                .map(|&c| (c, self.failures[c as usize]))
                .filter(|&(_, n)| n > 0)
                .collect(),
            error_rate: if attempts == 0 {
                0.0
            } else {
                failed as f64 / attempts as f64
            },
            ttft_p50: ttft.map(|p| p.0),
            ttft_p95: ttft.map(|p| p.1),
            latency_p50: latency.map(|p| p.0),
            latency_p95: latency.map(|p| p.1),
            tokens_per_s: (stream > 0).then(|| tokens as f64 * MICROS_PER_SEC / stream as f64),
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            cost: self.cost,
            unpriced: self.unpriced,
            in_flight: self.in_flight,
            latency_spark: self.buckets.series(now.spark, 0, |b| {
                (b.latency_micros / b.successes.max(1)) / MICROS_PER_MILLI
            }),
            error_spark: self.buckets.series(now.spark, 0, |b| b.failures),
        }
    }
}

/// The numbers shared by [`DeploymentStats`] and [`GroupStats`].
struct Summary {
    requests: u64,
    successes: u64,
    cancelled: u64,
    failures: BTreeMap<ErrorClass, u64>,
    error_rate: f64,
    ttft_p50: Option<Duration>,
    ttft_p95: Option<Duration>,
    latency_p50: Option<Duration>,
    latency_p95: Option<Duration>,
    tokens_per_s: Option<f64>,
    tokens_in: u64,
    tokens_out: u64,
    cost: Usd,
    unpriced: u64,
    in_flight: u32,
    latency_spark: Vec<u64>,
    error_spark: Vec<u64>,
}

/// Declares a stats struct with the shared fields after its own, and its constructor from
/// a [`Summary`], so the two public structs cannot drift apart.
macro_rules! stats_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $own:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $($(#[$fmeta])* pub $own: $ty,)*
            /// Attempts started (including those still in flight).
            pub requests: u64,
            pub successes: u64,
            /// Attempts the caller abandoned (not failures).
            pub cancelled: u64,
            /// Failed attempts by class (classes with none are absent).
            pub failures: BTreeMap<ErrorClass, u64>,
            /// Failures / finished attempts over the last [`ROLLING_WINDOW`] (0 when none).
            pub error_rate: f64,
            /// Percentiles of successful attempts over the last [`ROLLING_WINDOW`] or so.
            pub ttft_p50: Option<Duration>,
            pub ttft_p95: Option<Duration>,
            pub latency_p50: Option<Duration>,
            pub latency_p95: Option<Duration>,
            /// Output tokens per second of streaming after the first token, over the window.
            pub tokens_per_s: Option<f64>,
            pub tokens_in: u64,
            pub tokens_out: u64,
            /// What the priced attempts cost: every attempt billed for tokens, the ones that
            /// failed or were cancelled after streaming some as well as the successes.
            pub cost: Usd,
            /// Attempts billed at an unknown price (not counted in `cost`).
            pub unpriced: u64,
            pub in_flight: u32,
            /// Mean latency in ms of the successes of each [`SPARK_BUCKET`], oldest first,
            /// always [`SPARK_BUCKETS`] long (0 where there were none).
            pub latency_spark: Vec<u64>,
            /// Failures in each [`SPARK_BUCKET`], oldest first, [`SPARK_BUCKETS`] long.
            pub error_spark: Vec<u64>,
        }

        impl $name {
            fn from_summary($($own: $ty,)* s: Summary) -> $name {
                $name {
                    $($own,)*
                    requests: s.requests,
                    successes: s.successes,
                    cancelled: s.cancelled,
                    failures: s.failures,
                    error_rate: s.error_rate,
                    ttft_p50: s.ttft_p50,
                    ttft_p95: s.ttft_p95,
                    latency_p50: s.latency_p50,
                    latency_p95: s.latency_p95,
                    tokens_per_s: s.tokens_per_s,
                    tokens_in: s.tokens_in,
                    tokens_out: s.tokens_out,
                    cost: s.cost,
                    unpriced: s.unpriced,
                    in_flight: s.in_flight,
                    latency_spark: s.latency_spark,
                    error_spark: s.error_spark,
                }
            }

            /// Failed attempts of every class.
            pub fn failed(&self) -> u64 {
                self.failures.values().sum()
            }
        }
    };
}

stats_struct! {
    /// One deployment's numbers.
    DeploymentStats {
        /// The deployment id.
        id: String,
        /// Its model group (as first reported).
        group: String,
    }
}

stats_struct! {
    /// One model group's numbers: every attempt at any of its deployments.
    GroupStats {
        /// The group name.
        group: String,
    }
}

/// Everything at one instant, for display and for `serve`'s `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// In the order they were first seen (or seeded).
    pub deployments: Vec<DeploymentStats>,
    pub groups: Vec<GroupStats>,
    /// What every priced attempt cost (the sum of the deployments' `cost`).
    pub total_cost: Usd,
    /// Attempts billed at an unknown price.
    pub unpriced_requests: u64,
}

impl MetricsSnapshot {
    pub fn deployment(&self, id: &str) -> Option<&DeploymentStats> {
        self.deployments.iter().find(|d| d.id == id)
    }

    pub fn group(&self, name: &str) -> Option<&GroupStats> {
        self.groups.iter().find(|g| g.group == name)
    }
}

/// A deployment's counters with its group.
#[derive(Debug)]
struct DeploymentEntry {
    id: String,
    group: String,
    agg: Aggregate,
}

#[derive(Debug, Default)]
struct Inner {
    /// The first instant any call passed in; windows count from it.
    epoch: Option<Instant>,
    deployments: Vec<DeploymentEntry>,
    deployment_index: HashMap<String, usize>,
    groups: Vec<(String, Aggregate)>,
    group_index: HashMap<String, usize>,
    total_cost: Usd,
    unpriced: u64,
    /// TTFT samples kept per deployment; `None`: [`TTFT_SAMPLES`].
    ttft_keep: Option<usize>,
}

impl Inner {
    fn now(&mut self, now: Instant) -> Now {
        let epoch = *self.epoch.get_or_insert(now);
        Now {
            spark: ticks(epoch, now, SPARK_BUCKET),
            timing: ticks(epoch, now, HISTOGRAM_SLOT),
            at: now,
        }
    }

    fn ttft_keep(&self) -> usize {
        self.ttft_keep.unwrap_or(TTFT_SAMPLES)
    }

    fn deployment_slot(&mut self, id: &str, group: &str) -> usize {
        if let Some(&i) = self.deployment_index.get(id) {
            return i;
        }
        let i = self.deployments.len();
        self.deployments.push(DeploymentEntry {
            id: id.to_string(),
            group: group.to_string(),
            agg: Aggregate::default(),
        });
        self.deployment_index.insert(id.to_string(), i);
        i
    }

    fn group_slot(&mut self, group: &str) -> usize {
        if let Some(&i) = self.group_index.get(group) {
            return i;
        }
        let i = self.groups.len();
        self.groups.push((group.to_string(), Aggregate::default()));
        self.group_index.insert(group.to_string(), i);
        i
    }

    /// The aggregates of a deployment and of the group it is reporting for.
    fn both(&mut self, id: &str, group: &str) -> [&mut Aggregate; 2] {
        let d = self.deployment_slot(id, group);
        let g = self.group_slot(group);
        [&mut self.deployments[d].agg, &mut self.groups[g].1]
    }

    /// The one place a spend is counted: the deployment's, its group's and the total.
    fn spend(&mut self, id: &str, group: &str, usage: &Usage, cost: Option<Usd>) {
        match cost {
            Some(cost) => self.total_cost += cost,
            None => self.unpriced += 1,
        }
        for agg in self.both(id, group) {
            agg.spent(usage, cost);
        }
    }

    fn deployment(&self, id: &str) -> Option<&Aggregate> {
        self.deployment_index
            .get(id)
            .map(|&i| &self.deployments[i].agg)
    }
}

/// The registry. Cloning shares it.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// A registry keeping `keep` TTFT samples per deployment for latency-based routing
    /// (`routing_strategy_args.max_latency_list_size`).
    pub fn with_ttft_samples(keep: usize) -> Metrics {
        let metrics = Metrics::default();
        metrics.lock().ttft_keep = Some(keep);
        metrics
    }

    /// The state, even if a thread panicked while holding it (counters stay usable).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists a deployment (and its group) before it has traffic, so it shows with zeros.
    pub fn seed_deployment(&self, id: &str, group: &str) {
        let mut inner = self.lock();
        inner.deployment_slot(id, group);
        inner.group_slot(group);
    }

    /// An attempt was sent: one more request and one more in flight.
    pub fn attempt_started(&self, deployment: &str, group: &str, now: Instant) {
        let mut inner = self.lock();
        inner.now(now);
        for agg in inner.both(deployment, group) {
            agg.started();
        }
    }

    /// An attempt finished with an answer.
    pub fn attempt_succeeded(
        &self,
        deployment: &str,
        group: &str,
        s: &AttemptSuccess,
        now: Instant,
    ) {
        let mut inner = self.lock();
        let now = inner.now(now);
        inner.spend(deployment, group, &s.usage, s.cost);
        let keep = inner.ttft_keep();
        for agg in inner.both(deployment, group) {
            agg.succeeded(s, now, keep);
        }
    }

    /// An attempt failed after `elapsed`. A timeout also enters the TTFT average as a
    /// penalty sample.
    pub fn attempt_failed(
        &self,
        deployment: &str,
        group: &str,
        class: ErrorClass,
        elapsed: Duration,
        now: Instant,
    ) {
        let mut inner = self.lock();
        let now = inner.now(now);
        let keep = inner.ttft_keep();
        for agg in inner.both(deployment, group) {
            agg.failed(class, elapsed, now, keep);
        }
    }

    /// An attempt that did not answer was billed for `usage` all the same (tokens streamed
    /// before it failed or was cancelled): counted as a success's spend is.
    pub fn attempt_spent(&self, deployment: &str, group: &str, usage: &Usage, cost: Option<Usd>) {
        self.lock().spend(deployment, group, usage, cost);
    }

    /// The caller gave up on an attempt (stream dropped): no longer in flight, not a failure.
    pub fn attempt_cancelled(&self, deployment: &str, group: &str, now: Instant) {
        let mut inner = self.lock();
        inner.now(now);
        for agg in inner.both(deployment, group) {
            agg.cancelled();
        }
    }

    /// Attempts at `deployment` that have started and not ended (for least-busy routing).
    pub fn in_flight(&self, deployment: &str) -> u32 {
        self.lock()
            .deployment(deployment)
            .map_or(0, |a| a.in_flight)
    }

    /// The mean of the kept times to first token; `None` before any sample.
    pub fn ttft_average(&self, deployment: &str) -> Option<Duration> {
        self.ttft_rank(deployment, &RoutingArgs::default(), Instant::now())
    }

    /// A deployment's time to first token as latency-based routing ranks it (its kept samples
    /// younger than `args.ttl`, by mean or `args.ttft_percentile`); `None` before any sample.
    pub fn ttft_rank(
        &self,
        deployment: &str,
        args: &RoutingArgs,
        now: Instant,
    ) -> Option<Duration> {
        self.lock().deployment(deployment)?.ttft_rank(args, now)
    }

    /// Everything, as of `now`.
    pub fn snapshot(&self, now: Instant) -> MetricsSnapshot {
        let mut inner = self.lock();
        let now = match inner.epoch {
            Some(epoch) => Now {
                spark: ticks(epoch, now, SPARK_BUCKET),
                timing: ticks(epoch, now, HISTOGRAM_SLOT),
                at: now,
            },
            None => Now {
                spark: 0,
                timing: 0,
                at: now,
            },
        };
        MetricsSnapshot {
            deployments: inner
                .deployments
                .iter_mut()
                .map(|d| {
                    DeploymentStats::from_summary(d.id.clone(), d.group.clone(), d.agg.summary(now))
                })
                .collect(),
            groups: inner
                .groups
                .iter_mut()
                .map(|(name, agg)| GroupStats::from_summary(name.clone(), agg.summary(now)))
                .collect(),
            total_cost: inner.total_cost,
            unpriced_requests: inner.unpriced,
        }
    }
}
