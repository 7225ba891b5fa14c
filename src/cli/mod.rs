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

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config, ConfigSource};
use crate::errln;
use crate::router::{Router, RouterOptions};
use crate::store::RequestLog;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code when every route failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad usage or a bad config.
pub const EXIT_USAGE: u8 = 2;
/// Exit code after Ctrl+C stopped a batch (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

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

/// Loads the config the flags and environment point at, printing the error (`path:line:col:
/// message`) and the warnings to stderr.
pub fn load_config(flag: Option<&Path>, show_warnings: bool) -> Result<Config, u8> {
    let source = config::locate(flag);
    match config::load(&source) {
        Ok(cfg) => {
            if show_warnings {
                for w in &cfg.warnings {
                    errln!("{}", format_warning(&source, w));
                }
            }
            Ok(cfg)
        }
        Err(e) => {
            errln!("{e}");
            let count = e.all().count();
            if count > 1 {
                errln!("{count} errors in the config");
            }
            Err(EXIT_USAGE)
        }
    }
}

/// `path:line:col: warning: message`.
pub fn format_warning(source: &ConfigSource, w: &config::ConfigWarning) -> String {
    let path = match source {
        ConfigSource::File(p) => p.display().to_string(),
        ConfigSource::Demo => "<demo>".to_string(),
    };
    match (w.line, w.column) {
        (Some(l), Some(c)) => format!("{path}:{l}:{c}: warning: {}", w.message),
        _ => format!("{path}: warning: {}", w.message),
    }
}

/// A router with the default request log (a log that cannot be opened is reported, not
/// fatal), keeping the latest `recent_events` route events (see [`RouterOptions`]).
pub fn build_router(cfg: Config, recent_events: usize) -> Result<Router, u8> {
    let request_log = RequestLog::default_path().and_then(|p| match RequestLog::open(&p) {
        Ok(log) => Some(log),
        Err(e) => {
            errln!(
                "llmux: warning: cannot open the request log {}: {e}",
                p.display()
            );
            None
        }
    });
    Router::new(
        cfg,
        RouterOptions {
            request_log,
            recent_events,
            ..RouterOptions::default()
        },
    )
    .map_err(|e| {
        errln!("llmux: {e}");
        EXIT_USAGE
    })
}
