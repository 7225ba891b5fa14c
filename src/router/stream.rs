//! [`ChatStream`]: one request's events, driven by whoever reads them.
//!
//! The request's walk (`request::run`) is a future owned by its `ChatStream`, not a task of its
//! own: reading the stream polls it in the reader's task, and what it says ([`ChatEvent`]s)
//! goes into an [`Outbox`] the stream hands back in order. So a token travels from the
//! provider's stream to the reader without a channel, a wake-up or a second task (a task per
//! request and a wake-up per event cost `llmux serve` more CPU than the routing itself).
//! `Router::chat` polls the future once before returning, so a request picks its deployment and
//! is sent at once, and concurrent requests see each other in flight. After that the request
//! advances while its stream is read: an unread answer waits in the upstream connection rather
//! than piling up in memory. Dropping the stream drops the future, which cancels the request
//! (its guards record the cancellation) and closes its HTTP call.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::Stream;

use super::event::{ChatEvent, ChatOutcome, RouteError, RouteErrorKind};

/// Events the request may queue before it pauses for its reader to catch up.
const OUTBOX_LIMIT: usize = 1024;
/// Room made up front: a burst of a stream's chunks (20-odd events) fits without the queue
/// growing four times on the way (each growth a reallocation and a copy).
const OUTBOX_ROOM: usize = 32;

/// Where a request's future puts its events for its [`ChatStream`].
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: Mutex<VecDeque<ChatEvent>>,
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox {
            queue: Mutex::new(VecDeque::with_capacity(OUTBOX_ROOM)),
        }
    }
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, VecDeque<ChatEvent>> {
        // Only the one task that owns the stream ever takes this lock.
        match self.queue.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Queues an event at once; the future returned pauses until the reader has caught up
    /// when it is [`OUTBOX_LIMIT`] events behind, and is ready at once otherwise. (Not an
    /// `async fn`: that would move the event into a future of its own first, per token.)
    pub(crate) fn send(&self, event: ChatEvent) -> YieldToReader {
        let full = {
            let mut q = self.lock();
            q.push_back(event);
            q.len() >= OUTBOX_LIMIT
        };
        YieldToReader { yielded: !full }
    }

    fn pop(&self) -> Option<ChatEvent> {
        self.lock().pop_front()
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Pending once (unless made `yielded`). No waker is needed: the stream polls the request
/// again as soon as the reader has taken everything queued, and only the stream ever polls it.
#[must_use = "the outbox may be full: await it"]
pub(crate) struct YieldToReader {
    yielded: bool,
}

impl Future for YieldToReader {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            Poll::Ready(())
        } else {
            self.yielded = true;
            Poll::Pending
        }
    }
}

type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The events of one request. Dropping it cancels the request and its HTTP call.
pub struct ChatStream {
    pub request_id: u64,
    outbox: Arc<Outbox>,
    /// The request; `None` once it has finished.
    driver: Option<Driver>,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("request_id", &self.request_id)
            .field("finished", &self.driver.is_none())
            .finish_non_exhaustive()
    }
}

impl ChatStream {
    /// A stream over `driver`, which sends its events to `outbox`; polled once right away so
    /// the request starts before the caller first reads.
    pub(crate) fn start(
        request_id: u64,
        outbox: Arc<Outbox>,
        driver: impl Future<Output = ()> + Send + 'static,
    ) -> ChatStream {
        let mut stream = ChatStream {
            request_id,
            outbox,
            driver: Some(Box::pin(driver)),
        };
        // Whatever the request waits on is polled again, with the reader's waker, on the
        // first read; this poll only gets it going.
        stream.advance();
        stream
    }

    /// True once the request has said all it will (its events may still be unread).
    pub fn is_done(&self) -> bool {
        self.driver.is_none()
    }

    /// Lets the request run until it waits, keeping what it says for later reads. True when
    /// that queued an event or finished the request.
    ///
    /// For a reader about to write: after a yield, this takes in what the upstream already
    /// sent, so one write can carry it all.
    pub fn advance(&mut self) -> bool {
        let Some(driver) = self.driver.as_mut() else {
            return false;
        };
        let before = self.outbox.len();
        // The reader polls again (with its own waker) before it waits; this poll needs none.
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        if driver.as_mut().poll(&mut cx).is_ready() {
            self.driver = None;
            return true;
        }
        self.outbox.len() > before
    }

    /// The next event; `None` after `Finished`.
    pub async fn next_event(&mut self) -> Option<ChatEvent> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Reads to the end, returning the outcome (text deltas are dropped).
    pub async fn finish(mut self) -> Result<ChatOutcome, RouteError> {
        while let Some(ev) = self.next_event().await {
            if let ChatEvent::Finished(result) = ev {
                return *result;
            }
        }
        Err(RouteError {
            request_id: self.request_id,
            kind: RouteErrorKind::AllFailed,
            message: "the request task ended without an outcome".to_string(),
            attempts: Vec::new(),
            retry_in: None,
            partial_text: String::new(),
        })
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        loop {
            if let Some(ev) = self.outbox.pop() {
                return Poll::Ready(Some(ev));
            }
            let Some(driver) = self.driver.as_mut() else {
                return Poll::Ready(None);
            };
            match driver.as_mut().poll(cx) {
                Poll::Ready(()) => self.driver = None,
                // Pending with events queued: hand them out (the request may be pausing for
                // its reader); with none, the request's own wake-ups bring us back.
                Poll::Pending => {
                    if let Some(ev) = self.outbox.pop() {
                        return Poll::Ready(Some(ev));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Stream for ChatStream {
    type Item = ChatEvent;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        self.get_mut().poll_event(cx)
    }
}
