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
//! A reused connection the peer closed before answering is retried once on a new one.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::ProviderError;
use super::http::{CONNECT_TIMEOUT, POOL_IDLE_TIMEOUT, TCP_KEEPALIVE};

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
/// The longest chunk-size line (hex digits and extensions) we accept.
const MAX_CHUNK_LINE: usize = 1024;
/// Reads without waiting a dropped body tries, to find the end of its framing.
const DROP_READS: usize = 2;
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
#[derive(Debug, Clone, Default)]
pub struct H1Client {
    idle: Arc<Mutex<HashMap<String, Vec<Idle>>>>,
}

/// An answer whose head arrived; the body follows through [`Response::into_body`].
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
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

/// How the end of a body is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes remain.
    Length(u64),
    /// Chunked transfer coding, in the given state.
    Chunked(Chunk),
    /// The body runs until the peer closes (the connection is not reused).
    UntilClose,
    /// The whole body was read.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data remain.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
}

/// A response body: a stream of the bytes that arrived, one chunk per read.
#[derive(Debug)]
pub struct Body {
    stream: Option<TcpStream>,
    buf: BytesMut,
    framing: Framing,
    /// Whether the connection may carry another request once this body is read.
    reusable: bool,
    pool: H1Client,
    key: String,
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

    /// An idle connection to `key` that is still open, if there is one.
    fn checkout(&self, key: &str) -> Option<TcpStream> {
        let mut idle = match self.idle.lock() {
            Ok(i) => i,
            Err(poisoned) => poisoned.into_inner(),
        };
        let conns = idle.get_mut(key)?;
        while let Some(conn) = conns.pop() {
            if conn.since.elapsed() > POOL_IDLE_TIMEOUT {
                continue;
            }
            // Still open and quiet: a read would block. EOF or stray bytes: drop it. Costs no
            // syscall unless the reactor saw the socket readable.
            let mut probe = [0u8; 1];
            if matches!(conn.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            {
                return Some(conn.stream);
            }
        }
        None
    }

    fn checkin(&self, key: &str, stream: TcpStream) {
        let mut idle = match self.idle.lock() {
            Ok(i) => i,
            Err(poisoned) => poisoned.into_inner(),
        };
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
        let mut headers = HeaderMap::with_capacity(parsed.headers.len());
        let mut chunked = false;
        let mut length = None;
        let mut reusable = parsed.version == Some(1);
        for h in parsed.headers.iter() {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(h.name.as_bytes()),
                HeaderValue::from_bytes(h.value),
            ) else {
                continue;
            };
            if name == reqwest::header::TRANSFER_ENCODING {
                chunked = value
                    .to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"));
            } else if name == CONTENT_LENGTH {
                length = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
            } else if name == reqwest::header::CONNECTION
                && value
                    .to_str()
                    .is_ok_and(|v| v.eq_ignore_ascii_case("close"))
            {
                reusable = false;
            }
            headers.append(name, value);
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
    use io::ErrorKind as K;
    let what = match e.kind() {
        K::ConnectionRefused => "connection refused".to_string(),
        K::ConnectionReset => "connection reset".to_string(),
        K::ConnectionAborted => "connection aborted".to_string(),
        K::TimedOut => "connection timed out".to_string(),
        K::UnexpectedEof | K::BrokenPipe => "connection closed by the upstream".to_string(),
        _ => format!("connection failed: {e}"),
    };
    let message = format!("{what} ({})", target.describe());
    if e.kind() == K::TimedOut {
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

/// The position of the first CRLF in `buf`.
fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

impl Body {
    /// Takes the body bytes already in the buffer (decoding chunked framing) into `out`;
    /// `Ok(())` either way, the framing says whether the body ended.
    fn decode(&mut self, out: &mut BytesMut) -> Result<(), String> {
        loop {
            match self.framing {
                Framing::Done => return Ok(()),
                Framing::UntilClose => {
                    self.take(self.buf.len(), out);
                    return Ok(());
                }
                Framing::Length(n) => {
                    let take = (self.buf.len() as u64).min(n) as usize;
                    self.take(take, out);
                    self.framing = if n == take as u64 {
                        Framing::Done
                    } else {
                        Framing::Length(n - take as u64)
                    };
                    return Ok(());
                }
                Framing::Chunked(Chunk::Data(n)) => {
                    let take = (self.buf.len() as u64).min(n) as usize;
                    self.take(take, out);
                    if n > take as u64 {
                        self.framing = Framing::Chunked(Chunk::Data(n - take as u64));
                        return Ok(());
                    }
                    self.framing = Framing::Chunked(Chunk::DataEnd);
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if self.buf.len() < 2 {
                        return Ok(());
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err("a chunk of the answer did not end where its size said".into());
                    }
                    self.buf.advance(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Size) => {
                    let Some(end) = find_crlf(&self.buf) else {
                        if self.buf.len() > MAX_CHUNK_LINE {
                            return Err("a chunk-size line of the answer is too long".into());
                        }
                        return Ok(());
                    };
                    let line = &self.buf[..end];
                    let digits = line.split(|b| *b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(digits)
                        .ok()
                        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                        .ok_or_else(|| "a malformed chunk size in the answer".to_string())?;
                    self.buf.advance(end + 2);
                    self.framing = Framing::Chunked(if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    });
                }
                Framing::Chunked(Chunk::Trailers) => {
                    let Some(end) = find_crlf(&self.buf) else {
                        if self.buf.len() > MAX_HEAD_BYTES {
                            return Err("the answer's trailers are too long".into());
                        }
                        return Ok(());
                    };
                    self.buf.advance(end + 2);
                    if end == 0 {
                        self.framing = Framing::Done;
                    }
                }
            }
        }
    }

    /// Moves `n` body bytes from the buffer to `out`: without a copy when `out` is empty
    /// (the usual case: a burst is one piece of one chunk, or of a sized body).
    fn take(&mut self, n: usize, out: &mut BytesMut) {
        if out.is_empty() {
            *out = self.buf.split_to(n);
        } else {
            out.extend_from_slice(&self.buf[..n]);
            self.buf.advance(n);
        }
    }

    /// Puts the connection back in the pool once the body is complete (and nothing follows
    /// it); otherwise the connection is closed when dropped.
    fn release(&mut self) {
        if let Some(stream) = self.stream.take()
            && self.framing == Framing::Done
            && self.reusable
            && self.buf.is_empty()
        {
            self.pool.checkin(&self.key, stream);
        }
    }
}

impl Stream for Body {
    type Item = Result<Bytes, String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut out = BytesMut::new();
        loop {
            if let Err(e) = this.decode(&mut out) {
                this.stream = None;
                this.framing = Framing::Done;
                return Poll::Ready(Some(Err(e)));
            }
            if this.framing == Framing::Done {
                this.release();
                return Poll::Ready((!out.is_empty()).then(|| Ok(out.freeze())));
            }
            if !out.is_empty() {
                // Everything that arrived in one read leaves as one chunk; never wait for more.
                return Poll::Ready(Some(Ok(out.freeze())));
            }
            let Some(stream) = this.stream.as_mut() else {
                return Poll::Ready(None);
            };
            match poll_read_some(stream, &mut this.buf, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    this.stream = None;
                    if this.framing == Framing::UntilClose {
                        this.framing = Framing::Done;
                        return Poll::Ready(None);
                    }
                    this.framing = Framing::Done;
                    return Poll::Ready(Some(Err(
                        "the upstream closed the connection before the answer ended".into(),
                    )));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.stream = None;
                    this.framing = Framing::Done;
                    return Poll::Ready(Some(Err(e.to_string())));
                }
            }
        }
    }
}

impl Drop for Body {
    /// A body dropped right after its last piece arrived may still have the end of its framing
    /// waiting in the socket (a chunked stream's last chunk): read what is already there,
    /// without waiting, so the connection can be reused.
    fn drop(&mut self) {
        if self.stream.is_none() || self.framing == Framing::UntilClose {
            return;
        }
        let mut sink = BytesMut::new();
        for attempt in 0..=DROP_READS {
            if self.decode(&mut sink).is_err() {
                return;
            }
            if self.framing == Framing::Done {
                break;
            }
            if attempt == DROP_READS {
                return;
            }
            let Some(stream) = self.stream.as_ref() else {
                return;
            };
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            match stream.try_read_buf(&mut self.buf) {
                Ok(n) if n > 0 => {}
                _ => return,
            }
        }
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(framing: Framing) -> Body {
        Body {
            stream: None,
            buf: BytesMut::new(),
            framing,
            reusable: false,
            pool: H1Client::default(),
            key: String::new(),
        }
    }

    /// Feeds `wire` to a body in pieces of `step` bytes and returns what it decoded.
    fn decode_in_pieces(framing: Framing, wire: &[u8], step: usize) -> (Vec<u8>, Framing) {
        let mut b = body(framing);
        let mut got = Vec::new();
        for piece in wire.chunks(step) {
            b.buf.extend_from_slice(piece);
            let mut out = BytesMut::new();
            b.decode(&mut out).unwrap();
            got.extend_from_slice(&out);
        }
        (got, b.framing)
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let wire = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in 1..=wire.len() {
            let (got, framing) = decode_in_pieces(Framing::Chunked(Chunk::Size), wire, step);
            assert_eq!(got, b"hello, world", "step {step}");
            assert_eq!(framing, Framing::Done, "step {step}");
        }
    }

    #[test]
    fn sized_bodies_stop_at_their_length() {
        let (got, framing) = decode_in_pieces(Framing::Length(5), b"hello", 2);
        assert_eq!(
            (got.as_slice(), framing),
            (b"hello".as_slice(), Framing::Done)
        );
        let (got, framing) = decode_in_pieces(Framing::Length(9), b"hello", 5);
        assert_eq!(
            (got.as_slice(), framing),
            (b"hello".as_slice(), Framing::Length(4))
        );
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for wire in [&b"zz\r\nhello\r\n"[..], b"2\r\nhello\r\n"] {
            let mut b = body(Framing::Chunked(Chunk::Size));
            b.buf.extend_from_slice(wire);
            assert!(b.decode(&mut BytesMut::new()).is_err(), "{wire:?}");
        }
    }

    #[test]
    fn heads_give_status_headers_and_framing() {
        let target =
            Target::of(&reqwest::Url::parse("http://127.0.0.1:9/v1/x?k=secret").unwrap()).unwrap();
        assert_eq!(target.describe(), "http://127.0.0.1:9/v1/x");
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many\r\nretry-after: 3\r\ncontent-length: 2\r\n\r\n{}"[..],
        );
        let head = parse_head(&mut buf, &target).unwrap().unwrap();
        assert_eq!(head.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(head.headers["retry-after"], "3");
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.reusable);
        assert_eq!(&buf[..], b"{}");
        let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-le"[..]);
        assert!(parse_head(&mut partial, &target).unwrap().is_none());
        let mut close = BytesMut::from(&b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"[..]);
        let head = parse_head(&mut close, &target).unwrap().unwrap();
        assert_eq!((head.framing, head.reusable), (Framing::UntilClose, false));
    }

    #[test]
    fn only_plain_http_without_credentials_takes_this_path() {
        let of = |u: &str| Target::of(&reqwest::Url::parse(u).unwrap());
        assert!(of("https://api.example.com/v1").is_none());
        assert!(of("http://user:pw@host/v1").is_none());
        let t = of("http://localhost/v1/chat").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("localhost:80", "/v1/chat")
        );
    }

    /// An upstream that answers one request per connection and then closes it, counting
    /// connections: a pooled connection it closed must not fail the next request.
    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_replaced() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..2 {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                while !request.ends_with(b"{}") {
                    let mut piece = [0u8; 1024];
                    let n = socket.read(&mut piece).await.unwrap();
                    assert!(n > 0, "the request ended early");
                    request.extend_from_slice(&piece[..n]);
                }
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .unwrap();
                // Keep-alive was promised, but the connection closes: the pool must notice.
            }
        });
        let client = H1Client::default();
        let url = reqwest::Url::parse(&format!("http://{addr}/v1/chat")).unwrap();
        let target = Target::of(&url).unwrap();
        for _ in 0..2 {
            let response = client
                .post(&target, &HeaderMap::new(), b"{}")
                .await
                .unwrap();
            assert_eq!(response.status, StatusCode::OK);
            let mut body = response.into_body();
            let mut got = Vec::new();
            while let Some(piece) = futures::StreamExt::next(&mut body).await {
                got.extend_from_slice(&piece.unwrap());
            }
            assert_eq!(got, b"ok");
        }
        server.await.unwrap();
    }
}
