//! `llmux serve`: an OpenAI- and Anthropic-compatible HTTP endpoint over one [`Router`], with
//! Prometheus `/metrics`, health checks and a live event stream for `llmux monitor`.
//!
//! Requests enter through `conn` (HTTP/1.1 on a TCP listener, TCP_NODELAY and a header
//! deadline on every socket) into `routes`, the one route table, which checks the key and
//! picks the handler. `body` reads a request's JSON within its limits; `openai`, `anthropic`
//! and `completions` each say how their API's JSON becomes a
//! [`ChatRequest`](crate::provider::ChatRequest) and how an answer is written ([`chat::ChatApi`]);
//! `chat` runs it through the router and waits for the first token (so routing failures still
//! get a real error status), and the answer leaves either as one JSON body or as SSE frames
//! (`sse`) written as each delta arrives; `json` holds what their serde writers share
//! (shapes serialized once, members passed through spliced in). `auth` checks the
//! master key, `error` renders failures in each API's error shape, `metrics` keeps the
//! serve-level counters and histograms and renders Prometheus text, and `events` streams
//! route events and metric snapshots to monitors. Shutdown stops accepting, lets in-flight
//! answers finish up to a deadline, then drops what is left.

mod anthropic;
mod auth;
mod body;
mod chat;
mod completions;
mod conn;
mod connections;
mod count_tokens;
mod embeddings;
mod error;
pub mod events;
mod framing;
mod health;
mod json;
mod metrics;
mod models;
mod openai;
mod routes;
mod sse;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::router::Router;
use crate::secret::Secret;

pub use crate::protocol::events::{DeploymentHealth, Hello, MonitorSnapshot};
pub use metrics::{HISTOGRAM_BUCKETS, ServeMetrics};

/// The default address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:4000";
/// The largest request body read; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Chat requests one instance serves at once; more get 503 with Retry-After.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;
/// How long shutdown waits for in-flight answers before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How often `/llmux/events` sends a metrics snapshot (also its keep-alive).
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);
/// Route events a monitor is given when it connects (`/llmux/events`' `recent`): a busy
/// server's last second or so, a quiet one's last hour.
pub const RECENT_EVENTS: usize = 500;
/// How long a client may take to send a request's headers (and the longest an idle
/// keep-alive connection stays open); then the connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may wait to send a request's headers while the server holds three
/// quarters of its connection cap (then the longest waiting are closed at once).
pub const PRESSURE_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a client may take to send a request's body once its headers arrived; then 408.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the answers cut when the shutdown grace period ends get to write their error.
const CUT_FLUSH: Duration = Duration::from_secs(1);
/// Retry-After, in seconds, when the instance is at its in-flight limit or shutting down.
const OVERLOADED_RETRY_AFTER_SECS: u64 = 1;

/// How one server instance runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: SocketAddr,
    /// Allows binding a non-loopback address without a master key.
    pub insecure_no_auth: bool,
    pub max_in_flight: usize,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub snapshot_interval: Duration,
    pub header_read_timeout: Duration,
    /// The header deadline while three quarters of `max_connections` are open.
    pub pressure_header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    /// Client connections held at once (default: half the descriptors the process may open,
    /// less a reserve); at the cap, those still waiting to send a request are closed, oldest
    /// first.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 4000)),
            insecure_no_auth: false,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_body_bytes: MAX_BODY_BYTES,
            shutdown_grace: SHUTDOWN_GRACE,
            snapshot_interval: SNAPSHOT_INTERVAL,
            header_read_timeout: HEADER_READ_TIMEOUT,
            pressure_header_read_timeout: PRESSURE_HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            max_connections: connections::default_max_connections(),
        }
    }
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to serve {0} without general_settings.master_key: anyone who can reach it could spend your keys (bind 127.0.0.1, set a master key, or pass --insecure-no-auth)"
    )]
    NoAuthOnPublicAddress(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) router: Router,
    pub(crate) master_key: Option<Secret>,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) max_in_flight: usize,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_read_timeout: Duration,
    pub(crate) snapshot_interval: Duration,
    pub(crate) metrics: ServeMetrics,
    pub(crate) connections: Arc<connections::Connections>,
    pub(crate) started: Instant,
    /// Flips to true when shutdown begins: readiness fails, event streams end.
    pub(crate) shutting_down: watch::Receiver<bool>,
    /// Flips to true when the shutdown grace period is over: answers still streaming end
    /// with an in-band error.
    pub(crate) cut: watch::Receiver<bool>,
}

impl AppState {
    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutting_down.borrow()
    }
}

pub(crate) type Shared = Arc<AppState>;

/// The runtime `llmux serve` runs on: one worker per core, or, with a single core (a pinned
/// process, a container limited to one CPU), a current-thread runtime. With one core a
/// multi-thread runtime only adds its work-stealing bookkeeping and a thread between the
/// accept loop and the connections; the current-thread one serves a request with ~15% less
/// CPU (`scripts/bench-serve.sh`).
pub fn runtime_builder() -> tokio::runtime::Builder {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
}

/// Refuses a non-loopback address when there is no master key, unless told otherwise.
pub fn check_bind(
    addr: SocketAddr,
    has_key: bool,
    insecure_no_auth: bool,
) -> Result<(), ServeError> {
    if has_key || insecure_no_auth || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(ServeError::NoAuthOnPublicAddress(addr))
    }
}

/// A server started with [`spawn`].
#[derive(Debug)]
pub struct Running {
    /// The address it listens on (the real port when bound to port 0).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Begins a graceful shutdown and waits for it to end (in-flight answers finish or the
    /// grace period runs out).
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(ServeError::Io(std::io::Error::other(e.to_string()))),
        }
    }
}

/// Binds and serves in a background task until [`Running::shutdown`].
pub async fn spawn(router: Router, options: ServeOptions) -> Result<Running, ServeError> {
    let (stop, stopped) = watch::channel(false);
    let listener = bind(&router, &options).await?;
    let addr = listener.local_addr()?;
    let mut wait = stopped.clone();
    let task = tokio::spawn(serve_on(listener, router, options, stopped, async move {
        let _ = wait.wait_for(|s| *s).await;
    }));
    Ok(Running { addr, stop, task })
}

/// Binds and serves until `shutdown` resolves, then shuts down gracefully.
pub async fn run<F>(router: Router, options: ServeOptions, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = bind(&router, &options).await?;
    let addr = listener.local_addr()?;
    let auth = if router.config().master_key.is_some() {
        "master key required"
    } else {
        "no auth (no general_settings.master_key)"
    };
    eprintln!("llmux serve: listening on http://{addr} ({auth})");
    crate::router::budget::log_warnings(&router, "llmux serve");
    let (_stop, stopped) = watch::channel(false);
    serve_on(listener, router, options, stopped, shutdown).await
}

async fn bind(
    router: &Router,
    options: &ServeOptions,
) -> Result<tokio::net::TcpListener, ServeError> {
    check_bind(
        options.bind,
        router.config().master_key.is_some(),
        options.insecure_no_auth,
    )?;
    tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.bind,
            source,
        })
}

async fn serve_on<F>(
    listener: tokio::net::TcpListener,
    router: Router,
    options: ServeOptions,
    external_stop: watch::Receiver<bool>,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (flag, shutting_down) = watch::channel(false);
    let (cut_tx, cut) = watch::channel(false);
    let state = Arc::new(AppState {
        master_key: router.config().master_key.clone(),
        router,
        in_flight: AtomicUsize::new(0),
        max_in_flight: options.max_in_flight,
        max_body_bytes: options.max_body_bytes,
        body_read_timeout: options.body_read_timeout,
        snapshot_interval: options.snapshot_interval,
        metrics: ServeMetrics::default(),
        connections: Arc::new(connections::Connections::new(
            options.max_connections,
            options.pressure_header_read_timeout,
        )),
        started: Instant::now(),
        shutting_down,
        cut,
    });
    let mut external = external_stop;
    let begin = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = external.wait_for(|s| *s) => {}
        }
        let _ = flag.send(true);
    };
    let (began_tx, began_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        begin.await;
        let _ = began_tx.send(());
    };
    let server = conn::serve(listener, state.clone(), options.header_read_timeout, signal);
    let grace = options.shutdown_grace;
    let deadline = async move {
        if began_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => return r.map_err(ServeError::Io),
        _ = deadline => {}
    }
    let left = state.in_flight.load(Ordering::Relaxed);
    eprintln!(
        "llmux serve: shutdown grace period over; cutting {left} request(s) still in flight (a streamed answer ends with an in-band error)"
    );
    let _ = cut_tx.send(true);
    // The cut answers' last frames are written; a client that reads nothing gets no longer.
    let _ = tokio::time::timeout(CUT_FLUSH, server).await;
    Ok(())
}

/// `llmux serve` arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (a non-loopback address needs general_settings.master_key or --insecure-no-auth).
    #[arg(long, default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Allow listening on a non-loopback address with no master key (anyone who can reach it can spend your keys).
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Chat requests served at once; more get 503 with Retry-After.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Client connections held at once (default: half the file descriptors allowed, less a
    /// reserve); at the cap, the connections that have not sent a request yet are closed, oldest first.
    #[arg(long)]
    pub max_connections: Option<usize>,
}

/// Runs `llmux serve` until SIGTERM or Ctrl+C; returns the exit code.
pub async fn command(config: Option<&Path>, args: ServeArgs) -> u8 {
    let cfg = match crate::startup::load_config(config, true) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let router = match crate::startup::build_router(cfg, RECENT_EVENTS) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let options = ServeOptions {
        bind: args.bind,
        insecure_no_auth: args.insecure_no_auth,
        max_in_flight: args.max_in_flight.max(1),
        max_connections: args
            .max_connections
            .unwrap_or_else(connections::default_max_connections)
            .max(1),
        ..ServeOptions::default()
    };
    let closing = router.clone();
    let served = run(router, options, shutdown_signal()).await;
    // The request log's last lines and the exporter's last spans (bounded wait).
    closing.close().await;
    match served {
        Ok(()) => crate::exit::EXIT_OK,
        Err(e @ ServeError::NoAuthOnPublicAddress(_)) => {
            eprintln!("llmux serve: {e}");
            crate::exit::EXIT_USAGE
        }
        Err(e) => {
            eprintln!("llmux serve: {e}");
            crate::exit::EXIT_FAILED
        }
    }
}

/// Resolves on Ctrl+C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    eprintln!("llmux serve: shutting down; finishing in-flight requests");
}
