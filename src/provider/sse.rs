//! Incremental framing of streamed answers: Server-Sent Events (OpenAI, Anthropic, Gemini)
//! and newline-delimited JSON (Ollama), and the driver that turns framed wire events into
//! the normalized [`StreamEvent`] stream.
//!
//! Bytes enter in whatever pieces the network delivers ([`SseParser::push`],
//! [`NdjsonSplitter::push`]); complete events and lines leave. The parsers work on bytes, so a
//! line end or a UTF-8 character split across reads is handled, and each complete line is
//! decoded lossily. No line may grow past [`MAX_SSE_LINE`] (a protocol error), so a broken
//! upstream cannot make us buffer without end. [`drive`] runs a provider's [`WireDecoder`]
//! over such a stream and yields events until `Done` or the first error.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;

use super::{EventStream, ProviderError, StreamEvent, Usage, estimate_tokens};

/// The longest line (and the largest event's data) we buffer before calling the stream broken.
pub const MAX_SSE_LINE: usize = 4 * 1024 * 1024;

/// The estimate's bytes per token: the same rule as [`estimate_tokens`], applied to a running
/// byte count so the streamed text need not be kept.
const BYTES_PER_TOKEN: u64 = 4;

/// The UTF-8 byte order mark, which the SSE standard allows at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, when the event had one.
    pub event: Option<String>,
    /// Every `data:` line of the event, joined with `\n`.
    pub data: String,
    /// The `id:` field given within this event, when there was one.
    pub id: Option<String>,
}

/// An incremental SSE parser (the WHATWG framing rules): feed it byte chunks, get complete
/// events. Lines end with `\n`, `\r\n` or `\r`; an empty line dispatches the event; lines
/// starting with `:` are comments; an event without any `data:` line is not dispatched.
#[derive(Debug)]
pub struct SseParser {
    max_line: usize,
    /// Bytes of the current, unterminated line.
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// Still at the very start of the stream (a BOM may follow).
    at_start: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new()
    }
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::with_limit(MAX_SSE_LINE)
    }

    /// A parser that refuses lines (and event data) longer than `max_line` bytes.
    pub fn with_limit(max_line: usize) -> SseParser {
        SseParser {
            max_line,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
        }
    }

    /// How many bytes are buffered waiting for a line end or an event end.
    pub fn buffered(&self) -> usize {
        self.line.len() + self.data.len()
    }

    /// Feeds one chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, ProviderError> {
        let mut out = Vec::new();
        self.push_into(chunk, &mut out)?;
        Ok(out)
    }

    /// Feeds one chunk, appending the events it completed to `out`.
    pub fn push_into(
        &mut self,
        mut chunk: &[u8],
        out: &mut Vec<SseEvent>,
    ) -> Result<(), ProviderError> {
        if self.at_start {
            // Wait until we can tell whether the stream opens with a BOM.
            let have = self.line.len() + chunk.len();
            if have < BOM.len() && BOM.starts_with(&[&self.line[..], chunk].concat()) {
                self.line.extend_from_slice(chunk);
                return Ok(());
            }
            self.at_start = false;
            let mut head = std::mem::take(&mut self.line);
            head.extend_from_slice(chunk);
            let start = if head.starts_with(BOM) { BOM.len() } else { 0 };
            return self.push_into(&head[start..], out);
        }
        if chunk.is_empty() {
            // Nothing to do, and a pending `\r` must still see the next real byte.
            return Ok(());
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', chunk) {
            let (piece, rest) = chunk.split_at(end);
            if self.line.is_empty() {
                // The whole line is in this chunk (the usual case): read it in place.
                self.check_line(piece.len())?;
                self.process_line(piece, out)?;
            } else {
                self.grow_line(piece)?;
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, out)?;
                self.line = line;
                self.line.clear();
            }
            chunk = &rest[1..];
            if rest[0] == b'\r' {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.grow_line(chunk)
    }

    /// The stream ended. Returns the event that was still being read (its last line or its
    /// closing blank line never came), so the caller can report the stream as truncated.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.at_start {
            // Only a (partial) byte order mark can be buffered here: nothing to report.
            self.at_start = false;
            self.line.clear();
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            let mut ignored = Vec::new();
            // A line that never ended still counts as a field of the open event.
            if self.process_line(&line, &mut ignored).is_err() {
                return Some(SseEvent::default());
            }
        }
        let partial = self.has_data || self.event.is_some() || self.id.is_some();
        let event = SseEvent {
            event: self.event.take(),
            data: std::mem::take(&mut self.data),
            id: self.id.take(),
        };
        self.has_data = false;
        partial.then_some(event)
    }

    fn grow_line(&mut self, piece: &[u8]) -> Result<(), ProviderError> {
        self.check_line(self.line.len() + piece.len())?;
        self.line.extend_from_slice(piece);
        Ok(())
    }

    /// A line of `len` bytes is within the limit.
    fn check_line(&self, len: usize) -> Result<(), ProviderError> {
        if len > self.max_line {
            return Err(ProviderError::protocol(format!(
                "an SSE line longer than {} bytes",
                self.max_line
            )));
        }
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), ProviderError> {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                    id: self.id.take(),
                });
            }
            self.event = None;
            self.id = None;
            self.data.clear();
            self.has_data = false;
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &line[line.len()..]),
        };
        match field {
            b"data" => {
                // Checked after decoding: replacement characters can outgrow the raw bytes.
                // Valid UTF-8 (every well-behaved upstream) is checked in one fast pass.
                let value = match std::str::from_utf8(value) {
                    Ok(text) => std::borrow::Cow::Borrowed(text),
                    Err(_) => String::from_utf8_lossy(value),
                };
                if self.data.len() + value.len() + 1 > self.max_line {
                    return Err(ProviderError::protocol(format!(
                        "an SSE event with more than {} bytes of data",
                        self.max_line
                    )));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            // `retry:` and unknown fields are ignored, as the standard says.
            _ => {}
        }
        Ok(())
    }
}

/// Splits newline-delimited JSON into lines (Ollama), with the same line limit as SSE.
#[derive(Debug)]
pub struct NdjsonSplitter {
    max_line: usize,
    line: Vec<u8>,
}

impl Default for NdjsonSplitter {
    fn default() -> Self {
        NdjsonSplitter::new()
    }
}

impl NdjsonSplitter {
    pub fn new() -> NdjsonSplitter {
        NdjsonSplitter::with_limit(MAX_SSE_LINE)
    }

    pub fn with_limit(max_line: usize) -> NdjsonSplitter {
        NdjsonSplitter {
            max_line,
            line: Vec::new(),
        }
    }

    /// Feeds one chunk; returns the complete, non-blank lines (without their line end).
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<Vec<String>, ProviderError> {
        let mut out = Vec::new();
        while let Some(end) = memchr::memchr(b'\n', chunk) {
            self.grow(&chunk[..end])?;
            let line = String::from_utf8_lossy(&self.line);
            let line = line.trim();
            if !line.is_empty() {
                out.push(line.to_string());
            }
            self.line.clear();
            chunk = &chunk[end + 1..];
        }
        self.grow(chunk)?;
        Ok(out)
    }

    /// The stream ended: the last line if it had no line end.
    pub fn finish(&mut self) -> Option<String> {
        let line = String::from_utf8_lossy(&self.line).trim().to_string();
        self.line.clear();
        (!line.is_empty()).then_some(line)
    }

    fn grow(&mut self, piece: &[u8]) -> Result<(), ProviderError> {
        if self.line.len() + piece.len() > self.max_line {
            return Err(ProviderError::protocol(format!(
                "an NDJSON line longer than {} bytes",
                self.max_line
            )));
        }
        self.line.extend_from_slice(piece);
        Ok(())
    }
}

/// A framing step over a byte stream: SSE events or NDJSON lines.
trait Framer: Send + Unpin + 'static {
    type Item: Send + Unpin + 'static;
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<Self::Item>, ProviderError>;
    fn finish(&mut self) -> Result<Option<Self::Item>, ProviderError>;
}

impl Framer for SseParser {
    type Item = SseEvent;
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, ProviderError> {
        SseParser::push(self, chunk)
    }
    fn finish(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        match SseParser::finish(self) {
            None => Ok(None),
            Some(_) => Err(ProviderError::protocol(
                "truncated stream: it ended inside an unterminated SSE event",
            )),
        }
    }
}

impl Framer for NdjsonSplitter {
    type Item = String;
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, ProviderError> {
        NdjsonSplitter::push(self, chunk)
    }
    fn finish(&mut self) -> Result<Option<String>, ProviderError> {
        Ok(NdjsonSplitter::finish(self))
    }
}

/// What a stream made ahead of its reader, then whether it has ended (after an error, or
/// once the source is done).
struct Ahead<T> {
    queue: VecDeque<Result<T, ProviderError>>,
    ended: bool,
}

impl<T> Ahead<T> {
    fn new() -> Ahead<T> {
        Ahead {
            queue: VecDeque::new(),
            ended: false,
        }
    }

    /// What to hand the reader without reading more: the next item, or the end.
    fn ready(&mut self) -> Option<Option<Result<T, ProviderError>>> {
        if let Some(item) = self.queue.pop_front() {
            return Some(Some(item));
        }
        self.ended.then_some(None)
    }

    /// Items made, or the error that ends the stream.
    fn take(&mut self, made: Result<impl IntoIterator<Item = T>, ProviderError>) {
        match made {
            Ok(items) => self.queue.extend(items.into_iter().map(Ok)),
            Err(e) => {
                self.queue.push_back(Err(e));
                self.ended = true;
            }
        }
    }
}

/// A byte stream cut into items by a [`Framer`]. A plain `Stream` rather than an `unfold`:
/// an `unfold` moves its whole state (the framer's buffers, the queue) in and out of a new
/// future for every item, which cost a streamed token more than its framing.
struct Framed<F: Framer> {
    bytes: Pin<Box<dyn Stream<Item = Result<Bytes, ProviderError>> + Send>>,
    framer: F,
    ahead: Ahead<F::Item>,
}

impl<F: Framer> Stream for Framed<F> {
    type Item = Result<F::Item, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(next) = this.ahead.ready() {
                return Poll::Ready(next);
            }
            match ready!(this.bytes.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => this.ahead.take(this.framer.push(&chunk)),
                Some(Err(e)) => this.ahead.take(Err::<Vec<F::Item>, _>(e)),
                None => {
                    this.ahead.take(this.framer.finish());
                    this.ahead.ended = true;
                }
            }
        }
    }
}

fn framed<S, F>(bytes: S, framer: F) -> impl Stream<Item = Result<F::Item, ProviderError>> + Send
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
    F: Framer,
{
    Framed {
        bytes: Box::pin(bytes),
        framer,
        ahead: Ahead::new(),
    }
}

/// SSE events from a byte stream. A byte-stream error passes through (it is already
/// classified: a reset mid-stream is `Network`); a stream ending inside an event is a
/// `Protocol` error. The stream ends after the first error.
pub fn sse_events<S>(bytes: S) -> impl Stream<Item = Result<SseEvent, ProviderError>> + Send
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
{
    framed(bytes, SseParser::new())
}

/// SSE events of an HTTP response body (see [`sse_events`]).
pub fn response_events(
    response: super::http::Response,
) -> impl Stream<Item = Result<SseEvent, ProviderError>> + Send {
    sse_events(super::http::body_stream(response))
}

/// NDJSON lines from a byte stream; the last line may lack its newline.
pub fn ndjson_lines<S>(bytes: S) -> impl Stream<Item = Result<String, ProviderError>> + Send
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
{
    framed(bytes, NdjsonSplitter::new())
}

/// A provider's stream decoder: wire events in, normalized events out.
pub trait WireDecoder: Send + Unpin + 'static {
    /// What one wire event is: an [`SseEvent`] or an NDJSON line.
    type Item: Send + 'static;

    /// Decodes one wire event. An `Err` ends the stream (malformed JSON, in-band errors).
    fn decode_event(&mut self, item: &Self::Item) -> Result<Vec<StreamEvent>, ProviderError>;

    /// True once `Done` was returned: nothing more is read.
    fn is_done(&self) -> bool;

    /// The wire ended: at EOF (`cause` is `None`) or with a transport or framing error. Returns
    /// the closing events when the answer was complete, else the error to report.
    fn end(&mut self, cause: Option<ProviderError>) -> Result<Vec<StreamEvent>, ProviderError>;
}

/// Runs `decoder` over `source`, yielding normalized events until `Done` or the first error.
pub fn drive<S, D>(source: S, decoder: D) -> EventStream
where
    S: Stream<Item = Result<D::Item, ProviderError>> + Send + 'static,
    D: WireDecoder,
{
    Box::pin(Driven {
        source: Box::pin(source),
        decoder,
        ahead: Ahead::new(),
    })
}

/// [`drive`]'s stream (a plain `Stream` for the reason [`Framed`] is one).
struct Driven<D: WireDecoder> {
    source: Pin<Box<dyn Stream<Item = Result<D::Item, ProviderError>> + Send>>,
    decoder: D,
    ahead: Ahead<StreamEvent>,
}

impl<D: WireDecoder> Stream for Driven<D> {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(next) = this.ahead.ready() {
                return Poll::Ready(next);
            }
            let made = match ready!(this.source.as_mut().poll_next(cx)) {
                Some(Ok(item)) => this.decoder.decode_event(&item),
                Some(Err(e)) => {
                    this.ahead.ended = true;
                    this.decoder.end(Some(e))
                }
                None => {
                    this.ahead.ended = true;
                    this.decoder.end(None)
                }
            };
            this.ahead.take(made);
            this.ahead.ended |= this.decoder.is_done();
        }
    }
}

/// What every decoder keeps to report usage: the provider's numbers when it sent them, else
/// estimates from the prompt and from the text streamed so far.
#[derive(Debug, Clone, Default)]
pub struct UsageTracker {
    prompt_estimate: u64,
    output_bytes: u64,
    reported: Option<Usage>,
}

impl UsageTracker {
    pub fn new(prompt_estimate: u64) -> UsageTracker {
        UsageTracker {
            prompt_estimate,
            ..Default::default()
        }
    }

    /// Counts streamed text (answer or reasoning) for the estimate.
    pub fn saw_text(&mut self, text: &str) {
        self.output_bytes += text.len() as u64;
    }

    /// The provider's own counts (the last report wins).
    pub fn report(&mut self, usage: Usage) {
        self.reported = Some(usage);
    }

    pub fn reported(&self) -> Option<Usage> {
        self.reported
    }

    /// The usage to send before `Done`.
    pub fn finish(&self) -> Usage {
        self.reported.unwrap_or(Usage {
            input: self.prompt_estimate,
            output: self.output_bytes.div_ceil(BYTES_PER_TOKEN),
            estimated: true,
            ..Usage::default()
        })
    }

    /// The usage of a whole, non-streamed answer: reported, or estimated from `text`.
    pub fn for_whole(prompt_estimate: u64, reported: Option<Usage>, text: &str) -> Usage {
        reported.unwrap_or(Usage {
            input: prompt_estimate,
            output: estimate_tokens(text),
            estimated: true,
            ..Usage::default()
        })
    }
}
