//! The chunks of one stream share their shape: the same members in the same order, the same
//! `id`, `model` and `created`, only the token's text changing. [`Shapes`] learns that shape
//! from a chunk the full scan read, as the chunk's bytes with holes in them, and reads the
//! next chunks against it: the literal bytes must be the same, each hole must hold one
//! well-formed value of its kind. A chunk that matches is the same JSON as the one learned
//! from except in the holes, so serde reads it the same way except there, and the holes are
//! either values nobody reads (skipped strings and numbers: `id`, `created`, `obfuscation`)
//! or the one text the chunk carries. That costs a comparison of bytes and one string read,
//! against a full scan's key matching per member.
//!
//! Only chunks of the usual streamed shape are learned from: one choice, index 0, whose
//! delta has exactly one text (content or reasoning) and no finish reason, no usage. Anything
//! else that arrives (the role chunk, the finish chunk, the usage chunk) is read in full, and
//! the shape is learned again from the next usual one; a stream whose chunks keep changing
//! shape gives the shape up after [`MAX_MISSES`] misses in a row and is read in full.

use super::super::{Choice, Chunk, Delta};
use std::ops::Range;

use super::Scanner;

/// Misses in a row (chunks that did not match, each learned from again) after which a stream
/// stops trying: its chunks do not share a shape.
const MAX_MISSES: u8 = 8;

/// Which text of the delta the learned chunks carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::provider::openai) enum TextField {
    Content,
    ReasoningContent,
    Reasoning,
}

/// Where the full scan saw a value the shape may vary in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HoleKind {
    /// A string nobody reads.
    Skipped,
    /// A number nobody reads.
    Number,
    /// The delta's text, read.
    Text(TextField),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Hole {
    pub(super) kind: HoleKind,
    pub(super) start: usize,
    pub(super) end: usize,
}

#[derive(Debug)]
enum Piece {
    /// These bytes of the learned chunk, as they are.
    Literal(Range<usize>),
    /// A string nobody reads; the learned chunk's is at the range (usually the same again).
    Skipped(Range<usize>),
    /// A number nobody reads, likewise.
    Number(Range<usize>),
    Text,
}

#[derive(Debug)]
struct Template {
    learned: String,
    pieces: Vec<Piece>,
    field: TextField,
}

/// One stream's learned chunk shape (see the module docs).
#[derive(Debug, Default)]
pub(in crate::provider::openai) struct Shapes {
    template: Option<Template>,
    misses: u8,
}

impl Shapes {
    /// The text of `data` when it has the learned shape; `None` when it must be read in full
    /// ([`Shapes::chunk`]).
    pub(in crate::provider::openai) fn text(&mut self, data: &str) -> Option<(TextField, String)> {
        let template = self.template.as_ref()?;
        let read = template.read(data);
        if read.is_some() {
            self.misses = 0;
        }
        read
    }

    /// `data` read by the full scan, learning its shape when it has the usual one (`None`:
    /// serde must read it).
    pub(in crate::provider::openai) fn chunk(&mut self, data: &str) -> Option<Chunk> {
        if self.misses >= MAX_MISSES {
            // Not one shape: no more comparing against the last one either.
            self.template = None;
            return super::chunk(data);
        }
        let (chunk, holes) = super::chunk_recording(data)?;
        self.template = Template::learn(data, &chunk, &holes);
        self.misses += 1;
        Some(chunk)
    }
}

impl Template {
    /// The shape of `chunk`, read from `data` with `holes`, when it is the usual one.
    fn learn(data: &str, chunk: &Chunk, holes: &[Hole]) -> Option<Template> {
        let field = usual_text(chunk)?;
        let mut pieces = Vec::with_capacity(2 * holes.len() + 1);
        let mut at = 0;
        let mut texts = 0;
        for hole in holes {
            if hole.start > at {
                pieces.push(Piece::Literal(at..hole.start));
            }
            pieces.push(match hole.kind {
                HoleKind::Skipped => Piece::Skipped(hole.start..hole.end),
                HoleKind::Number => Piece::Number(hole.start..hole.end),
                HoleKind::Text(f) => {
                    texts += 1;
                    if f != field {
                        return None;
                    }
                    Piece::Text
                }
            });
            at = hole.end;
        }
        if at < data.len() {
            pieces.push(Piece::Literal(at..data.len()));
        }
        (texts == 1).then(|| Template {
            learned: data.to_string(),
            pieces,
            field,
        })
    }

    fn read(&self, data: &str) -> Option<(TextField, String)> {
        let mut s = Scanner::new(data);
        let mut text = None;
        for piece in &self.pieces {
            match piece {
                Piece::Literal(range) => s.literal(self.learned[range.clone()].as_bytes())?,
                // The same `id`, `object` or `model` as the learned chunk's (the rule within a
                // stream) is a comparison; another is read as a string.
                Piece::Skipped(range) => {
                    if !s.same(&self.learned[range.clone()]) {
                        s.skip_string()?;
                    }
                }
                // The same number only when no digit follows it (`1` is not the start of `12`).
                Piece::Number(range) => {
                    let start = s.at;
                    if !s.same(&self.learned[range.clone()]) || s.in_number() {
                        s.at = start;
                        s.number()?;
                    }
                }
                Piece::Text => text = Some(s.string()?),
            }
        }
        (s.at == data.len()).then_some((self.field, text?))
    }
}

/// The field of the one text in `chunk` when the chunk has the usual streamed shape.
fn usual_text(chunk: &Chunk) -> Option<TextField> {
    let Chunk {
        choices,
        usage: None,
        error: None,
    } = chunk
    else {
        return None;
    };
    let [
        Choice {
            index: 0,
            delta: Some(delta),
            finish_reason: None,
        },
    ] = choices.as_slice()
    else {
        return None;
    };
    match delta {
        Delta {
            content: Some(_),
            reasoning_content: None,
            reasoning: None,
            tool_calls: None,
        } => Some(TextField::Content),
        Delta {
            content: None,
            reasoning_content: Some(_),
            reasoning: None,
            tool_calls: None,
        } => Some(TextField::ReasoningContent),
        Delta {
            content: None,
            reasoning_content: None,
            reasoning: Some(_),
            tool_calls: None,
        } => Some(TextField::Reasoning),
        _ => None,
    }
}

/// The chunk a text of the learned shape stands for (what the full scan would have read).
#[cfg(test)]
pub(super) fn as_chunk(field: TextField, text: String) -> Chunk {
    let mut delta = Delta::default();
    match field {
        TextField::Content => delta.content = Some(text),
        TextField::ReasoningContent => delta.reasoning_content = Some(text),
        TextField::Reasoning => delta.reasoning = Some(text),
    }
    Chunk {
        choices: vec![Choice {
            index: 0,
            delta: Some(delta),
            finish_reason: None,
        }],
        ..Chunk::default()
    }
}
