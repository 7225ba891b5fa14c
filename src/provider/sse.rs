//! Incremental framing of streamed answers: Server-Sent Events (OpenAI, Anthropic, Gemini)
//! and newline-delimited JSON (Ollama), and the driver that turns framed wire events into
//! the normalized [`StreamEvent`] stream.
//!
//! Bytes enter in whatever pieces the network delivers ([`SseParser::push`],
//! [`NdjsonSplitter::push`]); complete events and lines leave. The parsers work on bytes, so a
//! line end or a UTF-8 character split across reads is handled, and each complete line is
//! decoded lossily. No line may grow past [`MAX_SSE_LINE`] (a protocol error), so a broken
//! upstream cannot make us buffer without end. [`drive`] frames a response's bytes with a
//! [`Framer`] and runs a provider's [`WireDecoder`] on each item as it completes, yielding
//! events until `Done` or the first error.

use std::collections::VecDeque;
use std::ops::ControlFlow;
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
    /// The event being read. [`SseParser::push_each`] lends it out when it completes and then
    /// clears it, so its data buffer serves every event of the stream.
    current: SseEvent,
    has_data: bool,
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
            current: SseEvent::default(),
            has_data: false,
        }
    }

    /// How many bytes are buffered waiting for a line end or an event end.
    pub fn buffered(&self) -> usize {
        self.line.len() + self.current.data.len()
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
        chunk: &[u8],
        out: &mut Vec<SseEvent>,
    ) -> Result<(), ProviderError> {
        self.push_each(chunk, |event| {
            out.push(event.clone());
            ControlFlow::Continue(())
        })
    }

    /// Feeds one chunk, lending each event it completes to `each`, which may stop the rest
    /// of the chunk from being read (`Break`: the reader is done with the stream). The event's
    /// data buffer is reused for the next one (an `event:` or `id:` field is still a `String`
    /// of its own).
    pub fn push_each(
        &mut self,
        chunk: &[u8],
        mut each: impl FnMut(&SseEvent) -> ControlFlow<()>,
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
            return self.lines(&head[start..], &mut each);
        }
        self.lines(chunk, &mut each)
    }

    fn lines(
        &mut self,
        mut chunk: &[u8],
        each: &mut impl FnMut(&SseEvent) -> ControlFlow<()>,
    ) -> Result<(), ProviderError> {
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
            let flow = if self.line.is_empty() {
                // The whole line is in this chunk (the usual case): read it in place.
                self.check_line(piece.len())?;
                self.process_line(piece, each)?
            } else {
                self.grow_line(piece)?;
                let line = std::mem::take(&mut self.line);
                let flow = self.process_line(&line, each)?;
                self.line = line;
                self.line.clear();
                flow
            };
            if flow.is_break() {
                return Ok(());
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
            // A line that never ended still counts as a field of the open event.
            let ignore = &mut |_: &SseEvent| ControlFlow::Continue(());
            if self.process_line(&line, ignore).is_err() {
                return Some(SseEvent::default());
            }
        }
        let current = &self.current;
        let partial = self.has_data || current.event.is_some() || current.id.is_some();
        let event = std::mem::take(&mut self.current);
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

    fn process_line(
        &mut self,
        line: &[u8],
        each: &mut impl FnMut(&SseEvent) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, ProviderError> {
        if line.is_empty() {
            let flow = if self.has_data {
                each(&self.current)
            } else {
                ControlFlow::Continue(())
            };
            self.current.event = None;
            self.current.id = None;
            self.current.data.clear();
            self.has_data = false;
            return Ok(flow);
        }
        if line[0] == b':' {
            return Ok(ControlFlow::Continue(()));
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
                let data = &mut self.current.data;
                if data.len() + value.len() + 1 > self.max_line {
                    return Err(ProviderError::protocol(format!(
                        "an SSE event with more than {} bytes of data",
                        self.max_line
                    )));
                }
                if self.has_data {
                    data.push('\n');
                }
                data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.current.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" if !value.contains(&0) => {
                self.current.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            // `retry:` and unknown fields are ignored, as the standard says.
            _ => {}
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// Splits newline-delimited JSON into lines (Ollama), with the same line limit as SSE.
#[derive(Debug)]
pub struct NdjsonSplitter {
    max_line: usize,
    line: Vec<u8>,
    /// The last complete line, trimmed: lent to [`NdjsonSplitter::push_each`]'s reader.
    text: String,
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
            text: String::new(),
        }
    }

    /// Feeds one chunk; returns the complete, non-blank lines (without their line end).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, ProviderError> {
        let mut out = Vec::new();
        self.push_each(chunk, |line| {
            out.push(line.clone());
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Feeds one chunk, lending each complete, non-blank line to `each` (see
    /// [`SseParser::push_each`]).
    pub fn push_each(
        &mut self,
        mut chunk: &[u8],
        mut each: impl FnMut(&String) -> ControlFlow<()>,
    ) -> Result<(), ProviderError> {
        while let Some(end) = memchr::memchr(b'\n', chunk) {
            self.grow(&chunk[..end])?;
            let line = String::from_utf8_lossy(&self.line);
            let line = line.trim();
            let flow = if line.is_empty() {
                ControlFlow::Continue(())
            } else {
                self.text.clear();
                self.text.push_str(line);
                each(&self.text)
            };
            self.line.clear();
            if flow.is_break() {
                return Ok(());
            }
            chunk = &chunk[end + 1..];
        }
        self.grow(chunk)
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
pub trait Framer: Send + Unpin + 'static {
    type Item: Clone + Send + Unpin + 'static;
    /// Feeds one chunk, lending each complete item to `each` until it says `Break`.
    fn push_each(
        &mut self,
        chunk: &[u8],
        each: impl FnMut(&Self::Item) -> ControlFlow<()>,
    ) -> Result<(), ProviderError>;
    /// The byte stream ended: the last item when one was complete without its terminator, or
    /// the error of a stream cut off inside one.
    fn finish(&mut self) -> Result<Option<Self::Item>, ProviderError>;
}

impl Framer for SseParser {
    type Item = SseEvent;
    fn push_each(
        &mut self,
        chunk: &[u8],
        each: impl FnMut(&SseEvent) -> ControlFlow<()>,
    ) -> Result<(), ProviderError> {
        SseParser::push_each(self, chunk, each)
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
    fn push_each(
        &mut self,
        chunk: &[u8],
        each: impl FnMut(&String) -> ControlFlow<()>,
    ) -> Result<(), ProviderError> {
        NdjsonSplitter::push_each(self, chunk, each)
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
            Err(e) => self.fail(e),
        }
    }

    /// The error that ends the stream, after what is already queued.
    fn fail(&mut self, e: ProviderError) {
        self.queue.push_back(Err(e));
        self.ended = true;
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ProviderError>> + Send>>;

/// A byte stream cut into owned items by a [`Framer`] (for readers of the items themselves;
/// a provider's stream frames and decodes in one step, [`drive`]). A plain `Stream` rather
/// than an `unfold`: an `unfold` moves its whole state (the framer's buffers, the queue) in
/// and out of a new future for every item, which cost a streamed token more than its framing.
struct Framed<F: Framer> {
    bytes: ByteStream,
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
                Some(Ok(chunk)) => {
                    let queue = &mut this.ahead.queue;
                    let framed = this.framer.push_each(&chunk, |item| {
                        queue.push_back(Ok(item.clone()));
                        ControlFlow::Continue(())
                    });
                    if let Err(e) = framed {
                        this.ahead.fail(e);
                    }
                }
                Some(Err(e)) => this.ahead.fail(e),
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

/// NDJSON lines from a byte stream; the last line may lack its newline.
pub fn ndjson_lines<S>(bytes: S) -> impl Stream<Item = Result<String, ProviderError>> + Send
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
{
    framed(bytes, NdjsonSplitter::new())
}

/// Where a [`WireDecoder`] puts the events it decodes: straight into its stream's queue.
pub struct Decoded<'a> {
    queue: &'a mut VecDeque<Result<StreamEvent, ProviderError>>,
}

impl<'a> Decoded<'a> {
    pub fn new(queue: &'a mut VecDeque<Result<StreamEvent, ProviderError>>) -> Decoded<'a> {
        Decoded { queue }
    }

    pub fn push(&mut self, event: StreamEvent) {
        self.queue.push_back(Ok(event));
    }
}

/// A provider's stream decoder: wire events in, normalized events out.
pub trait WireDecoder: Send + Unpin + 'static {
    /// What one wire event is: an [`SseEvent`] or an NDJSON line.
    type Item: Send + 'static;

    /// Decodes one wire event. An `Err` ends the stream (malformed JSON, in-band errors).
    fn decode_event(&mut self, item: &Self::Item) -> Result<Vec<StreamEvent>, ProviderError>;

    /// [`WireDecoder::decode_event`] into the stream's queue. A decoder on the path of every
    /// token implements it without the `Vec`.
    fn decode_into(&mut self, item: &Self::Item, out: &mut Decoded) -> Result<(), ProviderError> {
        for event in self.decode_event(item)? {
            out.push(event);
        }
        Ok(())
    }

    /// True once `Done` was returned: nothing more is read.
    fn is_done(&self) -> bool;

    /// The wire ended: at EOF (`cause` is `None`) or with a transport or framing error. Returns
    /// the closing events when the answer was complete, else the error to report.
    fn end(&mut self, cause: Option<ProviderError>) -> Result<Vec<StreamEvent>, ProviderError>;
}

/// Runs `decoder` over the items `framer` cuts from `bytes`, yielding normalized events until
/// `Done` or the first error. Each item is decoded where the framer completes it, lent rather
/// than handed over: no item is copied, queued or moved on the way.
pub fn drive<S, F, D>(bytes: S, framer: F, decoder: D) -> EventStream
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
    F: Framer,
    D: WireDecoder<Item = F::Item>,
{
    Box::pin(Driven {
        bytes: Box::pin(bytes),
        framer,
        decoder,
        ahead: Ahead::new(),
    })
}

/// SSE events of an HTTP response body, decoded by `decoder` (see [`drive`]).
pub fn drive_sse<D>(response: super::http::Response, decoder: D) -> EventStream
where
    D: WireDecoder<Item = SseEvent>,
{
    drive(
        super::http::body_stream(response),
        SseParser::new(),
        decoder,
    )
}

/// [`drive`]'s stream (a plain `Stream` for the reason [`Framed`] is one).
struct Driven<F: Framer, D: WireDecoder<Item = F::Item>> {
    bytes: ByteStream,
    framer: F,
    decoder: D,
    ahead: Ahead<StreamEvent>,
}

impl<F: Framer, D: WireDecoder<Item = F::Item>> Driven<F, D> {
    /// Decodes one item; false once the stream has ended (`Done`, or a decoding error). An
    /// item that fails gives none of its events, only the error: a chunk whose text came with
    /// a content-filter stop must not count as tokens streamed before a failure.
    fn decode(decoder: &mut D, ahead: &mut Ahead<StreamEvent>, item: &F::Item) -> bool {
        let before = ahead.queue.len();
        let mut out = Decoded {
            queue: &mut ahead.queue,
        };
        if let Err(e) = decoder.decode_into(item, &mut out) {
            ahead.queue.truncate(before);
            ahead.fail(e);
        }
        ahead.ended |= decoder.is_done();
        !ahead.ended
    }

    /// The wire ended, at EOF (`None`) or with an error: the decoder's closing words.
    fn end(&mut self, cause: Option<ProviderError>) {
        self.ahead.ended = true;
        let made = self.decoder.end(cause);
        self.ahead.take(made);
    }
}

impl<F: Framer, D: WireDecoder<Item = F::Item>> Stream for Driven<F, D> {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(next) = this.ahead.ready() {
                return Poll::Ready(next);
            }
            match ready!(this.bytes.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => {
                    let (decoder, ahead) = (&mut this.decoder, &mut this.ahead);
                    let framed = this.framer.push_each(&chunk, |item| {
                        if Self::decode(decoder, ahead, item) {
                            ControlFlow::Continue(())
                        } else {
                            ControlFlow::Break(())
                        }
                    });
                    // A framing error ends the wire; whatever was decoded before it stands.
                    if let Err(e) = framed
                        && !this.ahead.ended
                    {
                        this.end(Some(e));
                    }
                }
                Some(Err(e)) => this.end(Some(e)),
                None => match this.framer.finish() {
                    Ok(last) => {
                        let open = match &last {
                            Some(item) => Self::decode(&mut this.decoder, &mut this.ahead, item),
                            None => true,
                        };
                        if open {
                            this.end(None);
                        }
                    }
                    Err(e) => this.end(Some(e)),
                },
            }
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
