//! Server-Sent Events framing: bytes in, complete events out (lent, buffers reused).

use std::ops::ControlFlow;

use super::MAX_SSE_LINE;
use crate::provider::ProviderError;

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
