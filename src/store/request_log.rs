//! The request log: `<data dir>/llmux/requests.jsonl`, one `RouteEvent` per line, appended as
//! it happens. It never holds an API key: events carry deployment ids, classes and messages
//! that providers already scrubbed.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::router::RouteEvent;

/// The file name under the data dir.
pub const REQUEST_LOG_FILE: &str = "requests.jsonl";

/// A handle to the writer thread; cheap to clone. When every handle is dropped the thread
/// flushes and ends.
#[derive(Debug, Clone)]
pub struct RequestLog {
    tx: mpsc::Sender<Msg>,
    path: PathBuf,
}

impl RequestLog {
    /// Opens (creating directories as needed) the log at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<RequestLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        std::thread::Builder::new()
            .name("llmux-request-log".into())
            .spawn(move || write_loop(file, rx))?;
        Ok(RequestLog {
            tx,
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

    /// Queues one event; never blocks.
    pub fn append(&self, event: &RouteEvent) {
        // The writer ends only when every handle is gone, so a send error cannot happen
        // while we hold one; if it did, losing a log line must not fail a request.
        let _ = self.tx.send(Msg::Event(event.clone()));
    }

    /// Returns once everything appended so far is written and flushed (for tests and for
    /// commands that read the log right after).
    pub fn sync(&self) {
        let (ack_tx, ack_rx) = mpsc::channel();
        if self.tx.send(Msg::Sync(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
    }
}

#[derive(Debug)]
enum Msg {
    Event(RouteEvent),
    Sync(mpsc::Sender<()>),
}

fn write_loop(file: File, rx: mpsc::Receiver<Msg>) {
    let mut out = BufWriter::new(file);
    while let Ok(first) = rx.recv() {
        let mut acks = Vec::new();
        for msg in std::iter::once(first).chain(rx.try_iter()) {
            match msg {
                Msg::Event(event) => {
                    if let Ok(line) = serde_json::to_string(&event) {
                        let _ = writeln!(out, "{line}");
                    }
                }
                Msg::Sync(ack) => acks.push(ack),
            }
        }
        let _ = out.flush();
        for ack in acks {
            let _ = ack.send(());
        }
    }
    let _ = out.flush();
}
