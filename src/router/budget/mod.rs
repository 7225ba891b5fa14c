//! Budgets: what the whole app (`llmux.budget`), each provider (`provider_budget_config`) and
//! each deployment (`max_budget` / `budget_duration`) may spend per period, as LiteLLM's
//! budget limiter does.
//!
//! Spend enters from every attempt that produced tokens ([`Budgets::spend`], called by the
//! request through `route`), from the request log at start (`seed`, in the background; requests wait for it), and with Redis from the
//! fleet ([`share`]). It leaves as verdicts for the router's candidate filter
//! ([`Budgets::over_deployment`], [`Budgets::over_app`]: a deployment over its own or its
//! provider's budget is skipped like a cooling one), as warnings crossing 80% and 100% (once
//! per period, as `Budget` route events), and as [`BudgetStatus`] for displays.
//!
//! Windows follow LiteLLM: a period starts with the first spend after the previous one ended
//! (not at midnight), lasts its length, and then the spend is zero again until the next spend
//! starts a new one. Cached answers cost nothing and never count.

mod route;
mod seed;
mod share;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{Budget, Config, Deployment};
use crate::metrics::Usd;

pub(crate) use seed::start as start_seed;
pub(crate) use share::{spawn_sync, sync_now};

/// The warning thresholds, in percent of a budget.
const THRESHOLDS: [u8; 2] = [80, 100];
/// Milliseconds per second, minute, hour and day, for "resets in".
const SEC_MS: u64 = 1_000;
const MIN_MS: u64 = 60 * SEC_MS;
const HOUR_MS: u64 = 60 * MIN_MS;
const DAY_MS: u64 = 24 * HOUR_MS;
/// What the app budget is called in messages: the key that sets it.
pub const APP_SCOPE: &str = "llmux.budget";

/// The wall clock budgets run on, in Unix milliseconds; replaceable so tests can move time.
#[derive(Clone)]
pub struct WallClock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl WallClock {
    /// The system clock.
    pub fn system() -> WallClock {
        WallClock(Arc::new(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        }))
    }

    /// A clock that reads `now` (tests).
    pub fn from_fn(now: impl Fn() -> u64 + Send + Sync + 'static) -> WallClock {
        WallClock(Arc::new(now))
    }

    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }
}

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WallClock")
    }
}

/// Whose spend a budget caps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum ScopeKind {
    App,
    Provider(String),
    Deployment(String),
}

/// One budget and who it caps.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    kind: ScopeKind,
    budget: Budget,
}

impl Scope {
    /// How messages name it: `llmux.budget`, `openai`, `deployment gpt-a`.
    fn label(&self) -> String {
        match &self.kind {
            ScopeKind::App => APP_SCOPE.to_string(),
            ScopeKind::Provider(p) => p.clone(),
            ScopeKind::Deployment(d) => format!("deployment {d}"),
        }
    }

    /// The Redis key part: kind, name and period (a changed period starts afresh).
    fn key(&self) -> String {
        let who = match &self.kind {
            ScopeKind::App => "app".to_string(),
            ScopeKind::Provider(p) => format!("provider:{p}"),
            ScopeKind::Deployment(d) => format!("deployment:{d}"),
        };
        format!("{who}:{}", self.budget.period.text)
    }

    fn period_ms(&self) -> u64 {
        self.budget.period.length.as_millis() as u64
    }
}

/// One budget's current window.
#[derive(Debug, Clone, Default)]
struct Window {
    /// When the window began (Unix ms); `None` before the first spend of a period.
    start_ms: Option<u64>,
    spent: Usd,
    /// Which thresholds were already announced this window (one bit per [`THRESHOLDS`]).
    warned: u8,
    /// Spent here and not yet added to the fleet's total in Redis.
    pending: Usd,
    /// Set once Redis has seen this scope (the local seed is only offered before that).
    synced: bool,
}

impl Window {
    /// Ends the window if its period is over.
    fn roll(&mut self, period_ms: u64, now: u64) {
        if self
            .start_ms
            .is_some_and(|s| now >= s.saturating_add(period_ms))
        {
            self.start_ms = None;
            self.spent = Usd::ZERO;
            self.warned = 0;
        }
    }

    fn resets_in(&self, period_ms: u64, now: u64) -> Option<Duration> {
        self.start_ms
            .map(|s| Duration::from_millis(s.saturating_add(period_ms).saturating_sub(now)))
    }
}

/// A budget that is used up: why a deployment is skipped or a request refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Over {
    pub scope: String,
    pub spent: Usd,
    pub limit: Usd,
    pub period: String,
    /// Until the window ends (the whole period for a zero budget nothing has started).
    pub resets_in: Duration,
}

impl Over {
    /// `openai over budget: $50.02 of $50.00 for 1d, resets in 3h`.
    pub fn describe(&self) -> String {
        format!(
            "{} over budget: {} of {} for {}, resets in {}",
            self.scope,
            self.spent,
            self.limit,
            self.period,
            short_duration(self.resets_in)
        )
    }
}

/// A threshold crossed by a spend: becomes a `Budget` route event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Crossing {
    pub scope: String,
    pub spent: Usd,
    pub limit: Usd,
    pub percent: u8,
    pub period: String,
    pub resets_in: Option<Duration>,
}

/// One budget as displays show it (and as `/llmux/events` sends it to `llmux monitor`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BudgetStatus {
    pub scope: ScopeKind,
    /// How messages name it (`llmux.budget`, `openai`, `deployment gpt-a`).
    pub label: String,
    pub limit: Usd,
    pub spent: Usd,
    /// The period as written (`1d`).
    pub period: String,
    /// Until the current window ends; `None` while no window is running.
    pub resets_in: Option<Duration>,
}

/// Every budget of one router and its spend.
#[derive(Debug)]
pub(crate) struct Budgets {
    scopes: Vec<Scope>,
    /// Deployment id → the scopes its spend counts against besides the app's.
    by_deployment: HashMap<String, Vec<usize>>,
    app: Option<usize>,
    windows: Mutex<Vec<Window>>,
    clock: WallClock,
    /// Whether the spend of the current period has been read back from the request log.
    seeded: seed::Seeded,
}

impl Budgets {
    pub(crate) fn new(config: &Config, clock: WallClock) -> Budgets {
        let mut scopes = Vec::new();
        let app = config.app.budget.clone().map(|budget| {
            scopes.push(Scope {
                kind: ScopeKind::App,
                budget,
            });
            scopes.len() - 1
        });
        let mut providers: HashMap<&str, usize> = HashMap::new();
        let mut by_deployment: HashMap<String, Vec<usize>> = HashMap::new();
        for d in &config.deployments {
            let mut mine = Vec::new();
            if let Some(budget) = &d.budget {
                scopes.push(Scope {
                    kind: ScopeKind::Deployment(d.id.clone()),
                    budget: budget.clone(),
                });
                mine.push(scopes.len() - 1);
            }
            if let Some(budget) = config.router.provider_budgets.get(&d.provider) {
                let i = *providers.entry(d.provider.as_str()).or_insert_with(|| {
                    scopes.push(Scope {
                        kind: ScopeKind::Provider(d.provider.clone()),
                        budget: budget.clone(),
                    });
                    scopes.len() - 1
                });
                mine.push(i);
            }
            if !mine.is_empty() {
                by_deployment.insert(d.id.clone(), mine);
            }
        }
        Budgets {
            windows: Mutex::new(vec![Window::default(); scopes.len()]),
            scopes,
            by_deployment,
            app,
            clock,
            seeded: seed::Seeded::default(),
        }
    }

    /// Returns once the spend of the current period is read back from the request log.
    pub(crate) async fn ready(&self) {
        self.seeded.wait().await;
    }

    /// No budget is configured: every check answers at once.
    pub(crate) fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    fn windows(&self) -> MutexGuard<'_, Vec<Window>> {
        match self.windows.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The scopes a deployment's spend counts against, the app's included.
    fn scopes_of(&self, id: &str) -> impl Iterator<Item = usize> + '_ {
        self.app
            .into_iter()
            .chain(self.by_deployment.get(id).into_iter().flatten().copied())
    }

    /// Adds `cost` spent on deployment `id` at the clock's now; returns the thresholds crossed.
    pub(crate) fn spend(&self, id: &str, cost: Usd) -> Vec<Crossing> {
        if self.is_empty() || cost.is_zero() {
            return Vec::new();
        }
        let now = self.clock.now_ms();
        let mut windows = self.windows();
        let mut crossed = Vec::new();
        for i in self.scopes_of(id) {
            let scope = &self.scopes[i];
            let w = &mut windows[i];
            add(w, scope.period_ms(), now, cost);
            w.pending += cost;
            crossed.extend(crossings(scope, w, now));
        }
        crossed
    }

    /// Adds spend read back from the request log (no warnings, nothing pushed to Redis).
    fn replay(&self, id: &str, cost: Usd, at_ms: u64) {
        let mut windows = self.windows();
        for i in self.scopes_of(id) {
            add(&mut windows[i], self.scopes[i].period_ms(), at_ms, cost);
        }
    }

    /// The budget of deployment `d` (its own, then its provider's) that is used up, if any.
    pub(crate) fn over_deployment(&self, d: &Deployment) -> Option<Over> {
        if self.is_empty() {
            return None;
        }
        let ids = self.by_deployment.get(&d.id)?;
        self.first_over(ids.iter().copied())
    }

    /// `llmux.budget`, when it is used up.
    pub(crate) fn over_app(&self) -> Option<Over> {
        self.first_over(self.app.into_iter())
    }

    fn first_over(&self, scopes: impl Iterator<Item = usize>) -> Option<Over> {
        let now = self.clock.now_ms();
        let mut windows = self.windows();
        for i in scopes {
            let scope = &self.scopes[i];
            let w = &mut windows[i];
            w.roll(scope.period_ms(), now);
            if w.spent >= scope.budget.limit {
                return Some(Over {
                    scope: scope.label(),
                    spent: w.spent,
                    limit: scope.budget.limit,
                    period: scope.budget.period.text.clone(),
                    resets_in: w
                        .resets_in(scope.period_ms(), now)
                        .unwrap_or(scope.budget.period.length),
                });
            }
        }
        None
    }

    /// Every budget with its current spend, app first, then in config order.
    pub(crate) fn status(&self) -> Vec<BudgetStatus> {
        let now = self.clock.now_ms();
        let mut windows = self.windows();
        self.scopes
            .iter()
            .zip(windows.iter_mut())
            .map(|(scope, w)| {
                w.roll(scope.period_ms(), now);
                BudgetStatus {
                    scope: scope.kind.clone(),
                    label: scope.label(),
                    limit: scope.budget.limit,
                    spent: w.spent,
                    period: scope.budget.period.text.clone(),
                    resets_in: w.resets_in(scope.period_ms(), now),
                }
            })
            .collect()
    }

    /// The longest period of any budget: how far back the request log is read.
    fn longest_period(&self) -> Option<Duration> {
        self.scopes.iter().map(|s| s.budget.period.length).max()
    }
}

/// Adds `cost` at `now` to a window, starting a new one when none runs.
fn add(w: &mut Window, period_ms: u64, now: u64, cost: Usd) {
    w.roll(period_ms, now);
    if w.start_ms.is_none() {
        w.start_ms = Some(now);
    }
    w.spent += cost;
}

/// The thresholds this window has newly reached, each marked so it is said once per window.
fn crossings(scope: &Scope, w: &mut Window, now: u64) -> Vec<Crossing> {
    let percent = w.spent.percent_of(scope.budget.limit);
    let mut out = Vec::new();
    for (bit, threshold) in THRESHOLDS.iter().enumerate() {
        let mask = 1u8 << bit;
        if percent >= u64::from(*threshold) && w.warned & mask == 0 {
            w.warned |= mask;
            out.push(*threshold);
        }
    }
    // Crossing both at once says only the higher one.
    out.last()
        .map(|&threshold| Crossing {
            scope: scope.label(),
            spent: w.spent,
            limit: scope.budget.limit,
            percent: threshold,
            period: scope.budget.period.text.clone(),
            resets_in: w.resets_in(scope.period_ms(), now),
        })
        .into_iter()
        .collect()
}

/// Prints every budget warning of `router` on stderr as `<who>: budget openai 80% …`, from
/// a background task that ends with the router's event channel (`serve` calls it).
pub fn log_warnings(router: &super::Router, who: &str) {
    // Without budgets there is nothing to warn about, and a subscriber would cost every
    // request a copy of each of its events and a wake-up of this task.
    if router.inner.budgets.is_empty() {
        return;
    }
    let mut rx = router.subscribe();
    let who = who.to_string();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) if matches!(ev.kind, super::RouteEventKind::Budget { .. }) => {
                    let line = ev.describe();
                    let text = line.split_once(' ').map_or(line.as_str(), |(_, t)| t);
                    eprintln!("{who}: {}", crate::sanitize::escape_controls(text));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// `45s`, `12m`, `3h 5m`, `12d 3h`: how long until a budget resets.
pub fn short_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    let (days, hours, mins) = (ms / DAY_MS, ms % DAY_MS / HOUR_MS, ms % HOUR_MS / MIN_MS);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{}s", ms.div_ceil(SEC_MS)),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::config::BudgetPeriod;

    fn budget(dollars: u64, secs: u64, text: &str) -> Budget {
        Budget {
            limit: Usd::DOLLAR.times(dollars),
            period: BudgetPeriod {
                length: Duration::from_secs(secs),
                text: text.to_string(),
            },
        }
    }

    fn config_with_app(b: Budget) -> Config {
        let mut c = crate::config::load_str(
            "model_list:\n  - model_name: g\n    litellm_params: {model: mock/m}\n",
            None,
        )
        .unwrap();
        c.app.budget = Some(b);
        c
    }

    fn dollars(n: u64) -> Usd {
        Usd::DOLLAR.times(n)
    }

    #[test]
    fn warnings_come_once_per_window_and_the_window_resets_after_its_period() {
        let now = Arc::new(AtomicU64::new(1_000_000));
        let clock = {
            let now = now.clone();
            WallClock::from_fn(move || now.load(Ordering::SeqCst))
        };
        let b = Budgets::new(&config_with_app(budget(10, 60, "1m")), clock);
        assert!(b.spend("mock/m", dollars(7)).is_empty());
        let w = b.spend("mock/m", dollars(1));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].percent, 80);
        assert!(b.spend("mock/m", Usd::from_pico(1)).is_empty(), "80% once");
        assert!(b.over_app().is_none());
        let w = b.spend("mock/m", dollars(3));
        assert_eq!(w[0].percent, 100);
        let over = b.over_app().unwrap();
        assert_eq!(over.resets_in, Duration::from_secs(60));
        assert!(
            over.describe()
                .starts_with("llmux.budget over budget: $11.00 of $10.00 for 1m"),
            "{}",
            over.describe()
        );
        now.fetch_add(59_999, Ordering::SeqCst);
        assert!(b.over_app().is_some(), "still inside the window");
        now.fetch_add(1, Ordering::SeqCst);
        assert!(b.over_app().is_none(), "the window ended");
        assert_eq!(b.status()[0].spent, Usd::ZERO);
        assert_eq!(b.status()[0].resets_in, None);
        // The next spend starts a new window and warns again.
        assert_eq!(b.spend("mock/m", dollars(9))[0].percent, 80);
        assert_eq!(b.status()[0].resets_in, Some(Duration::from_secs(60)));
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(short_duration(Duration::from_millis(1_500)), "2s");
        assert_eq!(short_duration(Duration::from_secs(720)), "12m");
        assert_eq!(short_duration(Duration::from_secs(3 * 3_600)), "3h");
        assert_eq!(
            short_duration(Duration::from_secs(3 * 3_600 + 300)),
            "3h 5m"
        );
        assert_eq!(
            short_duration(Duration::from_secs(12 * 86_400 + 3 * 3_600)),
            "12d 3h"
        );
        assert_eq!(short_duration(Duration::from_secs(2 * 86_400)), "2d");
    }
}
