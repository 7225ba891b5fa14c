//! The command line: `llmux [--config PATH] [COMMAND]`. Each command is a thin client of the
//! core; this module only parses arguments, loads the config and maps outcomes to exit codes
//! (0 success, 1 every route failed, 2 bad usage or config).
//!
//! Everything the commands print goes through [`outln!`](crate::outln) and
//! [`errln!`](crate::errln), which escape control characters and bidi overrides: tables and
//! diagnostics quote tags, model names and upstream errors that llmux did not write.
//! `println!`/`eprintln!` are denied here so that nothing bypasses them.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod ask;
pub mod batch;
mod check;
mod stats;
mod tui_settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::errln;

pub use crate::exit::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE};
pub use crate::startup::{build_router, format_warning, load_config};

#[derive(Debug, Parser)]
#[command(
    name = "llmux",
    version,
    about = "Chat with LLMs through a LiteLLM-compatible router, with the routing visible live"
)]
pub struct Cli {
    /// The config file (LiteLLM's config.yaml); else $LLMUX_CONFIG, else <config dir>/llmux/config.yaml, else the demo.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Open this saved conversation (TUI).
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One request through the router; the answer streams to stdout.
    Ask(ask::AskArgs),
    /// Validate the config and show groups, deployments, fallback chains and prices; --ping calls every deployment.
    Check(check::CheckArgs),
    /// List model groups and deployments with context window and price per million tokens.
    Models,
    /// Requests, failures, tokens, cost and latency from the request log.
    Stats(stats::StatsArgs),
    /// Serve OpenAI- and Anthropic-compatible endpoints over the router, with /metrics.
    Serve(crate::serve::ServeArgs),
    /// Watch a running `llmux serve` live: metrics and routing log, read-only.
    Monitor(crate::monitor::MonitorArgs),
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = match &cli.command {
        Some(Command::Serve(_)) => crate::serve::runtime_builder(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            errln!("llmux: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let code = match cli.command {
        Some(Command::Ask(args)) => runtime.block_on(ask::run(cli.config.as_deref(), args)),
        Some(Command::Check(args)) if args.ping => {
            runtime.block_on(check::ping_command(cli.config.as_deref(), &args))
        }
        Some(Command::Check(_)) => check::check(cli.config.as_deref()),
        Some(Command::Models) => check::models(cli.config.as_deref()),
        Some(Command::Stats(args)) => stats::run(cli.config.as_deref(), args),
        Some(Command::Serve(args)) => {
            runtime.block_on(crate::serve::command(cli.config.as_deref(), args))
        }
        Some(Command::Monitor(args)) => runtime.block_on(crate::monitor::command(args)),
        None => runtime.block_on(crate::tui::run(cli.config.as_deref(), cli.session)),
    };
    ExitCode::from(code)
}
