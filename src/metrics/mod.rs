//! TEMPORARY stub with the agreed API, replaced by the metrics branch.
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Deployment;
use crate::provider::{ErrorClass, Usage};

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Usd(u64);
impl Usd {
    pub const ZERO: Usd = Usd(0);
    pub fn from_pico(p: u64) -> Usd {
        Usd(p)
    }
    pub fn pico(self) -> u64 {
        self.0
    }
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1e12
    }
}
impl std::ops::Add for Usd {
    type Output = Usd;
    fn add(self, o: Usd) -> Usd {
        Usd(self.0.saturating_add(o.0))
    }
}
impl std::fmt::Display for Usd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "${:.6}", self.as_f64())
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
    pub reasoning: Option<u64>,
}
impl Price {
    pub fn cost(&self, u: &Usage) -> Usd {
        Usd(u.input * self.input + u.output * self.output)
    }
}
#[derive(Debug, Clone, Default)]
pub struct PriceTable;
impl PriceTable {
    pub fn builtin() -> PriceTable {
        PriceTable
    }
    pub fn load(_p: &std::path::Path) -> Result<PriceTable, String> {
        Ok(PriceTable)
    }
    pub fn merge(&mut self, _o: PriceTable) {}
    pub fn price_for(&self, d: &Deployment) -> Option<Price> {
        Some(Price {
            input: (d.input_cost_per_token? * 1e12) as u64,
            output: (d.output_cost_per_token? * 1e12) as u64,
            cache_read: None,
            cache_write: None,
            reasoning: None,
        })
    }
    pub fn max_input_tokens(&self, d: &Deployment) -> Option<u64> {
        d.max_input_tokens
    }
}
pub struct AttemptSuccess {
    pub ttft: Option<Duration>,
    pub total: Duration,
    pub usage: Usage,
    pub cost: Option<Usd>,
}
#[derive(Debug, Clone, Default)]
pub struct Metrics;
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot;
impl Metrics {
    pub fn new() -> Metrics {
        Metrics
    }
    pub fn seed_deployment(&self, _id: &str, _group: &str) {}
    pub fn attempt_started(&self, _d: &str, _g: &str, _now: Instant) {}
    pub fn attempt_succeeded(&self, _d: &str, _g: &str, _s: &AttemptSuccess, _now: Instant) {}
    pub fn attempt_failed(&self, _d: &str, _g: &str, _c: ErrorClass, _e: Duration, _now: Instant) {}
    pub fn attempt_cancelled(&self, _d: &str, _g: &str, _now: Instant) {}
    pub fn in_flight(&self, _d: &str) -> u32 {
        0
    }
    pub fn ttft_average(&self, _d: &str) -> Option<Duration> {
        None
    }
    pub fn snapshot(&self, _now: Instant) -> MetricsSnapshot {
        MetricsSnapshot
    }
}
