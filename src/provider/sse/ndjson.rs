//! Newline-delimited JSON framing (Ollama): bytes in, complete lines out.

use std::ops::ControlFlow;

use super::MAX_SSE_LINE;
use crate::provider::ProviderError;

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
    /// [`SseParser::push_each`](super::SseParser::push_each)).
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
