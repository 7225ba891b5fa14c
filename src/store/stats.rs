//! Usage statistics from the request log: requests, failures and error rate, answers served
//! from the response cache, tokens, cost, and time-to-first-token / latency percentiles,
//! grouped by model group, deployment, provider, day or tag. Reads `requests.jsonl` line by
//! line; a line that does not parse (a torn last line after a crash) is counted and skipped,
//! never fatal.
//!
//! What enters: the log (a path or any reader), a window start, a grouping, and
//! [`DeploymentFacts`] from the current config (each deployment's provider and `tags`). What
//! leaves: a [`StatsReport`] of rows and a total. The `llmux stats` command, the TUI's stats
//! view and the TUI's all-time cost all read through here, so they agree.
//!
//! Counting rules: `--by model|day|tag` count requests (one `Done`, `Failed` or `Cancelled`
//! each); `--by deployment|provider` count attempts. Cost and tokens are what was billed: a
//! `Done` carries its request's; an attempt that did not answer but streamed tokens says its
//! own in a `Spent` event, so a failed or cancelled request costs the sum of those, and at
//! attempt level the answering attempt's part is its `Done` less them. A cached answer (`Done { cached: true }`) is a
//! request with cost 0 and its own `cached` count; it adds no tokens and no latency (no
//! upstream answered it), and at attempt level it is a row of its own, [`CACHE_ROW`]. Under
//! `--by tag` a request counts under each of its own tags and each tag of the deployment that
//! answered it (or, for a failed one, was tried last), so rows can add up to more than the
//! total: the total counts every request once.

mod dates;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, Read};
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::config::Config;
use crate::metrics::Usd;
use crate::router::{RouteEvent, RouteEventKind};

pub use dates::{DAY_MS, SinceError, day_of, parse_since};

/// Highest latency the histograms hold (one hour); longer ones are clamped.
const MAX_TRACKED_MS: u64 = 3_600_000;
/// The row of requests with no tag at all (`--by tag`).
pub const UNTAGGED: &str = "(none)";
/// The row of answers served from the response cache (`--by deployment|provider`).
pub const CACHE_ROW: &str = "(cache)";
/// The key of the total row.
pub const TOTAL: &str = "total";

/// What a row of the report is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupBy {
    /// The model group that answered (or failed).
    Model,
    /// The deployment each attempt went to.
    Deployment,
    /// The provider family of the deployment.
    Provider,
    /// The UTC day of the request.
    Day,
    /// Each tag of the request and of its deployment.
    Tag,
}

impl GroupBy {
    /// The name `--by` takes and the TUI shows.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Model => "model",
            GroupBy::Deployment => "deployment",
            GroupBy::Provider => "provider",
            GroupBy::Day => "day",
            GroupBy::Tag => "tag",
        }
    }

    /// True when rows count attempts rather than requests.
    pub fn attempt_level(self) -> bool {
        matches!(self, GroupBy::Deployment | GroupBy::Provider)
    }
}

/// A `--by` that names no grouping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}: expected model, deployment, provider, day or tag")]
pub struct UnknownGroupBy(pub String);

impl std::str::FromStr for GroupBy {
    type Err = UnknownGroupBy;
    fn from_str(s: &str) -> Result<GroupBy, UnknownGroupBy> {
        Ok(match s {
            "model" | "group" => GroupBy::Model,
            "deployment" => GroupBy::Deployment,
            "provider" => GroupBy::Provider,
            "day" => GroupBy::Day,
            "tag" | "tags" => GroupBy::Tag,
            _ => return Err(UnknownGroupBy(s.to_string())),
        })
    }
}

/// What the report knows about deployments, from the current config: the provider of each
/// and its `litellm_params.tags`. A deployment the config no longer has is `?` / untagged.
#[derive(Debug, Clone, Default)]
pub struct DeploymentFacts {
    providers: HashMap<String, String>,
    tags: HashMap<String, Vec<String>>,
}

impl DeploymentFacts {
    pub fn from_config(cfg: &Config) -> DeploymentFacts {
        let mut facts = DeploymentFacts::default();
        for d in &cfg.deployments {
            facts.add(&d.id, &d.provider, &d.tags);
        }
        facts
    }

    /// Adds (or replaces) one deployment.
    pub fn add(&mut self, id: &str, provider: &str, tags: &[String]) {
        self.providers.insert(id.to_string(), provider.to_string());
        self.tags.insert(id.to_string(), tags.to_vec());
    }

    fn provider(&self, id: &str) -> Option<&str> {
        self.providers.get(id).map(String::as_str)
    }

    fn tags(&self, id: &str) -> &[String] {
        self.tags.get(id).map_or(&[], Vec::as_slice)
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsRow {
    pub key: String,
    pub requests: u64,
    pub failures: u64,
    pub error_rate: f64,
    /// Requests answered from the response cache (cost 0, no upstream tokens or latency).
    pub cached: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: Usd,
    /// Successful requests whose price was unknown (their cost is not in `cost_usd`).
    pub unpriced: u64,
    pub ttft_p50_ms: Option<u64>,
    pub ttft_p95_ms: Option<u64>,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsReport {
    pub rows: Vec<StatsRow>,
    /// Every request (or attempt) once, even when it is in several rows (`--by tag`).
    pub total: StatsRow,
    /// Lines of the log that did not parse.
    pub skipped_lines: u64,
}

/// The answering attempt's timings, from its `Attempt` and `FirstToken` events.
#[derive(Clone, Copy)]
struct AttemptTiming {
    /// From the attempt's start to its first token.
    ttft_ms: Option<u64>,
    /// When the attempt started, in ms since the request did.
    started_ms: u64,
}

#[derive(Default)]
struct Acc {
    requests: u64,
    failures: u64,
    cached: u64,
    tokens_in: u64,
    tokens_out: u64,
    cost: Usd,
    unpriced: u64,
    ttft: Option<Histogram<u64>>,
    latency: Option<Histogram<u64>>,
}

fn record(h: &mut Option<Histogram<u64>>, ms: u64) {
    if h.is_none() {
        *h = Histogram::new_with_bounds(1, MAX_TRACKED_MS, 2).ok();
    }
    if let Some(h) = h {
        h.saturating_record(ms.clamp(1, MAX_TRACKED_MS));
    }
}

/// The quantile, as the lowest value of its bucket (so 400 ms reads `400`, not `401`).
fn quantile(h: &Option<Histogram<u64>>, q: f64) -> Option<u64> {
    h.as_ref()
        .filter(|h| !h.is_empty())
        .map(|h| h.lowest_equivalent(h.value_at_quantile(q)))
}

impl Acc {
    /// A successful answer's tokens, cost and timings; a cached one only counts as cached.
    fn done(&mut self, ev: &RouteEvent) {
        let RouteEventKind::Done {
            usage,
            cost_usd,
            ttft_ms,
            total_ms,
            cached,
            ..
        } = &ev.kind
        else {
            return;
        };
        if *cached {
            self.cached += 1;
            return;
        }
        self.tokens_in += usage.input;
        self.tokens_out += usage.output;
        match cost_usd {
            Some(c) => self.cost += *c,
            None => self.unpriced += 1,
        }
        if let Some(t) = ttft_ms {
            record(&mut self.ttft, *t);
        }
        record(&mut self.latency, *total_ms);
    }

    /// Tokens billed and their cost (`None`: no known price).
    fn spend(&mut self, s: &Spend) {
        self.tokens_in += s.tokens_in;
        self.tokens_out += s.tokens_out;
        self.cost += s.cost;
        if s.unpriced {
            self.unpriced += 1;
        }
    }

    /// A finished request: `Done`, `Failed` or `Cancelled` (those two cost what their attempts
    /// were billed for).
    fn request(&mut self, ev: &RouteEvent, spent: &Spend) {
        match ev.kind {
            RouteEventKind::Failed { .. } => {
                self.requests += 1;
                self.failures += 1;
                self.spend(spent);
            }
            // Neither an answer nor a failure, but a request that was billed.
            RouteEventKind::Cancelled => {
                self.requests += 1;
                self.spend(spent);
            }
            _ => {
                self.requests += 1;
                self.done(ev);
            }
        }
    }

    /// An attempt-level event: `Attempt`, `Failure`, `Spent`, or the `Done` of the attempt
    /// that answered (its own part of the request's cost: `before` was spent by the attempts
    /// before it). A cached `Done` had no attempt, so it is a request of its own.
    fn attempt(&mut self, ev: &RouteEvent, before: &Spend, timing: Option<AttemptTiming>) {
        match &ev.kind {
            RouteEventKind::Attempt => self.requests += 1,
            RouteEventKind::Failure { .. } => self.failures += 1,
            RouteEventKind::Spent { .. } => self.spend(&Spend::of(ev)),
            RouteEventKind::Done { cached: true, .. } => {
                self.requests += 1;
                self.done(ev);
            }
            RouteEventKind::Done {
                ttft_ms, total_ms, ..
            } => {
                let all = Spend::of(ev);
                self.spend(&Spend {
                    tokens_in: all.tokens_in.saturating_sub(before.tokens_in),
                    tokens_out: all.tokens_out.saturating_sub(before.tokens_out),
                    cost: all.cost.saturating_sub(before.cost),
                    // A request with an unpriced attempt has no known total: its own part is
                    // then unknown too.
                    unpriced: all.unpriced,
                });
                let (ttft, latency) = match timing {
                    Some(t) => (t.ttft_ms, total_ms.saturating_sub(t.started_ms)),
                    None => (*ttft_ms, *total_ms),
                };
                if let Some(t) = ttft {
                    record(&mut self.ttft, t);
                }
                record(&mut self.latency, latency);
            }
            _ => {}
        }
    }

    fn row(&self, key: String) -> StatsRow {
        StatsRow {
            key,
            requests: self.requests,
            failures: self.failures,
            error_rate: if self.requests == 0 {
                0.0
            } else {
                self.failures as f64 / self.requests as f64
            },
            cached: self.cached,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            cost_usd: self.cost,
            unpriced: self.unpriced,
            ttft_p50_ms: quantile(&self.ttft, 0.5),
            ttft_p95_ms: quantile(&self.ttft, 0.95),
            latency_p50_ms: quantile(&self.latency, 0.5),
            latency_p95_ms: quantile(&self.latency, 0.95),
        }
    }
}

/// What a `Spent` or `Done` event says was billed.
#[derive(Debug, Clone, Copy, Default)]
struct Spend {
    tokens_in: u64,
    tokens_out: u64,
    cost: Usd,
    unpriced: bool,
}

impl Spend {
    fn of(ev: &RouteEvent) -> Spend {
        match &ev.kind {
            RouteEventKind::Spent { usage, cost_usd }
            | RouteEventKind::Done {
                usage, cost_usd, ..
            } => Spend {
                tokens_in: usage.input,
                tokens_out: usage.output,
                cost: cost_usd.unwrap_or(Usd::ZERO),
                unpriced: cost_usd.is_none(),
            },
            _ => Spend::default(),
        }
    }

    fn add(&mut self, s: Spend) {
        self.tokens_in += s.tokens_in;
        self.tokens_out += s.tokens_out;
        self.cost += s.cost;
        self.unpriced |= s.unpriced;
    }
}

/// A request seen starting and not yet ended: its tags, the deployment tried last, and what
/// its attempts that did not answer were billed.
#[derive(Default)]
struct Open {
    tags: Vec<String>,
    deployment: Option<String>,
    spent: Spend,
    /// The latest attempt's own timings, for rows by deployment or provider: when it started
    /// (ms into the request) and its first token (ms into the attempt), as the metrics pane
    /// counts a deployment's TTFT and latency.
    attempt_started_ms: u64,
    attempt_ttft_ms: Option<u64>,
}

/// Reads the log at `path` from `since_unix_ms` on and groups it.
pub fn read_log(
    path: &Path,
    since_unix_ms: Option<u64>,
    by: GroupBy,
    facts: &DeploymentFacts,
) -> std::io::Result<StatsReport> {
    let file = std::fs::File::open(path)?;
    summarize(std::io::BufReader::new(file), since_unix_ms, by, facts)
}

/// What some requests cost: the priced part, and how many had no known price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CostTotal {
    pub cost: Usd,
    pub unpriced: u64,
}

/// Cost of every request in the first `len` bytes of the log at `path` (what was there
/// before a run started; that run's own requests are counted live). Zero when there is no
/// log.
pub fn cost_before(path: &Path, len: u64) -> CostTotal {
    let Ok(file) = std::fs::File::open(path) else {
        return CostTotal::default();
    };
    let reader = std::io::BufReader::new(file.take(len));
    summarize(reader, None, GroupBy::Model, &DeploymentFacts::default()).map_or(
        CostTotal::default(),
        |r| CostTotal {
            cost: r.total.cost_usd,
            unpriced: r.total.unpriced,
        },
    )
}

/// Groups the events read from `reader` (one JSON `RouteEvent` per line). Only an error
/// reading is an error; an unreadable line is counted in `skipped_lines`.
pub fn summarize(
    reader: impl BufRead,
    since_unix_ms: Option<u64>,
    by: GroupBy,
    facts: &DeploymentFacts,
) -> std::io::Result<StatsReport> {
    let mut acc = Summary {
        since_unix_ms,
        by,
        facts,
        rows: BTreeMap::new(),
        total: Acc::default(),
        open: HashMap::new(),
        skipped: 0,
    };
    super::file::byte_lines(reader, |line| {
        match line.text {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => match serde_json::from_str::<RouteEvent>(text) {
                Ok(ev) => acc.add(&ev),
                Err(_) => acc.skipped += 1,
            },
            Err(_) => acc.skipped += 1,
        }
        true
    })?;
    Ok(StatsReport {
        rows: acc.rows.iter().map(|(k, a)| a.row(k.clone())).collect(),
        total: acc.total.row(TOTAL.to_string()),
        skipped_lines: acc.skipped,
    })
}

/// The report being counted, event by event.
struct Summary<'a> {
    since_unix_ms: Option<u64>,
    by: GroupBy,
    facts: &'a DeploymentFacts,
    rows: BTreeMap<String, Acc>,
    total: Acc,
    /// Request ids restart with each process, so an id is matched to the latest `Request`.
    open: HashMap<u64, Open>,
    skipped: u64,
}

impl Summary<'_> {
    fn add(&mut self, ev: &RouteEvent) {
        let (by, facts) = (self.by, self.facts);
        // Bookkeeping happens before the window check: a request that started before the
        // window and ended in it keeps its tags.
        let ended = match &ev.kind {
            RouteEventKind::Request { tags, .. } => {
                let tags = tags.clone();
                self.open.insert(
                    ev.request_id,
                    Open {
                        tags,
                        ..Open::default()
                    },
                );
                None
            }
            RouteEventKind::Attempt => {
                if let Some(o) = self.open.get_mut(&ev.request_id) {
                    o.deployment.clone_from(&ev.deployment);
                    o.attempt_started_ms = ev.elapsed_ms;
                    o.attempt_ttft_ms = None;
                }
                None
            }
            RouteEventKind::FirstToken { ttft_ms } => {
                if let Some(o) = self.open.get_mut(&ev.request_id) {
                    o.attempt_ttft_ms = Some(*ttft_ms);
                }
                None
            }
            RouteEventKind::Spent { .. } => {
                if let Some(o) = self.open.get_mut(&ev.request_id) {
                    o.spent.add(Spend::of(ev));
                }
                None
            }
            RouteEventKind::Done { .. }
            | RouteEventKind::Failed { .. }
            | RouteEventKind::Cancelled => {
                Some(self.open.remove(&ev.request_id).unwrap_or_default())
            }
            _ => None,
        };
        if self.since_unix_ms.is_some_and(|s| ev.at_unix_ms < s) {
            return;
        }
        if by.attempt_level() {
            if !matches!(
                ev.kind,
                RouteEventKind::Attempt
                    | RouteEventKind::Failure { .. }
                    | RouteEventKind::Spent { .. }
                    | RouteEventKind::Done { .. }
            ) {
                return;
            }
            let before = ended.as_ref().map(|o| o.spent).unwrap_or_default();
            // The answering attempt's own TTFT and latency (the request's, when the log
            // holds no attempt for it).
            let timing = ended.as_ref().map(|o| AttemptTiming {
                ttft_ms: o.attempt_ttft_ms,
                started_ms: o.attempt_started_ms,
            });
            let key = match (&ev.deployment, &ev.kind) {
                (None, RouteEventKind::Done { cached: true, .. }) => CACHE_ROW.to_string(),
                (d, _) => {
                    let d = d.as_deref().unwrap_or_default();
                    match by {
                        GroupBy::Provider => facts.provider(d).unwrap_or("?").to_string(),
                        _ => d.to_string(),
                    }
                }
            };
            self.rows
                .entry(key)
                .or_default()
                .attempt(ev, &before, timing);
            self.total.attempt(ev, &before, timing);
            return;
        }
        // Request level: one request ends in exactly one Done, Failed or Cancelled.
        let Some(req) = ended else {
            return;
        };
        let spent = req.spent;
        let keys: BTreeSet<String> = match by {
            GroupBy::Model => BTreeSet::from([ev.group.clone()]),
            GroupBy::Day => BTreeSet::from([day_of(ev.at_unix_ms)]),
            _ => tag_keys(ev, req, facts),
        };
        for key in keys {
            self.rows.entry(key).or_default().request(ev, &spent);
        }
        self.total.request(ev, &spent);
    }
}

/// The request's own tags and its deployment's, or [`UNTAGGED`].
fn tag_keys(ev: &RouteEvent, req: Open, facts: &DeploymentFacts) -> BTreeSet<String> {
    let deployment = ev.deployment.as_deref().or(req.deployment.as_deref());
    let mut keys: BTreeSet<String> = req.tags.into_iter().collect();
    if let Some(d) = deployment {
        keys.extend(facts.tags(d).iter().cloned());
    }
    if keys.is_empty() {
        keys.insert(UNTAGGED.to_string());
    }
    keys
}
