//! The body of an answer from [`super::H1Client`]: its framing (content-length, chunked,
//! until-close) decoded from the bytes the connection delivers, handed on as one piece per
//! read. A body read to its end gives its connection back to the pool; one dropped before
//! that reads what is already there without waiting, and closes the connection unless that
//! completed the body.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use tokio::net::TcpStream;

use super::{H1Client, MAX_HEAD_BYTES, READ_CHUNK, poll_read_some};

/// The longest chunk-size line (hex digits and extensions) we accept.
const MAX_CHUNK_LINE: usize = 1024;
/// Reads without waiting a dropped body tries, to find the end of its framing.
const DROP_READS: usize = 2;

/// How the end of a body is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
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
pub(super) enum Chunk {
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
    pub(super) stream: Option<TcpStream>,
    pub(super) buf: BytesMut,
    pub(super) framing: Framing,
    /// Whether the connection may carry another request once this body is read.
    pub(super) reusable: bool,
    pub(super) pool: H1Client,
    pub(super) key: String,
}

/// The position of the first CRLF in `buf`.
fn find_crlf(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &buf[from..]) {
        let at = from + i;
        if at > 0 && buf[at - 1] == b'\r' {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}

/// A chunk-size line's size: hex digits, then maybe `;` and extensions.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|b| *b == b';').next()?.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |size, &b| {
        let digit = char::from(b).to_digit(16)?;
        size.checked_mul(16)?.checked_add(u64::from(digit))
    })
}

impl Body {
    /// Takes the body bytes already in the buffer (decoding chunked framing) into `out`;
    /// `Ok(())` either way, the framing says whether the body ended.
    pub(super) fn decode(&mut self, out: &mut BytesMut) -> Result<(), String> {
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
                    let size = chunk_size(&self.buf[..end])
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
