//! The request log: `<data dir>/llmux/requests.jsonl`, one `RouteEvent` per line, appended as
//! it happens. It never holds an API key: events carry deployment ids, classes and messages
//! that providers already scrubbed. The file is private and the first write of a run starts a
//! line of its own, even after a torn one (see [`super::file`]).
//!
//! Appending only pushes onto a queue under a mutex: no thread is woken per event (a wake-up
//! per event cost a `llmux serve` request more CPU than the router itself). The first event
//! after a write wakes the writer thread, which gathers for [`FLUSH_INTERVAL`], then
//! serializes and writes the batch; idle, it sleeps without waking. `sync` writes at once, and
//! the last handle dropped writes what is left.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::router::{EventLog, PastSpend, RouteEvent, Subscriber};

/// The file name under the data dir.
pub const REQUEST_LOG_FILE: &str = "requests.jsonl";

/// How long an event may wait in memory before it is written (what a crash can lose). Short:
/// a batch is serialized on the core that serves requests, and at 100 ms a batch of a busy
/// server took a millisecond, which every request waiting behind it saw as latency.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// Room for one line (a typical event is 150–300 bytes).
const LINE_CAPACITY: usize = 1024;

mod line;
mod spend;
mod tail;

pub use tail::last_request_id;

#[derive(Debug, Default)]
struct Queue {
    events: Vec<Arc<RouteEvent>>,
    /// Bumped by `sync`; the writer sets `written` to it once everything before is on disk.
    sync_requested: u64,
    written: u64,
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer (sync, close) and the callers of `sync` (written).
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        match self.queue.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Closes the queue when the last handle goes, so the writer drains it and ends.
#[derive(Debug)]
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.changed.notify_all();
    }
}

/// The request log could not be opened: its directory made, its file opened for appending or
/// its writer thread started.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the request log {}: {source}", path.display())]
pub struct RequestLogError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A handle to the writer thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestLog {
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
    path: PathBuf,
}

impl RequestLog {
    /// Opens (creating directories as needed) the log at `path` for appending.
    pub fn open(path: &Path) -> Result<RequestLog, RequestLogError> {
        let failed = |source| RequestLogError {
            path: path.to_path_buf(),
            source,
        };
        let file = super::file::open_append(path).map_err(failed)?;
        let shared = Arc::new(Shared::default());
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("llmux-request-log".into())
            .spawn(move || write_loop(file, &writer))
            .map_err(failed)?;
        Ok(RequestLog {
            _closer: Arc::new(Closer(shared.clone())),
            shared,
            path: path.to_path_buf(),
        })
    }

    /// The default location, `<data dir>/llmux/requests.jsonl`.
    pub fn default_path() -> Option<PathBuf> {
        crate::config::data_dir().map(|d| d.join(REQUEST_LOG_FILE))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one event; never blocks on the disk. Only the first event after a write wakes
    /// the writer, which then gathers for [`FLUSH_INTERVAL`] before writing the batch.
    pub fn append(&self, event: impl Into<Arc<RouteEvent>>) {
        let event = event.into();
        let mut q = self.shared.lock();
        q.events.push(event);
        if q.events.len() == 1 {
            self.shared.changed.notify_all();
        }
    }

    /// Returns once everything appended so far is written and flushed (before exit, and for
    /// commands that read the log right after).
    pub fn sync(&self) {
        let mut q = self.shared.lock();
        q.sync_requested += 1;
        let ticket = q.sync_requested;
        self.shared.changed.notify_all();
        while q.written < ticket && !q.closed {
            q = match self.shared.changed.wait(q) {
                Ok(q) => q,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }
}

fn write_loop(file: File, shared: &Shared) {
    let mut out = BufWriter::new(file);
    let mut line = Vec::with_capacity(LINE_CAPACITY);
    let pending_sync = |q: &Queue| q.sync_requested > q.written;
    loop {
        let (events, ticket, closed) = {
            let mut q = shared.lock();
            // Idle: sleep until there is something to do (no periodic wake-ups).
            while q.events.is_empty() && !pending_sync(&q) && !q.closed {
                q = match shared.changed.wait(q) {
                    Ok(q) => q,
                    Err(poisoned) => poisoned.into_inner(),
                };
            }
            // Events came: gather more for a while, unless a sync or the close cuts it short.
            if !pending_sync(&q) && !q.closed {
                q = match shared
                    .changed
                    .wait_timeout_while(q, FLUSH_INTERVAL, |q| !pending_sync(q) && !q.closed)
                {
                    Ok((q, _)) => q,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
            (std::mem::take(&mut q.events), q.sync_requested, q.closed)
        };
        for event in &events {
            line.clear();
            line::write(&mut line, event);
            // A failed write leaves a torn line at worst, which readers skip.
            let _ = out.write_all(&line);
        }
        let _ = out.flush();
        {
            let mut q = shared.lock();
            if q.written < ticket {
                q.written = ticket;
                shared.changed.notify_all();
            }
            if closed && q.events.is_empty() {
                return;
            }
        }
    }
}

/// The log takes every route event the router publishes (wired in `startup`).
impl Subscriber for RequestLog {
    fn on_event(&self, event: &Arc<RouteEvent>) {
        self.append(Arc::clone(event));
    }

    fn sync(&self) {
        RequestLog::sync(self);
    }
}

/// What the router reads back at start: where request ids go on from, and the spend of the
/// budgets' last period (after what this process wrote so far is on disk).
impl EventLog for RequestLog {
    fn last_request_id(&self) -> Option<u64> {
        last_request_id(&self.path)
    }

    fn spend_since(&self, since_unix_ms: u64) -> std::io::Result<Vec<PastSpend>> {
        RequestLog::sync(self);
        spend::paid_since(&self.path, since_unix_ms)
    }
}
