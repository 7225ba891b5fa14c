//! llmux: a terminal app and library for chatting with large language models through a
//! LiteLLM-compatible router.
//!
//! The core (`config`, `provider`, `router`, `cache`, `metrics`, `store`) knows nothing about the
//! terminal or HTTP serving; the front ends (`tui`, `serve`, and the `ask` command in
//! `cli`) are clients of the same [`router::Router`].

pub mod cache;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod exit;
pub mod metrics;
pub mod money;
pub mod monitor;
pub mod protocol;
pub mod provider;
pub mod roles;
pub mod router;
pub mod sanitize;
pub mod secret;
pub mod serve;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tui;
pub mod widgets;
