//! Incremental framing of streamed answers: Server-Sent Events (OpenAI, Anthropic, Gemini)
//! and newline-delimited JSON (Ollama), and the driver that turns framed wire events into
//! the normalized [`StreamEvent`](super::StreamEvent) stream.
//!
//! Bytes enter in whatever pieces the network delivers ([`SseParser::push`],
//! [`NdjsonSplitter::push`]); complete events and lines leave. The parsers work on bytes, so a
//! line end or a UTF-8 character split across reads is handled, and each complete line is
//! decoded lossily. No line may grow past [`MAX_SSE_LINE`] (a protocol error), so a broken
//! upstream cannot make us buffer without end. [`drive`] frames a response's bytes with a
//! [`Framer`] and runs a provider's [`WireDecoder`] on each item as it completes, yielding
//! events until `Done` or the first error.

mod drive;
mod ndjson;
mod parser;
mod usage;

pub use drive::{Decoded, Framer, WireDecoder, drive, drive_sse, ndjson_lines, sse_events};
pub use ndjson::NdjsonSplitter;
pub use parser::{SseEvent, SseParser};
pub use usage::UsageTracker;

/// The longest line (and the largest event's data) we buffer before calling the stream broken.
pub const MAX_SSE_LINE: usize = 4 * 1024 * 1024;
