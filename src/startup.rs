//! What every front end (the TUI, `serve`, the commands) does to start: find and load the
//! config, report its errors and warnings on stderr, and build the router with the request log.
//! Kept apart from `cli` so the front ends do not import the command line that dispatches them.

use std::path::Path;
use std::sync::Arc;

use crate::config::{self, Config, ConfigSource, DATA_DIR_ENV};
use crate::errln;
use crate::exit::{EXIT_FAILED, EXIT_USAGE};
use crate::router::{EventLog, Router, RouterError, RouterOptions, Subscriber};
use crate::store::{RequestLog, RequestLogError};
use crate::telemetry::{self, Warnings};

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
/// fatal) and the exporters the config's callbacks ask for, keeping the latest
/// `recent_events` route events (see [`RouterOptions`]). Warnings go to stderr.
pub fn build_router(cfg: Config, recent_events: usize) -> Result<Router, u8> {
    build_router_with(
        cfg,
        RouterOptions {
            recent_events,
            ..RouterOptions::default()
        },
        Warnings::Stderr,
    )
}

/// [`build_router`] for the TUI, with `options` (e.g. the inspector's wire capture): the
/// exporter's later warnings are not printed (a line on stderr would tear the screen).
pub fn build_router_in_tui(cfg: Config, options: RouterOptions) -> Result<Router, u8> {
    build_router_with(cfg, options, Warnings::Silent)
}

/// A router with `options`, the default request log and the config's exporters.
fn build_router_with(
    cfg: Config,
    options: RouterOptions,
    warnings: Warnings,
) -> Result<Router, u8> {
    let request_log = RequestLog::default_path().and_then(|p| match RequestLog::open(&p) {
        Ok(log) => Some(log),
        Err(e) => {
            errln!("llmux: warning: {}", unlogged(&e));
            None
        }
    });
    let telemetry = telemetry::start(&cfg, warnings);
    Router::new(
        cfg,
        RouterOptions {
            request_log: request_log.map(|log| Arc::new(log) as Arc<dyn EventLog>),
            subscribers: telemetry
                .into_iter()
                .map(|t| Arc::new(t) as Arc<dyn Subscriber>)
                .collect(),
            http_options: crate::provider::HttpOptions::from_environment(),
            ..options
        },
    )
    .map_err(|e| {
        errln!("llmux: {e}");
        exit_code(&e)
    })
}

/// What a request log that cannot be opened means for this run, and what to do.
fn unlogged(e: &RequestLogError) -> String {
    format!(
        "{e}; this run's requests are not logged (make that directory writable, or point \
         {DATA_DIR_ENV} at one that is)"
    )
}

/// A config that cannot work is bad usage; an HTTP client that cannot be built is this
/// machine's failure.
fn exit_code(e: &RouterError) -> u8 {
    match e {
        RouterError::Http(_) => EXIT_FAILED,
        RouterError::PricingFile(_) | RouterError::SharedState(_) | RouterError::Cache(_) => {
            EXIT_USAGE
        }
    }
}
