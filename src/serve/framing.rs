//! What hyper reads but does not tell: the chunk sizes of a chunked request body. A client
//! that announces a chunk over the body cap (`4000000000\r\n`) and then sends nothing would
//! otherwise hold its in-flight slot until the body deadline; with this, its body read fails
//! at once and it gets 413 (and hyper, left with an unread body, closes the connection).
//!
//! Bytes enter through [`Watched`], a reader wrapped around the socket under hyper: it follows
//! the request framing in what hyper reads (heads to their empty line, bodies by Content-Length
//! or by chunks), numbering requests as hyper does, and adds up the chunk sizes each request
//! announces. When they pass the cap, the request's number goes into the connection's
//! [`Announced`] and its body's reader is woken. The body reaches the handlers as a
//! [`CappedBody`], which fails with [`ChunkOverCap`] once its request is marked. Anything the
//! watcher cannot follow (a head it cannot parse, an overflowing size) stops the watch for
//! that connection: hyper refuses those requests itself, and a request not watched only
//! waits for the body deadline, as before.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::Bytes;
use futures::task::AtomicWaker;
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest head followed across reads: above hyper's own limit (its read buffer, ~400 KiB),
/// so hyper refuses a longer one before this watch gives up on it.
const MAX_HEAD_BYTES: usize = 512 * 1024;

/// What a connection's watcher tells its request bodies.
#[derive(Debug, Default)]
pub(crate) struct Announced {
    /// Requests handed to the service so far (the number of the latest).
    served: AtomicU64,
    /// The number of the request whose chunks announced more than the cap (0: none).
    over: AtomicU64,
    /// The reader of the current request's body.
    reader: AtomicWaker,
}

impl Announced {
    /// Numbers the request hyper just handed to the service and wraps its body.
    pub(crate) fn body(self: &Arc<Self>, body: Incoming) -> CappedBody {
        let request = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        CappedBody {
            body,
            announced: self.clone(),
            request,
            failed: false,
        }
    }

    fn mark(&self, request: u64) {
        self.over.store(request, Ordering::Release);
        self.reader.wake();
    }

    fn is_over(&self, request: u64) -> bool {
        self.over.load(Ordering::Acquire) == request
    }
}

/// A request body whose chunk sizes announced more than the body cap.
#[derive(Debug, thiserror::Error)]
#[error("the request body's chunk sizes announce more than the body cap")]
pub(crate) struct ChunkOverCap;

/// A request's body as the handlers read it: hyper's, failing with [`ChunkOverCap`] as soon as
/// the watcher marks the request.
pub(crate) struct CappedBody {
    body: Incoming,
    announced: Arc<Announced>,
    request: u64,
    failed: bool,
}

impl hyper::body::Body for CappedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        // Registered before the look, so a mark made in between still wakes this task.
        self.announced.reader.register(cx.waker());
        if self.announced.is_over(self.request) {
            self.failed = true;
            return Poll::Ready(Some(Err(Box::new(ChunkOverCap))));
        }
        Pin::new(&mut self.body)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as Self::Error)
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Where the watcher is in the bytes of a connection.
#[derive(Debug)]
enum At {
    /// Reading a request head; what arrived of it so far when it spans reads.
    Head(Vec<u8>),
    /// In a body of a known length: the bytes left.
    Fixed(u64),
    /// In a chunk-size line's hex digits: the size so far.
    Size(u64),
    /// In the rest of a chunk-size line (extensions, CR): the chunk's size.
    SizeLine(u64),
    /// In a chunk's data: the bytes left.
    Data(u64),
    /// In the line end after a chunk's data.
    DataEnd,
    /// In the trailers after the last chunk; true at the start of a line (a line end there
    /// ends the body).
    Trailers(bool),
    /// Not followed any further on this connection.
    Lost,
}

/// The watch over one connection's incoming bytes.
#[derive(Debug)]
struct Watch {
    at: At,
    /// The body cap.
    cap: u64,
    /// Heads read so far (the number of the request being read).
    heads: u64,
    /// The chunk sizes the current request announced, added up.
    announced: u64,
    announced_to: Arc<Announced>,
}

impl Watch {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (at, used) = match std::mem::replace(&mut self.at, At::Lost) {
                At::Head(partial) => self.head(partial, bytes),
                At::Fixed(left) => {
                    let used = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    let left = left - used as u64;
                    (if left == 0 { head() } else { At::Fixed(left) }, used)
                }
                At::Size(size) => self.size(size, bytes),
                At::SizeLine(size) => match bytes.iter().position(|&b| b == b'\n') {
                    None => (At::SizeLine(size), bytes.len()),
                    Some(i) if size == 0 => (At::Trailers(true), i + 1),
                    Some(i) => (At::Data(size), i + 1),
                },
                At::Data(left) => {
                    let used = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    let left = left - used as u64;
                    (
                        if left == 0 {
                            At::DataEnd
                        } else {
                            At::Data(left)
                        },
                        used,
                    )
                }
                At::DataEnd => match bytes.iter().position(|&b| b == b'\n') {
                    None => (At::DataEnd, bytes.len()),
                    Some(i) => (At::Size(0), i + 1),
                },
                At::Trailers(line_start) => trailers(line_start, bytes),
                At::Lost => return,
            };
            self.at = at;
            bytes = &bytes[used..];
        }
    }

    /// Reads a head, whole in `bytes` or completed by them; returns the bytes of `bytes` used.
    fn head(&mut self, mut partial: Vec<u8>, bytes: &[u8]) -> (At, usize) {
        let before = partial.len();
        let text = if before == 0 {
            bytes
        } else {
            if before + bytes.len() > MAX_HEAD_BYTES {
                return (At::Lost, bytes.len());
            }
            partial.extend_from_slice(bytes);
            &partial[..]
        };
        // The empty line is not looked for again in what was already looked at.
        let Some(len) = head_end(text, before.saturating_sub(2)) else {
            return match before {
                0 if bytes.len() <= MAX_HEAD_BYTES => (At::Head(bytes.to_vec()), bytes.len()),
                0 => (At::Lost, bytes.len()),
                _ => (At::Head(partial), bytes.len()),
            };
        };
        self.heads += 1;
        self.announced = 0;
        (body_framing(&text[..len]), len - before)
    }

    /// Reads a chunk size's digits; marks the request once its chunks announce more than the
    /// cap.
    fn size(&mut self, mut size: u64, bytes: &[u8]) -> (At, usize) {
        for (i, &b) in bytes.iter().enumerate() {
            let Some(digit) = char::from(b).to_digit(16) else {
                self.announced = self.announced.saturating_add(size);
                return (At::SizeLine(size), i);
            };
            let Some(more) = size
                .checked_mul(16)
                .and_then(|s| s.checked_add(digit.into()))
            else {
                // hyper refuses an overflowing size itself.
                return (At::Lost, bytes.len());
            };
            if self.announced.saturating_add(size) <= self.cap
                && self.announced.saturating_add(more) > self.cap
            {
                self.announced_to.mark(self.heads);
            }
            size = more;
        }
        (At::Size(size), bytes.len())
    }
}

/// The state at the start of the next head.
fn head() -> At {
    At::Head(Vec::new())
}

/// The length of the head `text` starts with (the empty lines hyper skips before a request
/// line included), once the empty line that ends it arrived; line ends looked for from `from`.
fn head_end(text: &[u8], from: usize) -> Option<usize> {
    let start = text.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let from = from.max(start);
    memchr::memchr_iter(b'\n', &text[from..])
        .map(|i| from + i + 1)
        .find_map(|next| match text.get(next..) {
            Some([b'\n', ..]) => Some(next + 1),
            Some([b'\r', b'\n', ..]) => Some(next + 2),
            _ => None,
        })
}

/// How the body after the head `text` is framed, as hyper reads it: chunked when the last
/// Transfer-Encoding ends in `chunked` (Content-Length is then ignored), else by
/// Content-Length, else empty. What hyper refuses (Transfer-Encoding on HTTP/1.0, another
/// last coding, an unreadable or ambiguous length) is not followed.
fn body_framing(text: &[u8]) -> At {
    let mut start = 0;
    let mut lines = memchr::memchr_iter(b'\n', text)
        .map(|end| {
            let line = &text[start..end];
            start = end + 1;
            line.strip_suffix(b"\r").unwrap_or(line)
        })
        .skip_while(|l| l.is_empty());
    let Some(request_line) = lines.next() else {
        return At::Lost;
    };
    let http11 = request_line.ends_with(b" HTTP/1.1");
    if !http11 && !request_line.ends_with(b" HTTP/1.0") {
        // Not a request hyper reads: it answers 400 and closes.
        return At::Lost;
    }
    let mut chunked = None;
    let mut length: Option<u64> = None;
    for line in lines {
        if let Some(value) = header_value(line, b"transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if let Some(value) = header_value(line, b"content-length") {
            let Some(n) = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
            else {
                return At::Lost;
            };
            if length.is_some_and(|l| l != n) {
                return At::Lost;
            }
            length = Some(n);
        }
    }
    match (chunked, length) {
        (Some(true), _) if http11 => At::Size(0),
        (Some(_), _) => At::Lost,
        (None, Some(n)) if n > 0 => At::Fixed(n),
        (None, _) => head(),
    }
}

/// The value of header `name` (lowercase) when `line` is that header.
fn header_value<'l>(line: &'l [u8], name: &[u8]) -> Option<&'l [u8]> {
    // Most lines are told apart by their first letter.
    if line.first()?.to_ascii_lowercase() != name[0] {
        return None;
    }
    let (line_name, rest) = line.split_at_checked(name.len())?;
    let value = rest.strip_prefix(b":")?;
    line_name
        .eq_ignore_ascii_case(name)
        .then_some(value.trim_ascii())
}

/// Reads trailer lines up to the empty one that ends the body.
fn trailers(mut line_start: bool, bytes: &[u8]) -> (At, usize) {
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\n' if line_start => return (head(), i + 1),
            b'\n' => line_start = true,
            b'\r' => {}
            _ => line_start = false,
        }
    }
    (At::Trailers(line_start), bytes.len())
}

/// A socket under hyper, its incoming bytes watched (see the module's doc).
pub(crate) struct Watched<T> {
    io: T,
    watch: Watch,
}

impl<T> Watched<T> {
    /// Watches `io` for requests whose chunks announce more than `cap` bytes.
    pub(crate) fn new(io: T, cap: usize) -> (Watched<T>, Arc<Announced>) {
        let announced = Arc::new(Announced::default());
        let watch = Watch {
            at: head(),
            cap: cap as u64,
            heads: 0,
            announced: 0,
            announced_to: announced.clone(),
        };
        (Watched { io, watch }, announced)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.watch.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watch with cap `cap`, fed `pieces` one read at a time; the request marked, if any.
    fn marked(cap: u64, pieces: &[&[u8]]) -> Option<u64> {
        let announced = Arc::new(Announced::default());
        let mut watch = Watch {
            at: head(),
            cap,
            heads: 0,
            announced: 0,
            announced_to: announced.clone(),
        };
        for p in pieces {
            watch.feed(p);
        }
        let over = announced.over.load(Ordering::Relaxed);
        (over > 0).then_some(over)
    }

    const CHUNKED: &[u8] =
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";

    #[test]
    fn a_chunk_size_over_the_cap_marks_its_request_as_soon_as_its_digits_pass_it() {
        assert_eq!(marked(1000, &[CHUNKED, b"40000000\r\n"]), Some(1));
        // Digit by digit, across reads: marked at the digit that passes the cap.
        assert_eq!(marked(1024, &[CHUNKED, b"4", b"00"]), None);
        assert_eq!(marked(1024, &[CHUNKED, b"4", b"00", b"1"]), Some(1));
        // In the same read as the head, with an extension.
        let whole = [CHUNKED, b"FFFF;ext=1\r\n".as_slice()].concat();
        assert_eq!(marked(1000, &[&whole]), Some(1));
        // Chunks that add up past the cap.
        let two = [CHUNKED, b"200\r\n", &[b'x'; 0x200], b"\r\n300\r\n"].concat();
        assert_eq!(marked(1000, &[&two]), Some(1));
        // Within the cap: nothing.
        let fits = [CHUNKED, b"3e8\r\n", &[b'x'; 1000], b"\r\n0\r\n\r\n"].concat();
        assert_eq!(marked(1000, &[&fits]), None);
    }

    #[test]
    fn requests_are_numbered_across_bodies_of_every_framing() {
        let small = [CHUNKED, b"5\r\nhello\r\n0\r\nx-trailer: 1\r\n\r\n"].concat();
        let fixed = b"POST /a HTTP/1.1\r\ncontent-length: 4\r\n\r\n1234".as_slice();
        let get = b"\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\n".as_slice();
        let big = [CHUNKED, b"ffffff\r\n"].concat();
        // All in one read (pipelined), then split at every byte.
        let all = [small.as_slice(), fixed, get, &big].concat();
        assert_eq!(marked(1000, &[&all]), Some(4));
        let bytes: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(marked(1000, &bytes), Some(4));
        // A body that merely looks like a chunked head is read as data.
        let data = [CHUNKED, b"ffff\r\n"].concat();
        let head = format!("POST /a HTTP/1.1\r\ncontent-length: {}\r\n\r\n", data.len());
        let inside = [head.as_bytes(), &data, b"GET / HTTP/1.1\r\n\r\n"].concat();
        assert_eq!(marked(1000, &[&inside]), None);
    }

    #[test]
    fn what_hyper_refuses_is_not_followed() {
        let bad = b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\nffffff\r\n".as_slice();
        assert_eq!(marked(1000, &[bad]), None);
        let overflow = [CHUNKED, b"1ffffffffffffffff\r\n"].concat();
        assert_eq!(marked(u64::MAX, &[&overflow]), None);
        assert_eq!(
            marked(
                1000,
                &[b"\x16\x03\x01 not http\r\n\r\n", CHUNKED, b"ffff\r\n"]
            ),
            None
        );
    }
}
