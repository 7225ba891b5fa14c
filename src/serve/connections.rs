//! The open client connections, capped below the file descriptor limit so that idle sockets
//! cannot take the server offline.
//!
//! Every connection has a slot from accept to close. A slot is *waiting* while its connection
//! has not sent a complete request head — just accepted, or idle between keep-alive requests —
//! and *busy* from the moment hyper hands a request to the service until that request's
//! response body is dropped (sent or abandoned). Only waiting connections are ever closed here:
//!
//! - at the cap: every accepted connection that fills the last place closes the connection
//!   that has waited longest, so the next client finds room; with every connection busy the
//!   accept loop waits for one to end (new clients queue in the listen backlog);
//! - under pressure (three quarters of the cap open): a connection that has waited longer than
//!   the short head deadline is closed (the normal deadline, hyper's `header_read_timeout`,
//!   still applies to every connection).
//!
//! A client that sent its request is therefore always served, and a flood of silent or
//! trickling sockets costs the oldest of them their place, not the server its descriptors.
//! Before a connection picked for closing is dropped, hyper is given one more look at its
//! socket: a head that just arrived makes it busy, and then it stays.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Descriptors kept for everything but client connections: the listener, the runtime's epoll
/// and eventfd, stdio, the request log, Redis, DNS.
const RESERVED_FDS: u64 = 32;
/// The cap when the descriptor limit cannot be read or is unlimited.
const FALLBACK_CAP: usize = 4096;
/// The smallest cap derived from the descriptor limit.
const MIN_CAP: usize = 8;

/// The default cap: half of the descriptors left after [`RESERVED_FDS`], since a client
/// connection with a request in flight holds a second descriptor upstream.
pub fn default_max_connections() -> usize {
    match fd_limit() {
        Some(limit) => cap_for(limit),
        None => FALLBACK_CAP,
    }
}

fn cap_for(fd_limit: u64) -> usize {
    let half = fd_limit.saturating_sub(RESERVED_FDS) / 2;
    usize::try_from(half).unwrap_or(usize::MAX).max(MIN_CAP)
}

/// This process's soft limit on open descriptors (`None` when unlimited or unknown).
#[cfg(unix)]
fn fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn fd_limit() -> Option<u64> {
    None
}

/// One connection's state.
#[derive(Debug)]
struct Slot {
    /// Requests handed to the service whose response has not been dropped yet.
    busy: u32,
    /// Since when it waits for a request head (meaningful while `busy` is 0).
    since: Instant,
    /// Picked for closing; its task has not acted on it yet.
    closing: bool,
    close: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    slots: HashMap<u64, Slot>,
    /// The waiting connections not already picked for closing, oldest first.
    waiting: BTreeSet<(Instant, u64)>,
    /// Slots picked for closing whose task has not acted yet.
    closing: usize,
}

impl Table {
    /// Picks the connection that has waited longest (other than `spare`) for closing.
    fn close_oldest(&mut self, spare: Option<u64>) -> bool {
        let pick = self
            .waiting
            .iter()
            .find(|(_, id)| Some(*id) != spare)
            .copied();
        let Some(key) = pick else {
            return false;
        };
        self.close(key);
        true
    }

    fn close(&mut self, key: (Instant, u64)) {
        self.waiting.remove(&key);
        if let Some(slot) = self.slots.get_mut(&key.1) {
            slot.closing = true;
            self.closing += 1;
            slot.close.notify_one();
        }
    }
}

/// The open connections of one server.
#[derive(Debug)]
pub(crate) struct Connections {
    cap: usize,
    /// How long a connection may wait for a request head while the server is under pressure.
    pressure_deadline: Duration,
    table: Mutex<Table>,
    /// Wakes the accept loop when a connection ended, or at the cap may be closed.
    ended: Notify,
    /// Connections closed here (at the cap or under pressure) before sending a request head.
    closed_waiting: AtomicU64,
}

/// A connection's place, from accept to close; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Place {
    conns: Arc<Connections>,
    pub(crate) id: u64,
    /// Fires when this connection is picked for closing.
    pub(crate) close: Arc<Notify>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.conns.ended(self.id);
    }
}

/// Marks its request's connection busy until dropped: hyper drops a response body once it was
/// sent, or when the connection goes.
#[derive(Debug)]
pub(crate) struct Busy {
    conns: Arc<Connections>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conns.finished(self.id);
    }
}

impl Connections {
    pub(crate) fn new(cap: usize, pressure_deadline: Duration) -> Connections {
        Connections {
            cap: cap.max(1),
            pressure_deadline,
            table: Mutex::new(Table::default()),
            ended: Notify::new(),
            closed_waiting: AtomicU64::new(0),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    pub(crate) fn open(&self) -> usize {
        self.table().slots.len()
    }

    pub(crate) fn closed_waiting(&self) -> u64 {
        self.closed_waiting.load(Ordering::Relaxed)
    }

    /// How often [`Self::sweep`] should run.
    pub(crate) fn sweep_every(&self) -> Duration {
        (self.pressure_deadline / 2).max(Duration::from_millis(10))
    }

    /// Resolves once there is room for one more connection, picking waiting connections for
    /// closing as needed; with every connection busy, once one ends.
    pub(crate) async fn room(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            {
                let mut t = self.table();
                if t.slots.len() < self.cap {
                    return;
                }
                if t.slots.len() - t.closing >= self.cap {
                    t.close_oldest(None);
                }
            }
            ended.await;
        }
    }

    /// Gives an accepted connection its place. When it fills the last one, the connection
    /// that has waited longest is picked for closing, so the next client finds room.
    pub(crate) fn admit(self: &Arc<Self>) -> Place {
        let close = Arc::new(Notify::new());
        let now = Instant::now();
        let mut t = self.table();
        let id = t.next_id;
        t.next_id += 1;
        t.slots.insert(
            id,
            Slot {
                busy: 0,
                since: now,
                closing: false,
                close: close.clone(),
            },
        );
        t.waiting.insert((now, id));
        if t.slots.len() - t.closing >= self.cap {
            t.close_oldest(Some(id));
        }
        Place {
            conns: self.clone(),
            id,
            close,
        }
    }

    /// Connection `id` sent a complete request head: it is busy until the guard is dropped.
    pub(crate) fn started(self: &Arc<Self>, id: u64) -> Busy {
        let mut t = self.table();
        if let Some(slot) = t.slots.get_mut(&id) {
            slot.busy += 1;
            let key = (slot.since, id);
            t.waiting.remove(&key);
        }
        Busy {
            conns: self.clone(),
            id,
        }
    }

    fn finished(&self, id: u64) {
        let now = Instant::now();
        let mut t = self.table();
        let Some(slot) = t.slots.get_mut(&id) else {
            return;
        };
        slot.busy = slot.busy.saturating_sub(1);
        if slot.busy == 0 && !slot.closing {
            slot.since = now;
            t.waiting.insert((now, id));
            if t.slots.len() >= self.cap {
                // The accept loop may be waiting for a connection it can close.
                self.ended.notify_waiters();
            }
        }
    }

    /// The task of a connection picked for closing asks whether to close it: yes while it
    /// still waits for a head (counted), no when a request came in meanwhile (then it stays,
    /// and may be picked again once it waits).
    pub(crate) fn confirm_close(&self, id: u64) -> bool {
        let mut t = self.table();
        let Some(slot) = t.slots.get_mut(&id) else {
            return true;
        };
        if !slot.closing {
            return false;
        }
        if slot.busy == 0 {
            self.closed_waiting.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        slot.closing = false;
        t.closing -= 1;
        // The accept loop waits for this one to end: it has to pick another.
        self.ended.notify_waiters();
        false
    }

    fn ended(&self, id: u64) {
        {
            let mut t = self.table();
            if let Some(slot) = t.slots.remove(&id) {
                t.waiting.remove(&(slot.since, id));
                if slot.closing {
                    t.closing -= 1;
                }
            }
        }
        self.ended.notify_waiters();
    }

    /// Under pressure (three quarters of the cap open), picks for closing every connection
    /// that has waited for a request head longer than the short deadline.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let mut t = self.table();
        if t.slots.len() * 4 < self.cap * 3 {
            return;
        }
        while let Some(&key) = t.waiting.first() {
            if now.duration_since(key.0) < self.pressure_deadline {
                break;
            }
            t.close(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;

    /// Whether `place` was picked for closing.
    fn picked(place: &Place) -> bool {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let notified = place.close.notified();
        tokio::pin!(notified);
        notified.as_mut().poll(&mut cx).is_ready()
    }

    #[test]
    fn the_cap_is_half_the_descriptors_left_and_never_tiny() {
        assert_eq!(cap_for(1024), 496);
        assert_eq!(cap_for(128), 48);
        assert_eq!(cap_for(20), MIN_CAP);
    }

    #[tokio::test(start_paused = true)]
    async fn filling_the_last_place_closes_the_longest_waiting_and_never_a_busy_one() {
        let conns = Arc::new(Connections::new(3, Duration::from_secs(3)));
        let a = conns.admit();
        tokio::time::advance(Duration::from_secs(1)).await;
        let b = conns.admit();
        let busy = conns.started(b.id);
        tokio::time::advance(Duration::from_secs(1)).await;
        let c = conns.admit();
        assert!(picked(&a), "a waited longest");
        assert!(!picked(&b) && !picked(&c));
        assert!(conns.confirm_close(a.id));
        drop(a);
        assert_eq!(conns.closed_waiting(), 1);

        // b's answer is sent a second later: it waits again, since after c.
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(busy);
        let d = conns.admit();
        assert!(picked(&c), "c has waited since before b's answer ended");
        // A head came in before c's task acted: c stays.
        let c_busy = conns.started(c.id);
        assert!(!conns.confirm_close(c.id));
        assert_eq!(conns.open(), 3);
        drop((b, c, d, c_busy));
        assert_eq!(conns.open(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn under_pressure_a_connection_waiting_past_the_short_deadline_is_closed() {
        let conns = Arc::new(Connections::new(8, Duration::from_secs(3)));
        let places: Vec<Place> = (0..5).map(|_| conns.admit()).collect();
        tokio::time::advance(Duration::from_secs(4)).await;
        conns.sweep();
        assert!(places.iter().all(|p| !picked(p)), "5 of 8: no pressure");
        let more: Vec<Place> = (0..1).map(|_| conns.admit()).collect();
        conns.sweep();
        assert!(places.iter().all(picked), "6 of 8: the five past 3 s go");
        assert!(!picked(&more[0]), "the new one has not waited 3 s");
    }
}
