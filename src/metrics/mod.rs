//! Metrics and cost: what each attempt at each deployment did, and what it cost.
//!
//! - `money`: [`Usd`], exact integer picodollars.
//! - `prices`: [`Price`] and [`PriceTable`], read from LiteLLM's price-table JSON (a built-in
//!   table, a user's `llmux.pricing_file` over it, config overrides over both); `price_file`
//!   reads that format.
//! - `stats`: the [`Metrics`] registry the router reports attempts to, and the
//!   [`MetricsSnapshot`] the TUI and `serve` read back.
//! - `window`: the time-bucketed rings behind rolling error rates, percentiles and sparklines.
//!
//! Data enters from the router (attempt start and end, with the caller's `Instant`) and from
//! config (`Deployment`); it leaves as snapshots, prices and costs. Nothing here knows about
//! the router: the dependency points the other way.

mod price_file;
mod prices;
mod stats;
mod window;

pub use crate::money::Usd;
pub use prices::{Price, PriceFileError, PriceJsonError, PriceTable, PricingFileError};
pub use stats::{
    AttemptSuccess, DeploymentStats, GroupStats, MIN_RATE_SPAN, Metrics, MetricsSnapshot,
    ROLLING_WINDOW, SPARK_BUCKET, SPARK_BUCKETS, TTFT_SAMPLES, answer_rate,
};
