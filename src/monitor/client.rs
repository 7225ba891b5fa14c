//! The feed client: connects to a server's `/llmux/events`, decodes its SSE events into
//! [`Update`]s and sends them to the monitor; when the connection fails or ends it reports
//! `Disconnected` and tries again, waiting a little longer each time (up to
//! [`RECONNECT_MAX`]), for as long as the monitor runs. What the server sends is escaped
//! on the way in ([`decode`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::sync::mpsc;

use super::state::Update;
use crate::protocol::events::{
    EVENT_HELLO, EVENT_LAGGED, EVENT_METRICS, EVENT_RECENT, EVENT_ROUTE, Lagged,
};
use crate::provider::ProviderError;
use crate::provider::sse::{SseEvent, sse_events};
use crate::secret::Secret;

/// The first wait before reconnecting; it doubles up to [`RECONNECT_MAX`].
pub const RECONNECT_MIN: Duration = Duration::from_millis(250);
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Connecting gives up after this long (the server is then reported down and retried).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// With a snapshot every second, this much silence means the connection is dead.
const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The events URL of a server's base URL.
pub fn events_url(base: &str) -> String {
    format!("{}/llmux/events", base.trim_end_matches('/'))
}

/// One SSE event of the feed as an update; `None` for events it does not know. Every string
/// in it (deployment ids, groups, tags, error messages, budget labels) is escaped here, as
/// it arrives: the server passes on what its clients and upstreams said, and the panes that
/// draw it are the shared [`crate::widgets`].
pub fn decode(ev: &SseEvent) -> Option<Update> {
    let name = ev.event.as_deref()?;
    let mut data: serde_json::Value = serde_json::from_str(&ev.data).ok()?;
    crate::sanitize::escape_json_strings(&mut data);
    match name {
        EVENT_HELLO => serde_json::from_value(data).ok().map(Update::Hello),
        EVENT_METRICS => serde_json::from_value(data)
            .ok()
            .map(|s| Update::Snapshot(Box::new(s))),
        EVENT_ROUTE => serde_json::from_value(data)
            .ok()
            .map(|e| Update::Route(Box::new(e))),
        // One by one: an event this monitor cannot read (a newer server's) costs only itself.
        EVENT_RECENT => serde_json::from_value::<Vec<serde_json::Value>>(data)
            .ok()
            .map(|all| {
                let events = all
                    .into_iter()
                    .filter_map(|e| serde_json::from_value(e).ok());
                Update::Recent(events.collect())
            }),
        EVENT_LAGGED => serde_json::from_value::<Lagged>(data)
            .ok()
            .map(|l| Update::Lagged(l.missed)),
        _ => None,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why the feed could not be opened: what the monitor's status line says while it retries.
/// Short, and never the request error's own text (it would repeat the URL the title shows).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The HTTP client could not be built.
    #[error("cannot set up HTTP")]
    Setup(#[source] reqwest::Error),
    /// Nothing accepted the connection (no server there, or a firewall).
    #[error("cannot connect")]
    Connect(#[source] reqwest::Error),
    #[error("timed out")]
    Timeout(#[source] reqwest::Error),
    /// The request failed some other way (TLS, a cut connection).
    #[error("request failed")]
    Request(#[source] reqwest::Error),
    #[error("401 unauthorized: pass the server's master key with --key or LLMUX_MASTER_KEY")]
    Unauthorized,
    /// The server has no feed: it is not `llmux serve` (a LiteLLM proxy, another service).
    #[error("404 not found: the server has no /llmux/events; is it llmux serve?")]
    NoFeed,
    #[error("the server answered {0}")]
    Status(u16),
}

impl From<reqwest::Error> for OpenError {
    fn from(e: reqwest::Error) -> OpenError {
        if e.is_connect() {
            OpenError::Connect(e)
        } else if e.is_timeout() {
            OpenError::Timeout(e)
        } else {
            OpenError::Request(e)
        }
    }
}

/// Opens the feed; returns the response once the server accepted it.
pub async fn open(
    client: &reqwest::Client,
    base: &str,
    key: Option<&Secret>,
) -> Result<reqwest::Response, OpenError> {
    let mut request = client.get(events_url(base));
    if let Some(k) = key {
        request = request.bearer_auth(k.expose());
    }
    let response = request.send().await?;
    match response.status().as_u16() {
        200 => Ok(response),
        401 => Err(OpenError::Unauthorized),
        404 => Err(OpenError::NoFeed),
        s => Err(OpenError::Status(s)),
    }
}

/// The feed's SSE events from an open response (no size limit: the feed runs for days).
pub fn feed_events(
    response: reqwest::Response,
) -> impl futures::Stream<Item = Result<SseEvent, ProviderError>> + Send {
    sse_events(
        response
            .bytes_stream()
            .map(|r| r.map_err(|_| ProviderError::network("the connection was cut"))),
    )
}

/// Follows the feed forever, reconnecting; ends when the receiver is gone.
pub async fn follow(base: String, key: Option<Secret>, tx: mpsc::Sender<Update>) {
    crate::provider::http::install_tls_provider();
    let client = match reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            let _ = tx
                .send(Update::Disconnected {
                    error: OpenError::Setup(e).to_string(),
                    at_unix_ms: now_ms(),
                })
                .await;
            return;
        }
    };
    let mut wait = RECONNECT_MIN;
    loop {
        let error = match open(&client, &base, key.as_ref()).await {
            Ok(response) => {
                wait = RECONNECT_MIN;
                match pump(response, &tx).await {
                    Some(error) => error,
                    None => return,
                }
            }
            Err(e) => e.to_string(),
        };
        let lost = Update::Disconnected {
            error,
            at_unix_ms: now_ms(),
        };
        if tx.send(lost).await.is_err() {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RECONNECT_MAX);
    }
}

/// Forwards one connection's events; returns why it ended, or `None` when the monitor is gone.
async fn pump(response: reqwest::Response, tx: &mpsc::Sender<Update>) -> Option<String> {
    let events = feed_events(response);
    futures::pin_mut!(events);
    loop {
        match tokio::time::timeout(READ_IDLE_TIMEOUT, events.next()).await {
            Err(_) => return Some("no data from the server".to_string()),
            Ok(None) => return Some("the server closed the feed".to_string()),
            Ok(Some(Err(_))) => return Some("the connection was cut".to_string()),
            Ok(Some(Ok(ev))) => {
                if let Some(update) = decode(&ev)
                    && tx.send(update).await.is_err()
                {
                    return None;
                }
            }
        }
    }
}
