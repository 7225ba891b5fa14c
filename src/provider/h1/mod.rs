//! A small HTTP/1.1 client for plain `http://` upstreams (local inference servers, sidecars,
//! the fake upstreams of the tests and benchmarks), run entirely inside the future that asks:
//! no connection task, no hand-over between tasks, one write per request and one read per
//! burst of the answer.
//!
//! A request enters as a parsed URL, headers and a JSON body ([`H1Client::post`]); it goes out
//! on a kept-alive connection from this client's pool (checked for a close by the peer first)
//! or a new one (TCP_NODELAY, TCP keep-alive, connect timeout). What leaves is a [`Response`]
//! once the head arrived; its [`Body`] is a stream of byte chunks, each holding everything
//! that arrived in one read (content-length, chunked or until-close framing). A body read to
//! its end puts the connection back in the pool; one dropped early closes it (so dropping a
//! stream cancels the upstream call). Failures are [`ProviderError`]s worded like the reqwest
//! path's (`connection refused (http://host:port/path)`, `connection reset mid-stream: …`).
//! A reused connection the peer closed before answering is retried once on a new one. The
//! body's framing lives in `body`.

// Keys are upstream host:port pairs: foldhash, not SipHash (looked up per request).
use foldhash::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::ProviderError;
use super::http::{CONNECT_TIMEOUT, POOL_IDLE_TIMEOUT, TCP_KEEPALIVE, io_failure_words};

mod body;
#[cfg(test)]
mod tests;

pub use body::Body;
use body::{Chunk, Framing};

/// The largest response head we read before calling the answer malformed.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Header lines parsed in a response head.
const MAX_HEADERS: usize = 100;
/// Idle connections kept per upstream (address and port).
const MAX_IDLE_PER_HOST: usize = 64;
/// Upstreams with idle connections; the pool starts over when it holds this many.
const MAX_HOSTS: usize = 256;
/// Bytes read at once: a whole streamed burst fits.
const READ_CHUNK: usize = 16 * 1024;
/// Idle time after which a pooled connection is checked for a close by the peer before reuse.
const PROBE_AFTER_IDLE: Duration = Duration::from_secs(1);
/// Status codes below this are informational (100 Continue…) and skipped.
const FIRST_FINAL_STATUS: u16 = 200;

/// Where a request goes, taken apart once from its URL.
#[derive(Debug, Clone)]
pub struct Target {
    host: String,
    port: u16,
    /// `host:port` for the Host header and the pool key.
    authority: String,
    /// Path and query, what the request line asks for.
    path: String,
}

impl Target {
    /// The target of a plain-HTTP URL; `None` for anything this client leaves to reqwest
    /// (https, credentials in the URL, no host).
    pub fn of(url: &reqwest::Url) -> Option<Target> {
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host_str()?.to_string();
        let port = url.port_or_known_default()?;
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        Some(Target {
            authority: format!("{host}:{port}"),
            host,
            port,
            path,
        })
    }

    /// `http://host:port/path` for error messages: never the query, which can carry secrets.
    fn describe(&self) -> String {
        let path = self.path.split('?').next().unwrap_or_default();
        format!("http://{}{path}", self.authority)
    }
}

/// A kept-alive connection waiting for its next request.
#[derive(Debug)]
struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// The client: a pool of idle connections per upstream, cheap to clone.
#[derive(Debug, Clone)]
pub struct H1Client {
    idle: Arc<Mutex<HashMap<String, Vec<Idle>>>>,
    /// Idle time after which a pooled connection is checked before reuse.
    probe_after_idle: Duration,
}

impl Default for H1Client {
    fn default() -> Self {
        H1Client {
            idle: Arc::default(),
            probe_after_idle: PROBE_AFTER_IDLE,
        }
    }
}

/// An answer whose head arrived; the body follows through [`Response::into_body`].
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    /// The headers of an answer that is not a success (a success's are only read for its
    /// framing, and left empty here).
    pub headers: HeaderMap,
    body: Body,
}

impl Response {
    /// The declared body length, when the answer has one.
    pub fn content_length(&self) -> Option<u64> {
        match self.body.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        }
    }

    pub fn into_body(self) -> Body {
        self.body
    }
}

impl H1Client {
    /// POSTs `body` (JSON) to `target` with `headers`, and returns once the answer's head
    /// arrived. A reused connection that turns out closed is replaced once.
    pub async fn post(
        &self,
        target: &Target,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response, ProviderError> {
        let request = encode_request(target, headers, body);
        if let Some(stream) = self.checkout(&target.authority) {
            match self.exchange(stream, target, &request).await {
                Ok(response) => return Ok(response),
                // The peer closed the kept-alive connection before answering: nothing was
                // processed, so a new connection may carry the request.
                Err(Failure::StaleConnection) => {}
                Err(Failure::Error(e)) => return Err(e),
            }
        }
        let stream = connect(target).await?;
        match self.exchange(stream, target, &request).await {
            Ok(response) => Ok(response),
            Err(Failure::StaleConnection) => Err(ProviderError::network(format!(
                "connection closed by the upstream ({})",
                target.describe()
            ))),
            Err(Failure::Error(e)) => Err(e),
        }
    }

    /// The pool, locked (a panic elsewhere while it was held leaves it usable).
    fn idle(&self) -> MutexGuard<'_, HashMap<String, Vec<Idle>>> {
        match self.idle.lock() {
            Ok(i) => i,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// An idle connection to `key` that is still open, if there is one.
    fn checkout(&self, key: &str) -> Option<TcpStream> {
        let mut idle = self.idle();
        let conns = idle.get_mut(key)?;
        while let Some(conn) = conns.pop() {
            let idle_for = conn.since.elapsed();
            if idle_for > POOL_IDLE_TIMEOUT {
                continue;
            }
            // Back from a request moments ago: no upstream closes a kept-alive connection that
            // soon, and if one did, the write or read fails and `post` retries on a new one.
            // Skipping the probe saves a syscall per request under load.
            if idle_for < self.probe_after_idle {
                return Some(conn.stream);
            }
            // Still open and quiet: a read would block. EOF or stray bytes: drop it. Costs no
            // syscall unless the reactor saw the socket readable (as it has after an answer
            // read to its end without a read that would block).
            let mut probe = [0u8; 1];
            if matches!(conn.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            {
                return Some(conn.stream);
            }
        }
        None
    }

    fn checkin(&self, key: &str, stream: TcpStream) {
        let mut idle = self.idle();
        if idle.len() >= MAX_HOSTS && !idle.contains_key(key) {
            idle.clear();
        }
        // Nobody polls idle connections: ones past their time are closed here, so an upstream
        // that stopped being called does not keep sockets the peer already closed.
        let now = Instant::now();
        idle.retain(|_, conns| {
            conns.retain(|c| now.duration_since(c.since) <= POOL_IDLE_TIMEOUT);
            !conns.is_empty()
        });
        let conn = Idle { stream, since: now };
        match idle.get_mut(key) {
            Some(conns) if conns.len() < MAX_IDLE_PER_HOST => conns.push(conn),
            Some(_) => {}
            None => {
                idle.insert(key.to_string(), vec![conn]);
            }
        }
    }

    /// Writes the request and reads the answer's head.
    async fn exchange(
        &self,
        mut stream: TcpStream,
        target: &Target,
        request: &[u8],
    ) -> Result<Response, Failure> {
        if let Err(e) = stream.write_all(request).await {
            return Err(match e.kind() {
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                    Failure::StaleConnection
                }
                _ => Failure::Error(io_error(&e, target)),
            });
        }
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            let read = read_some(&mut stream, &mut buf).await;
            match read {
                Ok(0) if buf.is_empty() => return Err(Failure::StaleConnection),
                Ok(0) => {
                    return Err(Failure::Error(ProviderError::network(format!(
                        "connection closed by the upstream before the answer's headers ({})",
                        target.describe()
                    ))));
                }
                Ok(_) => {}
                Err(e) if buf.is_empty() && e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(Failure::StaleConnection);
                }
                Err(e) => return Err(Failure::Error(io_error(&e, target))),
            }
            match parse_head(&mut buf, target).map_err(Failure::Error)? {
                Some(head) => {
                    return Ok(Response {
                        status: head.status,
                        headers: head.headers,
                        body: Body {
                            stream: Some(stream),
                            buf,
                            framing: head.framing,
                            reusable: head.reusable,
                            pool: self.clone(),
                            key: target.authority.clone(),
                        },
                    });
                }
                None if buf.len() > MAX_HEAD_BYTES => {
                    return Err(Failure::Error(ProviderError::protocol(format!(
                        "the upstream's response headers are over {MAX_HEAD_BYTES} bytes ({})",
                        target.describe()
                    ))));
                }
                None => {}
            }
        }
    }
}

/// Why an exchange failed: on a reused connection, a stale one may be retried.
enum Failure {
    StaleConnection,
    Error(ProviderError),
}

/// A parsed response head.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    reusable: bool,
}

/// The request line, headers and body in one buffer, so they leave in one write.
fn encode_request(target: &Target, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(target.authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !headers.contains_key(CONTENT_TYPE) {
        out.extend_from_slice(b"content-type: application/json\r\n");
    }
    if !headers.contains_key(ACCEPT) {
        out.extend_from_slice(b"accept: */*\r\n");
    }
    for (name, value) in headers {
        if name == HOST || name == CONTENT_LENGTH {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// The head of the answer at the front of `buf`, taken out of it; `None` while incomplete.
/// Informational (1xx) answers are skipped.
fn parse_head(buf: &mut BytesMut, target: &Target) -> Result<Option<Head>, ProviderError> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        let len = match parsed.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => {
                return Err(ProviderError::protocol(format!(
                    "malformed response headers from the upstream ({}): {e}",
                    target.describe()
                )));
            }
        };
        let code = parsed.code.unwrap_or_default();
        let status = StatusCode::from_u16(code).map_err(|_| {
            ProviderError::protocol(format!(
                "the upstream answered with status {code} ({})",
                target.describe()
            ))
        })?;
        if code < FIRST_FINAL_STATUS {
            buf.advance(len);
            continue;
        }
        // Only a failure's headers are read (Retry-After and the like): a success's are looked
        // at for framing alone, without a map of copied names and values.
        let keep = !status.is_success();
        let mut headers = HeaderMap::with_capacity(if keep { parsed.headers.len() } else { 0 });
        let mut chunked = false;
        let mut length = None;
        let mut reusable = parsed.version == Some(1);
        for h in parsed.headers.iter() {
            let value = h.value.trim_ascii();
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .split(|b| *b == b',')
                    .any(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if h.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok());
            } else if h.name.eq_ignore_ascii_case("connection")
                && value.eq_ignore_ascii_case(b"close")
            {
                reusable = false;
            }
            if keep
                && let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(h.name.as_bytes()),
                    HeaderValue::from_bytes(h.value),
                )
            {
                headers.append(name, value);
            }
        }
        let framing = if chunked {
            Framing::Chunked(Chunk::Size)
        } else if let Some(n) = length {
            Framing::Length(n)
        } else if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            Framing::Length(0)
        } else {
            reusable = false;
            Framing::UntilClose
        };
        buf.advance(len);
        return Ok(Some(Head {
            status,
            headers,
            framing,
            reusable,
        }));
    }
}

/// Connects to the target's first address that answers, within [`CONNECT_TIMEOUT`].
async fn connect(target: &Target) -> Result<TcpStream, ProviderError> {
    let attempt = async {
        let addrs: Vec<SocketAddr> = match target.host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, target.port)],
            Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|_| {
                    ProviderError::network(format!("DNS lookup failed ({})", target.describe()))
                })?
                .collect(),
        };
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => io_error(&e, target),
            None => ProviderError::network(format!("DNS lookup failed ({})", target.describe())),
        })
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| {
            ProviderError::timeout(format!("connection timed out ({})", target.describe()))
        })??;
    // Tokens are small writes: without TCP_NODELAY each waits for the peer's delayed ACK.
    let _ = stream.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    Ok(stream)
}

/// A transport failure in the words of the reqwest path.
fn io_error(e: &io::Error, target: &Target) -> ProviderError {
    let what = io_failure_words(e.kind())
        .map_or_else(|| format!("connection failed: {e}"), str::to_string);
    let message = format!("{what} ({})", target.describe());
    if e.kind() == io::ErrorKind::TimedOut {
        ProviderError::timeout(message)
    } else {
        ProviderError::network(message)
    }
}

/// Reads what is available (at least one byte, or 0 at EOF) into `buf`.
async fn read_some(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    futures::future::poll_fn(|cx| poll_read_some(stream, buf, cx)).await
}

fn poll_read_some(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match stream.try_read_buf(buf) {
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stream.poll_read_ready(cx)?.is_pending() {
                    return Poll::Pending;
                }
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}
