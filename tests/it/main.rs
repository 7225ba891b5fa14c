//! All integration tests, in one binary (each file directly under tests/ would link the whole
//! crate again). One module per area.

#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;
mod upstream;

mod batch;
mod budget;
mod cache;
mod cli;
mod config;
mod docs;
mod escapes;
mod faults;
mod files;
mod hostile;
mod layering;
mod metrics;
mod monitor;
mod parity;
mod ping;
mod providers;
mod recovery;
mod redaction;
mod router;
mod serve;
mod shared_state;
mod sse_props;
mod stats;
mod telemetry;
mod tools;
mod tui;
