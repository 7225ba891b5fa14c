//! A [`Framer`] over a response's bytes, and the driver that runs a provider's
//! [`WireDecoder`] on each framed item as it completes.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;

use super::{NdjsonSplitter, SseEvent, SseParser};
use crate::provider::{EventStream, ProviderError, StreamEvent};

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

/// Room made up front in [`Ahead`]: a burst of chunks decodes into 20-odd events, which then
/// fit without four growths on the way.
const AHEAD_ROOM: usize = 32;

/// What a stream made ahead of its reader, then whether it has ended (after an error, or
/// once the source is done).
struct Ahead<T> {
    queue: VecDeque<Result<T, ProviderError>>,
    ended: bool,
}

impl<T> Ahead<T> {
    fn new() -> Ahead<T> {
        Ahead {
            queue: VecDeque::with_capacity(AHEAD_ROOM),
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
pub fn drive_sse<D>(response: crate::provider::http::Response, decoder: D) -> EventStream
where
    D: WireDecoder<Item = SseEvent>,
{
    drive(
        crate::provider::http::body_stream(response),
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
