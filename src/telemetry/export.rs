//! The exporter: a [`Subscriber`] that hands what the router says to one task, which builds
//! the spans (`spans`) and sends them in batches to every destination over OTLP.
//!
//! The request path only queues: a bounded channel's `try_send`, never a wait. When the queue
//! is full (the task is stuck behind a collector that does not answer), what does not fit is
//! dropped and said once. The task sends a batch when it holds [`MAX_BATCH`] spans or
//! [`SCHEDULE_DELAY`] after its first span, whichever comes first; each send is bounded by the
//! destination's timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`), is not retried, and a failure costs
//! that batch and one warning until a send works again. [`Telemetry::flush`] sends what is
//! held at once (the exit of `ask`, the tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use opentelemetry::KeyValue;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::settings::{Destination, Protocol, Settings};
use super::spans::{Builder, Finished, Input, parse_traceparent};
use crate::config::Config;
use crate::provider::{Message, Operation};
use crate::router::{ChatOutcome, RequestStart, RouteError, RouteEvent, Subscriber};
use crate::secret::Secret;

/// Messages the queue holds before more are dropped (a request is ~6).
const QUEUE: usize = 64 * 1024;
/// The most spans one export sends (OpenTelemetry's `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` default).
pub const MAX_BATCH: usize = 512;
/// How long a span waits for others before its batch is sent (`OTEL_BSP_SCHEDULE_DELAY`'s
/// default is 5 s; shorter here so that a trace shows up while one still looks for it).
pub const SCHEDULE_DELAY: Duration = Duration::from_secs(1);
/// How long the exit waits for the last batch, whatever the destinations' timeouts.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the exporter's warnings go: stderr, or nowhere (the TUI, whose screen a line on
/// stderr would tear).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warnings {
    Stderr,
    Silent,
}

enum Msg {
    Input(Input),
    Flush(oneshot::Sender<()>),
}

/// The running exporter; cheap to clone. Dropping every clone ends the task after it sent
/// what it held.
#[derive(Clone)]
pub struct Telemetry {
    tx: mpsc::Sender<Msg>,
    capture_content: bool,
    shared: Arc<Shared>,
}

/// What the handle and the task both see.
struct Shared {
    dropped: AtomicU64,
    warned_full: AtomicBool,
    warnings: Warnings,
}

impl Shared {
    fn warn(&self, message: &str) {
        if self.warnings == Warnings::Stderr {
            crate::errln!("llmux: warning: telemetry: {message}");
        }
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

/// Why the exporter could not start ([`super::start`] warns with it and sends no traces).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no async runtime to send traces on")]
    NoRuntime,
    #[error("cannot set up the {destination} exporter: {source}")]
    Exporter {
        /// `otel` or `langfuse`.
        destination: &'static str,
        source: ExporterError,
    },
}

/// Why one destination's exporter could not be built. Header values are secrets: no message
/// quotes one.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("{0}")]
    Client(#[from] reqwest::Error),
    #[error(
        "header name '{}' is not valid (letters, digits and !#$%&'*+-.^_`|~ only)",
        crate::sanitize::escape_line(.0)
    )]
    HeaderName(String),
    #[error("header {} holds a character HTTP cannot send", crate::sanitize::escape_line(.0))]
    HeaderValue(String),
    #[error("{0}")]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("gRPC is not in this build (cargo feature otlp-grpc)")]
    NoGrpc,
}

impl Telemetry {
    /// Starts the task on the current tokio runtime, with one OTLP exporter per destination.
    /// `Err` says why it cannot (no runtime, an exporter that cannot be built).
    pub fn start(
        config: &Config,
        settings: &Settings,
        warnings: Warnings,
    ) -> Result<Telemetry, StartError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let resource = Resource::builder_empty()
            .with_service_name(settings.service_name.clone())
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("telemetry.sdk.language", "rust"),
                KeyValue::new("telemetry.sdk.name", "opentelemetry"),
            ])
            .build();
        let mut exporters = Vec::new();
        for d in &settings.destinations {
            let mut exporter = build_exporter(d).map_err(|source| StartError::Exporter {
                destination: d.name,
                source,
            })?;
            exporter.set_resource(&resource);
            exporters.push(Sink {
                destination: d.clone(),
                exporter,
                failing: false,
            });
        }
        let shared = Arc::new(Shared {
            dropped: AtomicU64::new(0),
            warned_full: AtomicBool::new(false),
            warnings,
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        let builder = Builder::new(config, settings.langfuse());
        runtime.spawn(run(rx, builder, exporters, shared.clone()));
        Ok(Telemetry {
            tx,
            capture_content: settings.capture_content,
            shared,
        })
    }

    /// Sends every span of the requests that ended so far, waiting at most `timeout`; returns
    /// whether it was done in time.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = oneshot::channel();
        if self
            .tx
            .send_timeout(Msg::Flush(done), timeout)
            .await
            .is_err()
        {
            return false;
        }
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// How many messages were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, input: Input) {
        if self.tx.try_send(Msg::Input(input)).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            if !self.shared.warned_full.swap(true, Ordering::Relaxed) {
                self.shared.warn(
                    "the span queue is full (the collector is slow or down); spans are dropped",
                );
            }
        }
    }
}

impl Subscriber for Telemetry {
    fn on_start(&self, start: &RequestStart<'_>) {
        let parent = start
            .origin
            .traceparent
            .as_deref()
            .and_then(|tp| parse_traceparent(tp, start.origin.tracestate.as_deref()));
        let (parent, sampled) = match parent {
            Some(Some(p)) => (Some(p), true),
            // The caller's trace is not sampled: neither is this request.
            Some(None) => (None, false),
            None => (None, true),
        };
        let operation = match start.request.operation {
            Operation::Chat => "chat",
            Operation::Embedding { .. } => "embeddings",
        };
        let input = self
            .capture_content
            .then(|| messages_json(&start.request.messages));
        self.send(Input::Start {
            request_id: start.request_id,
            parent,
            sampled,
            operation,
            input,
        });
    }

    fn on_event(&self, event: &Arc<RouteEvent>) {
        if event.request_id != 0 {
            self.send(Input::Event(Arc::clone(event)));
        }
    }

    fn on_finish(&self, request_id: u64, result: &Result<ChatOutcome, RouteError>) {
        let output = match result {
            Ok(o) if self.capture_content => Some(answer_json(o)),
            _ => None,
        };
        self.send(Input::Finish { request_id, output });
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let me = self.clone();
        Box::pin(async move {
            me.flush(CLOSE_TIMEOUT).await;
        })
    }
}

/// Messages as the GenAI conventions write them (role and text; images are left out).
fn messages_json(messages: &[Message]) -> String {
    let list: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "role": m.role,
                "parts": [{"type": "text", "content": m.content}],
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn answer_json(o: &ChatOutcome) -> String {
    serde_json::json!([{
        "role": "assistant",
        "parts": [{"type": "text", "content": o.text}],
        "finish_reason": o.finish_reason,
    }])
    .to_string()
}

/// One destination and its exporter.
struct Sink {
    destination: Destination,
    exporter: opentelemetry_otlp::SpanExporter,
    /// The last send failed (its warning was said; the next is said once one works again).
    failing: bool,
}

fn build_exporter(d: &Destination) -> Result<opentelemetry_otlp::SpanExporter, ExporterError> {
    match d.protocol {
        Protocol::HttpProtobuf => {
            crate::provider::http::install_tls_provider();
            let inner = reqwest::Client::builder().timeout(d.timeout).build()?;
            let mut headers = HeaderMap::new();
            for (k, v) in &d.headers {
                let (name, mut value) = header(k, v)?;
                value.set_sensitive(true);
                headers.insert(name, value);
            }
            Ok(opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(d.endpoint.clone())
                .with_timeout(d.timeout)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(ExactHeaders { inner, headers })
                .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
                .build()?)
        }
        Protocol::Grpc => grpc_exporter(d),
    }
}

/// One of a destination's headers as HTTP takes it.
fn header(name: &str, value: &Secret) -> Result<(HeaderName, HeaderValue), ExporterError> {
    Ok((
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ExporterError::HeaderName(name.to_string()))?,
        HeaderValue::from_str(value.expose())
            .map_err(|_| ExporterError::HeaderValue(name.to_string()))?,
    ))
}

#[cfg(feature = "otlp-grpc")]
fn grpc_exporter(d: &Destination) -> Result<opentelemetry_otlp::SpanExporter, ExporterError> {
    use opentelemetry_otlp::WithTonicConfig;
    // tonic's metadata is built from HTTP headers (its key type is not re-exported).
    let mut headers = HeaderMap::new();
    for (k, v) in &d.headers {
        let (name, value) = header(k, v)?;
        headers.insert(name, value);
    }
    let metadata = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
    Ok(opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(d.endpoint.clone())
        .with_timeout(d.timeout)
        .with_metadata(metadata)
        .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
        .build()?)
}

#[cfg(not(feature = "otlp-grpc"))]
fn grpc_exporter(_d: &Destination) -> Result<opentelemetry_otlp::SpanExporter, ExporterError> {
    Err(ExporterError::NoGrpc)
}

/// reqwest, sending exactly the destination's headers: the OTLP crate adds
/// `OTEL_EXPORTER_OTLP_HEADERS` from the process environment to every exporter, and a
/// collector's key must not reach Langfuse (nor Langfuse's keys a collector).
#[derive(Debug)]
struct ExactHeaders {
    inner: reqwest::Client,
    headers: HeaderMap,
}

#[async_trait::async_trait]
impl HttpClient for ExactHeaders {
    async fn send_bytes(&self, mut request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let keep = [
            reqwest::header::CONTENT_TYPE,
            reqwest::header::CONTENT_ENCODING,
        ];
        let mut headers = self.headers.clone();
        for name in keep {
            if let Some(v) = request.headers().get(&name) {
                headers.insert(name, v.clone());
            }
        }
        headers.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(concat!("llmux/", env!("CARGO_PKG_VERSION"))),
        );
        *request.headers_mut() = headers;
        self.inner.send_bytes(request).await
    }
}

/// The task: takes what the subscriber queued, exports in batches until every handle is gone.
async fn run(
    mut rx: mpsc::Receiver<Msg>,
    mut builder: Builder,
    mut sinks: Vec<Sink>,
    shared: Arc<Shared>,
) {
    let mut batch: Vec<Finished> = Vec::new();
    let mut held = 0usize;
    let mut deadline: Option<Instant> = None;
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            () = sleep_until(deadline) => {
                export(&mut sinks, &mut batch, &shared).await;
                held = 0;
                deadline = None;
                continue;
            }
        };
        match msg {
            None => {
                export(&mut sinks, &mut batch, &shared).await;
                return;
            }
            Some(Msg::Input(input)) => {
                if let Some(done) = builder.take(input) {
                    held += done.spans.len();
                    batch.push(done);
                    deadline.get_or_insert_with(|| Instant::now() + SCHEDULE_DELAY);
                    if held >= MAX_BATCH {
                        export(&mut sinks, &mut batch, &shared).await;
                        held = 0;
                        deadline = None;
                    }
                }
            }
            Some(Msg::Flush(done)) => {
                export(&mut sinks, &mut batch, &shared).await;
                held = 0;
                deadline = None;
                let _ = done.send(());
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Sends the batch to every destination (each its requests: answered, failed or both).
async fn export(sinks: &mut [Sink], batch: &mut Vec<Finished>, shared: &Shared) {
    if batch.is_empty() {
        return;
    }
    let taken = std::mem::take(batch);
    for sink in sinks.iter_mut() {
        let r = sink.destination.reported;
        let spans: Vec<SpanData> = taken
            .iter()
            .filter(|f| if f.success { r.success } else { r.failure })
            .flat_map(|f| f.spans.iter().cloned())
            .collect();
        if spans.is_empty() {
            continue;
        }
        let n = spans.len();
        let sent = tokio::time::timeout(
            sink.destination.timeout + Duration::from_millis(100),
            sink.exporter.export(spans),
        )
        .await;
        let error = match sent {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "no answer within {} ms",
                sink.destination.timeout.as_millis()
            )),
        };
        match error {
            None => sink.failing = false,
            Some(e) if !sink.failing => {
                sink.failing = true;
                shared.warn(&format!(
                    "cannot send {n} spans to {} ({}): {}; dropped (said once until a send works again)",
                    sink.destination.name,
                    super::shown_endpoint(&sink.destination.endpoint),
                    scrub(&sink.destination, &e)
                ));
            }
            Some(_) => {}
        }
    }
}

/// An exporter's error with the destination's header values taken out.
fn scrub(d: &Destination, text: &str) -> String {
    d.headers
        .iter()
        .fold(text.to_string(), |t, (_, v)| v.scrub(&t))
}
