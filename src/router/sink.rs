//! Where a route event goes besides the request's own caller: the live feed (the TUI's routing
//! pane, `llmux serve`'s event feed), the [`Subscriber`]s the router was built with (the
//! request log, the telemetry exporter), and, when asked for, a ring of the most recent
//! events, which `llmux serve` replays to a monitor that connects so that it starts with the
//! last few minutes of routing instead of an empty log.
//!
//! Every publisher (requests, the shared-state worker, the response cache's announcements)
//! goes through one [`EventSink`], so no event reaches one consumer and not another. The router
//! knows its subscribers only by these traits: whoever builds it (`startup`) wires them in.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use tokio::sync::broadcast;

use super::{ChatOutcome, RouteError, RouteEvent, RouteEventKind};
use crate::metrics::Usd;
use crate::provider::ChatRequest;

/// How many route events a slow subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 4096;

/// Takes every route event as it is published, besides the live feed: the request log, the
/// telemetry exporter. Added with [`super::RouterOptions::subscribers`].
pub trait Subscriber: Send + Sync {
    /// A request begins, before its first event: what it carries that its events do not (the
    /// messages, the caller's trace context). Most subscribers need none of it.
    fn on_start(&self, _start: &RequestStart<'_>) {}
    /// One event, on the task that publishes it: queue it and return, never wait.
    fn on_event(&self, event: &Arc<RouteEvent>);
    /// A request's outcome (the answer, or why there is none), after its last event.
    fn on_finish(&self, _request_id: u64, _result: &Result<ChatOutcome, RouteError>) {}
    /// Returns once everything taken so far is where it goes (the request log's file): before
    /// reading it back.
    fn sync(&self) {}
    /// The process is about to end: deliver what is left. The future it returns ends within
    /// a bounded time, delivered or not.
    fn close(&self) -> BoxFuture<'static, ()> {
        self.sync();
        Box::pin(std::future::ready(()))
    }
}

/// A request as it begins, for [`Subscriber::on_start`].
#[derive(Debug, Clone, Copy)]
pub struct RequestStart<'a> {
    pub request_id: u64,
    /// The group or alias asked for.
    pub requested: &'a str,
    pub request: &'a ChatRequest,
    pub origin: &'a Origin,
}

/// Where a request comes from, for the subscribers that continue the caller's trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The caller's W3C `traceparent` (a header of a `serve` request), unparsed.
    pub traceparent: Option<String>,
    /// Its companion `tracestate`, unparsed.
    pub tracestate: Option<String>,
}

/// The record of route events that outlives a run (the request log): a subscriber the router
/// also reads at start, for the request number to go on from and the spend budgets replay.
pub trait EventLog: Subscriber {
    /// The highest request id in the record.
    fn last_request_id(&self) -> Option<u64>;
    /// The answers at or after `since_unix_ms` (Unix ms) that were paid for, oldest first.
    /// Called once, on a blocking thread.
    fn spend_since(&self, since_unix_ms: u64) -> std::io::Result<Vec<PastSpend>>;
}

/// One paid answer of an earlier run.
#[derive(Debug, Clone, PartialEq)]
pub struct PastSpend {
    pub deployment: String,
    pub at_unix_ms: u64,
    pub cost: Usd,
}

/// The recent events and how many to keep.
#[derive(Debug)]
struct Recent {
    events: Mutex<VecDeque<Arc<RouteEvent>>>,
    capacity: usize,
}

impl Recent {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<RouteEvent>>> {
        match self.events.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Fans a route event out to every consumer. Cheap to clone.
#[derive(Clone)]
pub(crate) struct EventSink {
    live: broadcast::Sender<RouteEvent>,
    log: Option<Arc<dyn EventLog>>,
    /// Every subscriber, the log included.
    subscribers: Arc<[Arc<dyn Subscriber>]>,
    recent: Option<Arc<Recent>>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("subscribers", &self.subscribers.len())
            .finish_non_exhaustive()
    }
}

impl EventSink {
    /// A sink writing to `log` and `subscribers`, keeping the last `recent` events (none
    /// when 0).
    pub(crate) fn new(
        log: Option<Arc<dyn EventLog>>,
        subscribers: Vec<Arc<dyn Subscriber>>,
        recent: usize,
    ) -> EventSink {
        let (live, _) = broadcast::channel(EVENT_BUFFER);
        let all: Vec<Arc<dyn Subscriber>> = log
            .iter()
            .map(|l| Arc::clone(l) as Arc<dyn Subscriber>)
            .chain(subscribers)
            .collect();
        EventSink {
            live,
            log,
            subscribers: all.into(),
            recent: (recent > 0).then(|| {
                Arc::new(Recent {
                    events: Mutex::new(VecDeque::with_capacity(recent)),
                    capacity: recent,
                })
            }),
        }
    }

    pub(crate) fn log(&self) -> Option<&Arc<dyn EventLog>> {
        self.log.as_ref()
    }

    /// Tells every subscriber that a request begins.
    pub(crate) fn start(&self, start: &RequestStart<'_>) {
        for s in self.subscribers.iter() {
            s.on_start(start);
        }
    }

    /// Tells every subscriber how a request ended.
    pub(crate) fn finish(&self, request_id: u64, result: &Result<ChatOutcome, RouteError>) {
        for s in self.subscribers.iter() {
            s.on_finish(request_id, result);
        }
    }

    /// Returns once every subscriber has what it was given where it goes.
    pub(crate) fn sync(&self) {
        for s in self.subscribers.iter() {
            s.sync();
        }
    }

    /// Every subscriber delivers what is left (the process is about to end).
    pub(crate) async fn close(&self) {
        futures::future::join_all(self.subscribers.iter().map(|s| s.close())).await;
    }

    pub(crate) fn publish(&self, ev: Arc<RouteEvent>) {
        match &self.recent {
            Some(recent) => {
                // The copy for the live feed is made before the lock, so the lock is held for
                // a send and a push only; a subscriber that came meanwhile gets one made under it.
                let copy = (self.live.receiver_count() > 0).then(|| RouteEvent::clone(&ev));
                // Ring and live feed change under one lock, so `subscribe_with_recent` sees
                // each event in exactly one of the two.
                let mut ring = recent.lock();
                match copy {
                    Some(copy) => {
                        let _ = self.live.send(copy);
                    }
                    None => self.send_live(&ev),
                }
                if ring.len() == recent.capacity {
                    ring.pop_front();
                }
                ring.push_back(Arc::clone(&ev));
            }
            None => self.send_live(&ev),
        }
        for s in self.subscribers.iter() {
            s.on_event(&ev);
        }
    }

    /// An event of no request (shared state, the cache's Redis link): request 0, stamped now.
    pub(crate) fn announce(&self, group: &str, deployment: Option<&str>, kind: RouteEventKind) {
        let at_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.publish(Arc::new(RouteEvent {
            request_id: 0,
            group: group.to_string(),
            deployment: deployment.map(str::to_string),
            attempt: 0,
            at_unix_ms,
            elapsed_ms: 0,
            kind,
        }));
    }

    fn send_live(&self, ev: &RouteEvent) {
        // Nobody subscribed (no TUI routing pane, no monitor): skip the clone.
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(ev.clone());
        }
    }

    /// Every event from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<RouteEvent> {
        self.live.subscribe()
    }

    /// The recent events (oldest first) and every event after them, with none missing or
    /// given twice in between.
    pub(crate) fn subscribe_with_recent(
        &self,
    ) -> (Vec<Arc<RouteEvent>>, broadcast::Receiver<RouteEvent>) {
        match &self.recent {
            Some(recent) => {
                let ring = recent.lock();
                (ring.iter().cloned().collect(), self.live.subscribe())
            }
            None => (Vec::new(), self.live.subscribe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::RouteEventKind;

    fn event(request_id: u64) -> Arc<RouteEvent> {
        Arc::new(RouteEvent {
            request_id,
            group: "g".into(),
            deployment: None,
            attempt: 0,
            at_unix_ms: request_id,
            elapsed_ms: 0,
            kind: RouteEventKind::Retry { delay_ms: 0 },
        })
    }

    #[test]
    fn the_ring_keeps_the_newest_and_the_feed_takes_over_where_it_ends() {
        let sink = EventSink::new(None, Vec::new(), 3);
        for id in 1..=5 {
            sink.publish(event(id));
        }
        let (recent, mut rx) = sink.subscribe_with_recent();
        let ids: Vec<u64> = recent.iter().map(|e| e.request_id).collect();
        assert_eq!(ids, [3, 4, 5]);
        sink.publish(event(6));
        assert_eq!(rx.try_recv().map(|e| e.request_id), Ok(6));
        assert!(rx.try_recv().is_err(), "nothing given twice");
    }

    /// Counts what it is given.
    #[derive(Default)]
    struct Counter(Mutex<Vec<u64>>);

    impl Subscriber for Counter {
        fn on_event(&self, event: &Arc<RouteEvent>) {
            self.0.lock().unwrap().push(event.request_id);
        }
    }

    #[test]
    fn every_subscriber_takes_every_event_in_order() {
        let a = Arc::new(Counter::default());
        let b = Arc::new(Counter::default());
        let sink = EventSink::new(None, vec![a.clone(), b.clone()], 0);
        for id in 1..=3 {
            sink.publish(event(id));
        }
        sink.announce("", None, RouteEventKind::Cancelled);
        assert_eq!(*a.0.lock().unwrap(), [1, 2, 3, 0]);
        assert_eq!(*b.0.lock().unwrap(), [1, 2, 3, 0]);
    }

    #[test]
    fn without_a_ring_nothing_is_kept() {
        let sink = EventSink::new(None, Vec::new(), 0);
        sink.publish(event(1));
        let (recent, _) = sink.subscribe_with_recent();
        assert!(recent.is_empty());
    }
}
