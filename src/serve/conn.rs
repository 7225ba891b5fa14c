//! Accepting connections and running HTTP/1.1 on them, with the limits axum's own `serve`
//! cannot set: a deadline for a request's headers (so a client sending a header byte a
//! second, or holding an idle keep-alive connection open, is cut off) and a graceful stop.
//!
//! Sockets enter from the listener (TCP_NODELAY set on each, so a streamed token is never
//! held back by Nagle) while [`Connections`] has room for them (it closes the connections
//! that have waited longest for a request head to make some); each connection runs in a task
//! of its own over the axum app, marked busy from a request's head to the end of its answer
//! ([`Tracked`]). When the
//! stop signal fires the listener is dropped, every connection is told to finish its current
//! answer and close, and [`serve`] resolves once all of them did.
//!
//! HTTP/1.1 only: the API clients llmux serves speak it, and HTTP/2's prior-knowledge
//! preface would be read before any header deadline applies.
//!
//! Every request goes to [`routes::serve`](super::routes), the one route table (with the key
//! check), its body wrapped so that a chunk size over the body cap fails it at once
//! (`framing`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Request;
use axum::response::Response;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::connections::{Busy, Connections};
use super::framing::{Announced, Watched};
use super::{Shared, routes};

/// How long to pause accepting after an error that is not one connection's (out of fds):
/// connections already open get a chance to finish and free theirs.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves the routes on `listener` until `stop` resolves, then finishes gracefully.
pub(super) async fn serve<F>(
    listener: TcpListener,
    state: Shared,
    header_read_timeout: Duration,
    stop: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    // A timer always due sooner than a header deadline. Each answered request arms the next
    // one's header deadline; when that is the earliest timer, tokio's timer wheel wakes its
    // own driver through the eventfd to reschedule (a syscall and an extra event per request).
    // With this one pending, it never is; it costs a wake-up every half deadline.
    let mut anchor = tokio::time::interval(header_read_timeout / 2);
    anchor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let conns: Arc<Connections> = state.connections.clone();
    let mut sweep = tokio::time::interval(conns.sweep_every());
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let tcp = tokio::select! {
            _ = anchor.tick() => continue,
            _ = sweep.tick() => {
                conns.sweep();
                continue;
            }
            accepted = async {
                conns.room().await;
                listener.accept().await
            } => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) if per_connection(&e) => continue,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Without TCP_NODELAY the first streamed frame waits ~40 ms for a delayed ACK.
        let _ = tcp.set_nodelay(true);
        let place = conns.admit();
        let (tcp, announced) = Watched::new(tcp, state.max_body_bytes);
        let service = Dispatch {
            state: state.clone(),
            conn: place.id,
            announced,
        };
        let conn = builder
            .serve_connection(TokioIo::new(tcp), service)
            .into_owned();
        let conn = graceful.watch(conn);
        let conns = conns.clone();
        tokio::spawn(async move {
            // Boxed, so that it can be dropped (its socket closed) before its place is freed.
            let mut conn = Box::pin(conn);
            loop {
                tokio::select! {
                    // A client that vanishes or times out ends only its own connection.
                    _ = conn.as_mut() => break,
                    () = place.close.notified() => {
                        // A head may be in the socket already: hyper reads it (and the
                        // connection turns busy) before the verdict.
                        if futures::poll!(conn.as_mut()).is_ready() || conns.confirm_close(place.id) {
                            break;
                        }
                    }
                }
            }
            // Dropping the connection closes the socket; dropping the place frees it.
            drop(conn);
            drop(place);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Accept errors that concern only the connection being accepted.
fn per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

/// A connection's service: every request to the route table, its answer tracked.
#[derive(Clone)]
struct Dispatch {
    state: Shared,
    /// The connection's place in [`Connections`].
    conn: u64,
    /// What the connection's framing watch says about its request bodies.
    announced: Arc<Announced>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Dispatch {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        // The head is in: the connection is busy until the answer is sent or dropped.
        let _busy = self.state.connections.started(self.conn);
        let request = request.map(|body| Body::new(self.announced.body(body)));
        let answer = routes::serve(self.state.clone(), request);
        Box::pin(async move { Ok(answer.await.map(|body| Tracked { body, _busy })) })
    }
}

/// An answer's body, holding its connection busy until hyper drops it (sent, or the
/// connection gone).
pub(super) struct Tracked {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
