//! hyper's HTTP/1.1 client connection, driven inside the request's own task, with a pool of
//! kept-alive connections: the [`Transport::Hyper`](super::Transport) stack.
//!
//! hyper's pooled client (hyper-util's `legacy::Client`) runs every connection as a task of its
//! own and hands each piece of a streamed answer to the request's task over a channel: two
//! wake-ups per piece, which doubled the instructions of a streamed answer through `serve`
//! and broke its throughput target (see docs/performance.md). Here the request's task polls
//! the connection itself ([`hyper::client::conn::http1`]): while it waits for the answer's
//! head and every time it reads the body, which comes out one chunk per burst of what arrived
//! (hyper's frames joined), as the socket delivered it.
//!
//! Connections come from hyper-util's `HttpConnector` (TCP_NODELAY, keep-alive, connect
//! timeout) wrapped by hyper-rustls (for `https://`, HTTP/1.1 by ALPN). A body read to its end
//! puts its connection back in the pool; a body dropped early closes it, which is how a
//! cancelled request stops the upstream. A pooled connection is checked for a close by the
//! peer before reuse (a poll that reads only what already arrived), and a request is sent
//! again on a new connection only when hyper hands it back unwritten: never once it may have
//! reached the upstream.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

// Keys are upstream scheme://host:port strings: foldhash, not SipHash (looked up per request).
use bytes::{Bytes, BytesMut};
use foldhash::HashMap;
use futures::FutureExt;
use futures::future::{Fuse, FusedFuture};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::{Request, Response};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::transport::{MAX_IDLE_PER_HOST, POOL_IDLE_TIMEOUT};

/// Any failure of a connection or an exchange, for `failure` to word.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;
/// The connection's own future: it does the reading and writing when polled.
type Driver = Fuse<Connection<Io, Full<Bytes>>>;

/// Upstreams with idle connections; the pool starts over when it holds this many.
const MAX_HOSTS: usize = 256;
/// The most body bytes joined into one piece: what arrived in a burst comes out together, but
/// an upstream that sends without pause cannot make one piece (or one poll) grow without end.
const MAX_JOINED: usize = 16 * 1024;
/// The room made when a second frame is joined to the first: a burst of 20-odd chunks.
const JOIN_ROOM: usize = 8 * 1024;

/// A connection: the handle that sends on it and the future that drives it.
struct Conn {
    send: SendRequest<Full<Bytes>>,
    driver: Driver,
}

impl Conn {
    /// Polls the connection (reads and writes what it can) unless it already ended.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if !self.driver.is_terminated() {
            // An error here also reaches the exchange waiting on it, which reports it.
            let _ = Pin::new(&mut self.driver).poll(cx);
        }
    }

    /// Waits, driving the connection, until `f` is ready; `None` if the connection ended first.
    async fn until<T>(
        &mut self,
        mut f: impl FnMut(&mut Self, &mut Context<'_>) -> Poll<T>,
    ) -> Option<T> {
        poll_fn(|cx| {
            self.drive(cx);
            match f(self, cx) {
                Poll::Ready(t) => Poll::Ready(Some(t)),
                Poll::Pending if self.driver.is_terminated() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// A kept-alive connection waiting for its next request.
struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

/// The client: a connector and a pool of idle connections per upstream, cheap to clone.
#[derive(Clone)]
pub(super) struct InTask {
    connector: HttpsConnector<HttpConnector>,
    idle: Arc<Mutex<HashMap<String, Vec<Idle>>>>,
}

impl std::fmt::Debug for InTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InTask").finish_non_exhaustive()
    }
}

impl InTask {
    pub(super) fn new(connector: HttpsConnector<HttpConnector>) -> InTask {
        InTask {
            connector,
            idle: Arc::default(),
        }
    }

    /// Sends `request` to the upstream `key` (`scheme://host:port`) and returns once the
    /// answer's head arrived, with its body still to read on the same connection.
    pub(super) async fn send(
        &self,
        key: &str,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<LiveBody>, BoxError> {
        let mut pooled = self.checkout(key);
        loop {
            let reused = pooled.is_some();
            let mut conn = match pooled.take() {
                Some(conn) => conn,
                None => self.connect(&request).await?,
            };
            let answer = {
                let mut exchange = pin!(conn.send.try_send_request(request));
                conn.until(|_, cx| exchange.as_mut().poll(cx)).await
            };
            match answer {
                Some(Ok(response)) => {
                    let pool = (self.clone(), key.to_string());
                    return Ok(response.map(|body| LiveBody {
                        body,
                        conn: Some(conn),
                        pool: Some(pool),
                        failed: None,
                        ended: false,
                    }));
                }
                Some(Err(mut e)) => match e.take_message() {
                    // Handed back unwritten (the kept-alive connection had closed): nothing
                    // reached the upstream, so a new connection may carry it.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(Box::new(e.into_error())),
                },
                None => return Err("the connection closed before the answer".into()),
            }
        }
    }

    /// A new connection to the request's upstream, handshaken.
    /// (Boxed once here: the connection's future is a couple of KiB, moved between the pool
    /// and the answers it carries.)
    async fn connect(&self, request: &Request<Full<Bytes>>) -> Result<Box<Conn>, BoxError> {
        let io = self.connector.clone().call(request.uri().clone()).await?;
        let (send, connection) = http1::Builder::new().handshake(io).await?;
        Ok(Box::new(Conn {
            send,
            driver: connection.fuse(),
        }))
    }

    /// The pool, locked (a panic elsewhere while it was held leaves it usable).
    fn idle(&self) -> MutexGuard<'_, HashMap<String, Vec<Idle>>> {
        match self.idle.lock() {
            Ok(i) => i,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// An idle connection to `key` that is still open and ready, if there is one. Each is
    /// polled once without a waker first: a close by the peer that already arrived ends it.
    fn checkout(&self, key: &str) -> Option<Box<Conn>> {
        let mut idle = self.idle();
        let conns = idle.get_mut(key)?;
        let mut cx = Context::from_waker(Waker::noop());
        while let Some(Idle { mut conn, since }) = conns.pop() {
            if since.elapsed() > POOL_IDLE_TIMEOUT {
                continue;
            }
            conn.drive(&mut cx);
            if !conn.driver.is_terminated()
                && matches!(conn.send.poll_ready(&mut cx), Poll::Ready(Ok(())))
            {
                return Some(conn);
            }
        }
        None
    }

    /// Puts a connection whose answer was read to its end back in the pool.
    fn checkin(&self, key: String, mut conn: Box<Conn>) {
        // Let it take in the end of the answer and become ready for the next request.
        conn.drive(&mut Context::from_waker(Waker::noop()));
        if conn.driver.is_terminated() || conn.send.is_closed() {
            return;
        }
        let mut idle = self.idle();
        if idle.len() >= MAX_HOSTS && !idle.contains_key(&key) {
            idle.clear();
        }
        // Nobody polls idle connections: ones past their time are closed here, so an upstream
        // that stopped being called does not keep sockets the peer already closed.
        let now = Instant::now();
        idle.retain(|_, conns| {
            conns.retain(|c| now.duration_since(c.since) <= POOL_IDLE_TIMEOUT);
            !conns.is_empty()
        });
        let conns = idle.entry(key).or_default();
        if conns.len() < MAX_IDLE_PER_HOST {
            conns.push(Idle { conn, since: now });
        }
    }
}

/// The body of an answer, read by driving its connection; the connection goes back to the
/// pool when the body ended, and is closed if this is dropped before.
pub(super) struct LiveBody {
    body: Incoming,
    conn: Option<Box<Conn>>,
    /// Where the connection goes back to: the client and the upstream's key.
    pool: Option<(InTask, String)>,
    /// An error met after some data, given at the next poll.
    failed: Option<hyper::Error>,
    ended: bool,
}

impl std::fmt::Debug for LiveBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveBody")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl LiveBody {
    /// The declared body length, when the answer has one.
    pub(super) fn content_length(&self) -> Option<u64> {
        self.body.size_hint().exact()
    }

    /// The next piece of the body: the frames that arrived, joined up to [`MAX_JOINED`]
    /// bytes, or the end.
    pub(super) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, hyper::Error>>> {
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let mut joined: Option<Bytes> = None;
        let mut more = BytesMut::new();
        loop {
            let size = if more.is_empty() {
                joined.as_ref().map_or(0, Bytes::len)
            } else {
                more.len()
            };
            if size >= MAX_JOINED {
                break;
            }
            if let Some(conn) = &mut self.conn {
                conn.drive(cx);
            }
            let frame = match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => break,
            };
            match frame {
                Some(Ok(frame)) => {
                    // Trailers and empty frames carry nothing for us.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    match &joined {
                        None => joined = Some(data),
                        Some(first) => {
                            if more.is_empty() {
                                // Room for a burst of a stream's chunks at once (a growth
                                // per doubling cost more than the copies).
                                more.reserve(JOIN_ROOM.max(first.len() + data.len()));
                                more.extend_from_slice(first);
                            }
                            more.extend_from_slice(&data);
                        }
                    }
                }
                Some(Err(e)) => {
                    self.conn = None;
                    self.ended = true;
                    if joined.is_none() {
                        return Poll::Ready(Some(Err(e)));
                    }
                    self.failed = Some(e);
                    break;
                }
                None => {
                    self.ended = true;
                    if let (Some(conn), Some((pool, key))) = (self.conn.take(), self.pool.take()) {
                        pool.checkin(key, conn);
                    }
                    break;
                }
            }
        }
        let chunk = if more.is_empty() {
            joined
        } else {
            Some(more.freeze())
        };
        match chunk {
            Some(chunk) => Poll::Ready(Some(Ok(chunk))),
            None if self.ended => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}
