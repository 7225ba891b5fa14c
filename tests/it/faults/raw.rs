//! A fake upstream at the TCP level, for the faults an HTTP server library will not produce:
//! a connection reset before any header, bodies of arbitrary bytes (invalid UTF-8) written in
//! separate pieces, and huge bodies streamed from one small buffer so the test itself never
//! holds them.
//!
//! Each accepted connection takes the next [`Raw`] script (the last one repeats); the request
//! is read whole first, then the script runs and the connection closes, so a body without a
//! `content-length` ends at EOF. Over `https://` ([`RawUpstream::start_on`]) the same bytes
//! go inside TLS (HTTP/1.1 by ALPN), and "closes" is TLS's close_notify, then the FIN.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use crate::support::https::{self, Alpn};
use crate::upstream::Net;

/// The size of each write of a huge body (and of the one buffer it is written from).
const BIG_PIECE: usize = 64 * 1024;
/// The pause between the pieces of a [`Raw::Pieces`] body, so they leave as separate writes.
const PIECE_GAP: Duration = Duration::from_millis(5);
/// The most of a request we read before answering.
const MAX_REQUEST: usize = 1024 * 1024;

/// What one connection gets.
#[derive(Debug, Clone)]
pub enum Raw {
    /// The request is read, then the socket is closed with SO_LINGER 0: a TCP reset, and not
    /// a byte of HTTP comes back.
    ResetBeforeHeaders,
    /// The request is read, then the connection is closed in order (a FIN, after TLS's
    /// close_notify): not a byte of HTTP comes back.
    CloseAfterRequest,
    /// The first request is answered with this JSON (`content-length`, the connection kept
    /// alive), then the next request on the same connection is read and the connection
    /// closed without an answer, as an upstream closing a kept-alive connection would.
    AnswerThenCloseAfterNext(&'static str),
    /// A status, headers, then each body piece as its own write; the body ends at EOF.
    Pieces {
        status: u16,
        content_type: &'static str,
        pieces: Vec<Vec<u8>>,
    },
    /// A 200 whose body is `prefix`, then `fill` bytes of `x`, then `suffix`, written
    /// [`BIG_PIECE`] at a time from one buffer; `content_length` says whether the size is
    /// declared up front (else the body ends at EOF).
    Big {
        content_type: &'static str,
        prefix: Vec<u8>,
        fill: usize,
        suffix: Vec<u8>,
        content_length: bool,
    },
}

impl Raw {
    /// A 200 `text/event-stream` made of these byte pieces.
    pub fn sse(pieces: Vec<Vec<u8>>) -> Raw {
        Raw::Pieces {
            status: 200,
            content_type: "text/event-stream",
            pieces,
        }
    }

    /// A 200 JSON body in one piece.
    pub fn json(body: &str) -> Raw {
        Raw::Pieces {
            status: 200,
            content_type: "application/json",
            pieces: vec![body.as_bytes().to_vec()],
        }
    }
}

/// What the upstream counts.
#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    requests: AtomicUsize,
    written: AtomicU64,
}

/// A running raw upstream; it stops when dropped.
pub struct RawUpstream {
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub url: String,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl RawUpstream {
    /// Starts serving `scripts` on `net`'s scheme.
    pub async fn start_on(net: Net, scripts: Vec<Raw>) -> RawUpstream {
        assert!(!scripts.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "{}://{}",
            net.scheme(),
            listener.local_addr().expect("addr")
        );
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let n = c.accepted.fetch_add(1, Ordering::SeqCst);
                let script = scripts[n.min(scripts.len() - 1)].clone();
                let c = c.clone();
                tokio::spawn(async move {
                    let _ = socket.set_nodelay(true);
                    if !net.tls {
                        let _ = serve(socket, script, &c).await;
                    } else if let Some(tls) = https::accept(socket, Alpn::Http1).await {
                        let _ = serve(tls, script, &c).await;
                    }
                });
            }
        });
        RawUpstream { url, counts, task }
    }

    /// Connections accepted so far (one per request, except for
    /// [`Raw::AnswerThenCloseAfterNext`]: every other answer closes its connection).
    pub fn calls(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    /// Requests read whole so far, over all connections.
    pub fn requests(&self) -> usize {
        self.counts.requests.load(Ordering::SeqCst)
    }

    /// Body bytes the socket accepted from us, over all connections.
    pub fn body_bytes_written(&self) -> u64 {
        self.counts.written.load(Ordering::SeqCst)
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connection the scripts run on: plain TCP or TLS over it.
trait Socket: AsyncRead + AsyncWrite + Unpin + Send {
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Reads one request whole (its head and `content-length` body); `false` when the client
/// closed the connection first.
async fn read_request(socket: &mut impl Socket) -> std::io::Result<bool> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length || buf.len() > MAX_REQUEST {
                return Ok(true);
            }
        }
    }
}

fn head(status: u16, content_type: &str, length: Option<u64>) -> Vec<u8> {
    let length = length
        .map(|n| format!("content-length: {n}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {status} Scripted\r\ncontent-type: {content_type}\r\n{length}connection: close\r\n\r\n"
    )
    .into_bytes()
}

async fn serve(mut socket: impl Socket, script: Raw, counts: &Counts) -> std::io::Result<()> {
    let written = &counts.written;
    if !read_request(&mut socket).await? {
        return Ok(());
    }
    counts.requests.fetch_add(1, Ordering::SeqCst);
    match script {
        Raw::ResetBeforeHeaders => {
            socket.tcp().set_zero_linger()?;
            drop(socket);
        }
        Raw::CloseAfterRequest => socket.shutdown().await?,
        Raw::AnswerThenCloseAfterNext(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(body.as_bytes()).await?;
            if read_request(&mut socket).await? {
                counts.requests.fetch_add(1, Ordering::SeqCst);
            }
            socket.shutdown().await?;
        }
        Raw::Pieces {
            status,
            content_type,
            pieces,
        } => {
            socket.write_all(&head(status, content_type, None)).await?;
            for (i, piece) in pieces.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(PIECE_GAP).await;
                }
                socket.write_all(piece).await?;
                written.fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
            socket.shutdown().await?;
        }
        Raw::Big {
            content_type,
            prefix,
            fill,
            suffix,
            content_length,
        } => {
            let total = (prefix.len() + fill + suffix.len()) as u64;
            socket
                .write_all(&head(200, content_type, content_length.then_some(total)))
                .await?;
            socket.write_all(&prefix).await?;
            let piece = vec![b'x'; BIG_PIECE];
            let mut left = fill;
            while left > 0 {
                let n = left.min(BIG_PIECE);
                socket.write_all(&piece[..n]).await?;
                written.fetch_add(n as u64, Ordering::SeqCst);
                left -= n;
            }
            socket.write_all(&suffix).await?;
            socket.shutdown().await?;
        }
    }
    Ok(())
}
