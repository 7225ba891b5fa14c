//! The router: LiteLLM's semantics over model groups, in-process. One [`Router`] is shared by
//! the TUI, `ask` and `serve`.
//!
//! A request enters through [`Router::chat`] with a model group (or alias) and messages. Its
//! walk through the group and its fallbacks runs inside the returned [`ChatStream`] (`stream`),
//! driven by whoever reads it: each group's turn (`group`) walks its `order` tiers, picking
//! deployments by strategy (`select`), retrying (`retry`) and cooling down failing ones
//! (`cooldown`, `health`) by LiteLLM's rules (`policy`), and streams the answer back as
//! [`ChatEvent`]s. Every decision is also a [`RouteEvent`] sent to subscribers, the metrics
//! and the request log. Dropping the [`ChatStream`] cancels the request, which drops the HTTP
//! request. With `router_settings.redis_*`, limits, cooldowns and the cost ledger are shared
//! with every other instance through Redis (`shared`).

mod attempt;
pub mod budget;
mod cached;
pub mod capture;
pub mod cooldown;
mod error;
mod event;
mod group;
pub mod health;
mod minute_window;
pub mod ping;
pub mod policy;
mod request;
pub mod retry;
pub mod select;
mod shared;
mod sink;
mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::cache::{CacheStats, ResponseCache};
use crate::config::{Config, Deployment};
use crate::metrics::{Metrics, MetricsSnapshot, Price, PriceTable};
use crate::provider::{ChatRequest, HttpClient, HttpOptions};

pub use budget::{BudgetStatus, ScopeKind, WallClock};
pub use error::RouterError;
pub use event::*;
pub use health::HealthView;
pub use ping::{PingResult, PingState};
pub use shared::{SharedCost, SharedStatus};
pub use sink::{EventLog, Origin, PastSpend, RequestStart, Subscriber};
pub use stream::ChatStream;

/// What a router is built with besides its config.
#[derive(Default)]
pub struct RouterOptions {
    /// The HTTP client; one is built with `http_options` when `None`.
    pub http: Option<HttpClient>,
    /// Which transport and TLS roots a built client gets (the default: hyper, the platform's
    /// roots); the front ends pass [`HttpOptions::from_environment`].
    pub http_options: HttpOptions,
    /// The price table; the built-in one (plus `llmux.pricing_file`) when `None`.
    pub prices: Option<PriceTable>,
    /// Where every route event is recorded (the request log): a subscriber that is also read
    /// at start, for the request ids to go on from and the spend budgets replay.
    pub request_log: Option<Arc<dyn EventLog>>,
    /// Who else takes every route event (the telemetry exporter).
    pub subscribers: Vec<Arc<dyn Subscriber>>,
    /// Seed for the strategies' randomness (tests); from the OS when `None`.
    pub seed: Option<u64>,
    /// The wall clock budget periods run on; the system's when `None` (tests move it).
    pub clock: Option<WallClock>,
    /// How many of the latest route events [`Router::subscribe_with_recent`] gives (0: none
    /// kept; `llmux serve` keeps some for the monitors that connect).
    pub recent_events: usize,
    /// Keep what goes over the wire for each attempt here (the TUI's inspector); `None`
    /// captures nothing and costs nothing.
    pub capture: Option<Arc<capture::Capture>>,
}

impl std::fmt::Debug for RouterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterOptions")
            .field("request_log", &self.request_log.is_some())
            .field("subscribers", &self.subscribers.len())
            .field("seed", &self.seed)
            .field("recent_events", &self.recent_events)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) http: HttpClient,
    pub(crate) metrics: Metrics,
    pub(crate) health: health::HealthBook,
    /// Subscribers, the request log and the recent events.
    pub(crate) sink: sink::EventSink,
    pub(crate) rng: Mutex<SmallRng>,
    /// Per deployment id: its price and context window, looked up once.
    pub(crate) prices: HashMap<String, Option<Price>>,
    pub(crate) max_input: HashMap<String, Option<u64>>,
    /// The response cache, when `litellm_settings.cache` is on (`cached`).
    pub(crate) cache: Option<ResponseCache>,
    /// Spend against every budget (`budget`).
    pub(crate) budgets: budget::Budgets,
    /// Where attempts' wire records go, when asked for (`capture`).
    pub(crate) capture: Option<Arc<capture::Capture>>,
    next_id: AtomicU64,
}

/// The shared router. Cheap to clone.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("groups", &self.inner.config.groups)
            .finish_non_exhaustive()
    }
}

/// One deployment as the picker and the metrics pane show it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentStatus {
    pub id: String,
    pub group: String,
    pub health: HealthView,
    pub rpm_limit: Option<u32>,
    pub tpm_limit: Option<u64>,
    pub price: Option<Price>,
    pub max_input_tokens: Option<u64>,
    /// Why it cannot be called at all (missing key variable).
    pub unavailable: Option<String>,
    /// At its rpm/tpm limit or over a budget: skipped until then (see [`Limited`]).
    pub limited: Option<Limited>,
}

impl Router {
    pub fn new(config: Config, options: RouterOptions) -> Result<Router, RouterError> {
        let http = match options.http {
            Some(h) => h,
            None => HttpClient::with_options(&options.http_options).map_err(RouterError::Http)?,
        };
        let table = options
            .prices
            .unwrap_or_else(PriceTable::builtin)
            .with_pricing_file(&config)?;
        let metrics = Metrics::with_ttft_samples(config.router.routing_args.max_latency_list_size);
        let mut prices = HashMap::new();
        let mut max_input = HashMap::new();
        for d in &config.deployments {
            metrics.seed_deployment(&d.id, &d.group);
            prices.insert(d.id.clone(), table.price_for(d));
            max_input.insert(d.id.clone(), table.max_input_tokens(d));
        }
        let seed = options.seed.unwrap_or_else(rand::random);
        let first_id = options
            .request_log
            .as_ref()
            .and_then(|log| log.last_request_id())
            .map_or(1, |last| last + 1);
        let sink = sink::EventSink::new(
            options.request_log,
            options.subscribers,
            options.recent_events,
        );
        let mut health = health::HealthBook::default();
        if let Some(redis) = &config.router.redis {
            let groups = config
                .deployments
                .iter()
                .map(|d| (d.id.clone(), d.group.clone()))
                .collect();
            let shared = shared::SharedState::start(redis, groups, health.local(), sink.clone())
                .map_err(RouterError::SharedState)?;
            health.set_shared(shared);
        }
        let cache = cached::build(&config, &sink)?;
        let budgets =
            budget::Budgets::new(&config, options.clock.unwrap_or_else(WallClock::system));
        let inner = Arc::new(Inner {
            config,
            http,
            metrics,
            health,
            sink,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            prices,
            max_input,
            cache,
            budgets,
            capture: options.capture,
            // Numbered on from the request log, not from #1 again with every run.
            next_id: AtomicU64::new(first_id),
        });
        budget::start_seed(&inner);
        budget::spawn_sync(&inner);
        Ok(Router { inner })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The wire capture given in [`RouterOptions::capture`].
    pub fn capture(&self) -> Option<&Arc<capture::Capture>> {
        self.inner.capture.as_ref()
    }

    /// The HTTP client every call goes out on (for `serve`'s calls outside routing).
    pub fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// Starts a request on `model` (a group or an alias): it is routed and its call begun before
    /// this returns, then advances while the returned stream is read (in the reader's task; give
    /// each concurrent request a task of its own, as `serve` and the TUI do). Read to the
    /// `Finished` event; drop the stream to cancel.
    pub fn chat(&self, model: &str, request: ChatRequest) -> ChatStream {
        self.chat_from(model, request, Origin::default())
    }

    /// [`Router::chat`] for a request that comes with a trace context (`serve`'s
    /// `traceparent`), which the subscribers continue.
    pub fn chat_from(&self, model: &str, request: ChatRequest, origin: Origin) -> ChatStream {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(stream::Outbox::default());
        let run = request::run(
            self.inner.clone(),
            id,
            model.to_string(),
            request,
            origin,
            outbox.clone(),
        );
        ChatStream::start(id, outbox, run)
    }

    /// Returns once every route event so far is written to the request log (and wherever
    /// else a subscriber writes before it returns).
    pub fn sync_request_log(&self) {
        self.inner.sink.sync();
    }

    /// Before the process exits: the request log writes what is left (its writer thread would
    /// be cut short) and the telemetry exporter sends its last spans, waiting a bounded time.
    pub async fn close(&self) {
        self.inner.sink.close().await;
    }

    /// Every route event of every request from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RouteEvent> {
        self.inner.sink.subscribe()
    }

    /// The latest route events (oldest first, as many as [`RouterOptions::recent_events`]) and
    /// every event after them, none missing or given twice in between.
    pub fn subscribe_with_recent(&self) -> (Vec<Arc<RouteEvent>>, broadcast::Receiver<RouteEvent>) {
        self.inner.sink.subscribe_with_recent()
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot(Instant::now().into_std())
    }

    /// Health, limits and price of every deployment, in config order.
    pub fn deployments(&self) -> Vec<DeploymentStatus> {
        let now = Instant::now();
        self.inner
            .config
            .deployments
            .iter()
            .map(|d| self.status_of(d, now))
            .collect()
    }

    fn status_of(&self, d: &Deployment, now: Instant) -> DeploymentStatus {
        DeploymentStatus {
            id: d.id.clone(),
            group: d.group.clone(),
            health: self.inner.health.view(&d.id, now),
            rpm_limit: d.rpm,
            tpm_limit: d.tpm,
            price: self.inner.prices.get(&d.id).copied().flatten(),
            max_input_tokens: self.inner.max_input.get(&d.id).copied().flatten(),
            unavailable: d.unavailable.clone(),
            limited: self.limited(d, now),
        }
    }

    /// Whether Redis is shared with other instances and answering; `None` without
    /// `router_settings.redis_*`.
    pub fn shared_status(&self) -> Option<SharedStatus> {
        self.inner.health.shared().map(|s| s.status())
    }

    /// What every instance sharing this Redis has spent, per deployment (this instance's own
    /// spend is `metrics().total_cost`). Read after this instance's own pending writes, bounded
    /// to half a second; `None` without Redis or while it is away.
    pub async fn shared_cost(&self) -> Option<SharedCost> {
        self.inner.health.shared()?.cost().await
    }

    /// Every budget (`llmux.budget`, provider and deployment budgets) and its spend in the
    /// current period; empty without budgets.
    pub fn budgets(&self) -> Vec<BudgetStatus> {
        self.inner.budgets.status()
    }

    /// Returns once the budgets' spend of the current period has been read back from the
    /// request log (it is read in the background at start; requests wait for it too). At once
    /// without budgets or a request log.
    pub async fn budgets_ready(&self) {
        self.inner.budgets.ready().await;
    }

    /// Adds this instance's budget spend to the fleet's in Redis and reads the fleet's back at
    /// once (it happens every second anyway). False without Redis or while it is away.
    pub async fn sync_budgets(&self) -> bool {
        budget::sync_now(&self.inner).await
    }

    /// The response cache's counters; `None` when the cache is off.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.inner.cache.as_ref().map(ResponseCache::stats)
    }

    /// Pings every deployment at once, straight and outside routing (see [`ping`]); the
    /// results in config order.
    pub async fn ping_all(&self, timeout: Duration) -> Vec<PingResult> {
        ping::ping_all(&self.inner.http, &self.inner.config.deployments, timeout).await
    }

    /// How long until the group's first deployment is free, when every one is cooling.
    pub fn group_cooling_for(&self, group: &str) -> Option<Duration> {
        let now = Instant::now();
        self.inner
            .config
            .group_deployments(group)
            .map(|d| self.inner.health.view(&d.id, now).cooling_for)
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().min())
    }
}
