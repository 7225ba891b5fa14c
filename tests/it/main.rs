//! All integration tests, in one binary (each file directly under tests/ would link the whole
//! crate again). One module per area.

#![allow(clippy::unwrap_used, clippy::expect_used)]
mod upstream;

mod config;
mod metrics;
mod providers;
mod router;
mod serve;
mod sse_props;
