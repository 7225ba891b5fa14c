//! Traces of every request over OpenTelemetry (OTLP), for LiteLLM's `otel` and `langfuse`
//! callbacks (`litellm_settings.callbacks`, `success_callback`, `failure_callback`).
//!
//! `settings` reads where to send them (the config's callbacks and the standard
//! `OTEL_*`/`LANGFUSE_*` variables); `spans` turns a request's route events into a trace (a
//! span for the request, one per attempt, GenAI semantic-convention attributes); `export` is
//! the router [`Subscriber`](crate::router::Subscriber) that queues them without waiting and
//! the task that sends them in batches. `startup` wires it into the router; serve passes the
//! caller's `traceparent` in through `Router::chat_from`.

mod export;
mod settings;
mod spans;

pub use export::{
    CLOSE_TIMEOUT, ExporterError, MAX_BATCH, SCHEDULE_DELAY, StartError, Telemetry, Warnings,
};
pub use settings::{
    Destination, LANGFUSE_DEFAULT_HOST, Protocol, Settings, langfuse_auth, langfuse_endpoint,
};

use crate::config::Config;

/// Starts the exporters `cfg`'s callbacks ask for, saying on stderr why one that is listed
/// cannot start (at start, before the TUI takes the screen); `warnings` says where the
/// exporter's later warnings go. `None` when there is nothing to send.
pub fn start(cfg: &Config, warnings: Warnings) -> Option<Telemetry> {
    let settings = Settings::from_config(cfg);
    for p in &settings.problems {
        crate::errln!("llmux: warning: telemetry: {p}");
    }
    if settings.destinations.is_empty() {
        return None;
    }
    match Telemetry::start(cfg, &settings, warnings) {
        Ok(t) => Some(t),
        Err(e) => {
            crate::errln!("llmux: warning: telemetry: {e}; no traces are sent");
            None
        }
    }
}

/// `endpoint` as it may be shown: a password in it (`https://user:pass@host`) is hidden.
pub fn shown_endpoint(endpoint: &str) -> String {
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return crate::sanitize::escape_line(endpoint).into_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let shown = match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://[redacted]@{}", &rest[at + 1..]),
        None => endpoint.to_string(),
    };
    crate::sanitize::escape_line(&shown).into_owned()
}
