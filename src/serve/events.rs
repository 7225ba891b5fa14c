//! `GET /llmux/events`: the live feed `llmux monitor` reads. Authenticated like the chat
//! routes.
//!
//! The handler subscribes to the router's route events first, then sends, as SSE:
//! `event: hello` ([`Hello`]: version, groups, deployments), `event: recent` (a JSON array of
//! the router's latest [`RouteEvent`]s, oldest first, those the router keeps; every later
//! event follows as `route`, none missing or repeated in between), `event: metrics`
//! ([`MonitorSnapshot`]) at once and then every snapshot interval (which doubles as the
//! keep-alive), `event: route` for each [`RouteEvent`] as it happens, and `event: lagged`
//! (`{"missed": N}`) when this client fell so far behind that events were dropped. The stream
//! ends when the server shuts down. The wire types are [`crate::protocol::events`], shared
//! with the monitor that parses them back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::Shared;
use super::sse::{self, frame};
use crate::protocol::events::{
    EVENT_HELLO, EVENT_LAGGED, EVENT_METRICS, EVENT_RECENT, EVENT_ROUTE, Hello, Lagged,
    MonitorSnapshot,
};
use crate::router::RouteEvent;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn snapshot(state: &Shared) -> MonitorSnapshot {
    MonitorSnapshot {
        at_unix_ms: unix_ms(),
        uptime_s: state.started.elapsed().as_secs(),
        in_flight: state.in_flight.load(std::sync::atomic::Ordering::Relaxed),
        metrics: state.router.metrics(),
        deployments: state.router.deployments().iter().map(Into::into).collect(),
        budgets: state.router.budgets(),
    }
}

fn json_frame<T: Serialize>(out: &mut Vec<u8>, event: &str, value: &T) {
    if let Ok(data) = serde_json::to_vec(value) {
        frame(out, Some(event), &data);
    }
}

struct Feed {
    state: Shared,
    rx: tokio::sync::broadcast::Receiver<RouteEvent>,
    tick: tokio::time::Interval,
    stop: tokio::sync::watch::Receiver<bool>,
    /// The events before `rx`'s first, sent after `hello`.
    recent: Vec<std::sync::Arc<RouteEvent>>,
    started: bool,
    ended: bool,
}

/// `GET /llmux/events`.
pub(crate) async fn events(State(state): State<Shared>) -> Response {
    // Subscribe before anything is sent, so a client that saw `hello` sees every later event.
    let (recent, rx) = state.router.subscribe_with_recent();
    let period = state.snapshot_interval.max(Duration::from_millis(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        stop: state.shutting_down.clone(),
        state,
        rx,
        tick,
        recent,
        started: false,
        ended: false,
    };
    let body = futures::stream::unfold(feed, |mut f| async move {
        if f.ended {
            return None;
        }
        let mut out = Vec::new();
        if !f.started {
            f.started = true;
            let config = f.state.router.config();
            let hello = Hello {
                version: env!("CARGO_PKG_VERSION").to_string(),
                groups: config.groups.clone(),
                deployments: config.deployments.iter().map(|d| d.id.clone()).collect(),
            };
            json_frame(&mut out, EVENT_HELLO, &hello);
            // Sent once: the ring's events are not held past this frame.
            let recent = std::mem::take(&mut f.recent);
            let recent: Vec<&RouteEvent> = recent.iter().map(|e| &**e).collect();
            json_frame(&mut out, EVENT_RECENT, &recent);
            json_frame(&mut out, EVENT_METRICS, &snapshot(&f.state));
            return Some((Ok::<Bytes, std::convert::Infallible>(Bytes::from(out)), f));
        }
        tokio::select! {
            ev = f.rx.recv() => match ev {
                Ok(ev) => json_frame(&mut out, EVENT_ROUTE, &ev),
                Err(RecvError::Lagged(n)) => {
                    json_frame(&mut out, EVENT_LAGGED, &Lagged { missed: n });
                }
                Err(RecvError::Closed) => f.ended = true,
            },
            _ = f.tick.tick() => json_frame(&mut out, EVENT_METRICS, &snapshot(&f.state)),
            _ = f.stop.wait_for(|s| *s) => f.ended = true,
        }
        if f.ended && out.is_empty() {
            return None;
        }
        Some((Ok(Bytes::from(out)), f))
    });
    sse::response(Body::from_stream(body))
}
