//! Picking one deployment among the healthy ones of a group's `order` tier by the routing
//! strategy (and its `routing_strategy_args`). Pure functions over what the router knows of
//! each candidate, so every strategy is tested without a network.

use std::time::Duration;

use rand::RngExt;

use crate::config::{Deployment, RoutingArgs, Strategy};
use crate::money::Usd;
use crate::provider::ChatRequest;

/// What the strategies look at for one healthy deployment.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub deployment: &'a Deployment,
    /// Requests in flight now (least-busy).
    pub in_flight: u32,
    /// Requests and tokens used in the current minute (usage-based).
    pub rpm_used: u32,
    pub tpm_used: u64,
    /// Time to first token as latency-based routing ranks it; `None` before any sample.
    pub ttft_avg: Option<Duration>,
    /// Price of a typical request (1,000 tokens in, 1,000 out); `None` when unknown
    /// (cost-based treats it as expensive, as LiteLLM prices unknowns at $1).
    pub unit_price: Option<Usd>,
}

/// The index into `candidates` of the deployment to call. `candidates` must not be empty.
pub fn pick(
    strategy: Strategy,
    args: &RoutingArgs,
    candidates: &[Candidate],
    rng: &mut impl rand::Rng,
) -> usize {
    if candidates.len() <= 1 {
        return 0;
    }
    match strategy {
        Strategy::SimpleShuffle => weighted(&shuffle_weights(candidates), rng),
        Strategy::LeastBusy => lowest(candidates, rng, 0.0, |c| c.in_flight as f64),
        Strategy::UsageBased => lowest(candidates, rng, 0.0, utilization),
        // A deployment with no sample yet counts as fastest, so each is tried (LiteLLM's 0).
        Strategy::LatencyBased => lowest(candidates, rng, args.lowest_latency_buffer, |c| {
            c.ttft_avg.map_or(0.0, |d| d.as_secs_f64())
        }),
        Strategy::CostBased => lowest(candidates, rng, 0.0, |c| {
            c.unit_price.map_or(f64::MAX, Usd::as_f64)
        }),
    }
}

/// simple-shuffle's weights: `weight` where any candidate sets it (others count 1), else
/// `rpm`, else `tpm`, else equal.
fn shuffle_weights(candidates: &[Candidate]) -> Vec<f64> {
    fn d<'a>(c: &Candidate<'a>) -> &'a Deployment {
        c.deployment
    }
    if candidates.iter().any(|c| d(c).weight.is_some()) {
        candidates
            .iter()
            .map(|c| d(c).weight.unwrap_or(1.0).max(0.0))
            .collect()
    } else if candidates.iter().any(|c| d(c).rpm.is_some()) {
        candidates
            .iter()
            .map(|c| d(c).rpm.map_or(1.0, f64::from))
            .collect()
    } else if candidates.iter().any(|c| d(c).tpm.is_some()) {
        candidates
            .iter()
            .map(|c| d(c).tpm.map_or(1.0, |t| t as f64))
            .collect()
    } else {
        vec![1.0; candidates.len()]
    }
}

fn weighted(weights: &[f64], rng: &mut impl rand::Rng) -> usize {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return rng.random_range(0..weights.len());
    }
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// The candidate with the lowest score, or at random among those within `buffer` (a fraction,
/// `lowest_latency_buffer`) of it; ties broken at random so equal deployments share load.
fn lowest(
    candidates: &[Candidate],
    rng: &mut impl rand::Rng,
    buffer: f64,
    score: impl Fn(&Candidate) -> f64,
) -> usize {
    let scores: Vec<f64> = candidates.iter().map(score).collect();
    let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let bound = min + buffer * min;
    let best: Vec<usize> = (0..scores.len()).filter(|i| scores[*i] <= bound).collect();
    match best.len() {
        0 => 0,
        1 => best[0],
        n => best[rng.random_range(0..n)],
    }
}

/// The share of its limits a deployment has used this minute; without limits, its tokens.
fn utilization(c: &Candidate) -> f64 {
    let d = c.deployment;
    let rpm = d.rpm.map(|l| f64::from(c.rpm_used) / f64::from(l.max(1)));
    let tpm = d.tpm.map(|l| c.tpm_used as f64 / l.max(1) as f64);
    match (rpm, tpm) {
        (None, None) => c.tpm_used as f64,
        (a, b) => a.unwrap_or(0.0).max(b.unwrap_or(0.0)),
    }
}

/// In a group that mixes deployments taking the request's tools, images or parameters with
/// some that do not, only the ones that take it whole: a request is not refused (or stripped
/// by `drop_params`) while a member of its group could answer it as sent. When none or all
/// take it whole, all stay, and each refuses or drops as its `drop_params` says.
pub fn prefer_whole_takers<'a>(
    members: Vec<&'a Deployment>,
    request: &ChatRequest,
) -> Vec<&'a Deployment> {
    // One member has no other to prefer: skip looking through the request.
    if members.len() < 2 {
        return members;
    }
    let (whole, partial): (Vec<&Deployment>, Vec<&Deployment>) = members
        .iter()
        .partition(|d| crate::provider::params::takes_whole(d, request));
    if whole.is_empty() || partial.is_empty() {
        members
    } else {
        whole
    }
}
