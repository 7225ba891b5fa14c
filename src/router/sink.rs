//! Where a route event goes besides the request's own caller: the live subscribers (the TUI's
//! routing pane, `llmux serve`'s event feed), the request log, and, when asked for, a ring of
//! the most recent events, which `llmux serve` replays to a monitor that connects so that it
//! starts with the last few minutes of routing instead of an empty log.
//!
//! Every publisher (requests, the shared-state worker, the response cache's announcements)
//! goes through one [`EventSink`], so no event reaches one consumer and not another.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::{RouteEvent, RouteEventKind};
use crate::store::RequestLog;

/// How many route events a slow subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 4096;

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
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    live: broadcast::Sender<RouteEvent>,
    log: Option<RequestLog>,
    recent: Option<Arc<Recent>>,
}

impl EventSink {
    /// A sink writing to `log` and keeping the last `recent` events (none when 0).
    pub(crate) fn new(log: Option<RequestLog>, recent: usize) -> EventSink {
        let (live, _) = broadcast::channel(EVENT_BUFFER);
        EventSink {
            live,
            log,
            recent: (recent > 0).then(|| {
                Arc::new(Recent {
                    events: Mutex::new(VecDeque::with_capacity(recent)),
                    capacity: recent,
                })
            }),
        }
    }

    pub(crate) fn log(&self) -> Option<&RequestLog> {
        self.log.as_ref()
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
        if let Some(log) = &self.log {
            log.append(ev);
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
        let sink = EventSink::new(None, 3);
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

    #[test]
    fn without_a_ring_nothing_is_kept() {
        let sink = EventSink::new(None, 0);
        sink.publish(event(1));
        let (recent, _) = sink.subscribe_with_recent();
        assert!(recent.is_empty());
    }
}
