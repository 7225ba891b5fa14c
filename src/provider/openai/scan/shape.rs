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
//! Members the full scan keeps for the front end (`system_fingerprint`, `obfuscation`, a
//! choice's `logprobs`) are part of the shape: the learned chunk says where each one's value
//! starts and ends, as a place in a literal piece or at a piece's start, and a chunk read
//! against the shape gives the same members, cut from its own bytes at those places.
//!
//! Only chunks of the usual streamed shape are learned from: one choice, index 0, whose
//! delta has exactly one text (content or reasoning) and no finish reason, no usage. Anything
//! else that arrives (the role chunk, the finish chunk, the usage chunk) is read in full, and
//! the shape is learned again from the next usual one; a stream whose chunks keep changing
//! shape gives the shape up after [`MAX_MISSES`] misses in a row and is read in full.

use super::super::{Choice, Chunk, Delta};
use std::ops::Range;

use super::{KeptSpan, Level, Recorded, Scanner};
use crate::provider::passthrough::Members;

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
    /// The text; the learned chunk's is at the range.
    Text(Range<usize>),
}

impl Piece {
    /// Where it starts in the learned chunk.
    fn start(&self) -> usize {
        match self {
            Piece::Literal(r) | Piece::Skipped(r) | Piece::Number(r) | Piece::Text(r) => r.start,
        }
    }
}

/// The members a chunk keeps for the front end, by object.
#[derive(Debug, Default, PartialEq, Eq)]
pub(in crate::provider::openai) struct Extra {
    pub(in crate::provider::openai) top: Members,
    pub(in crate::provider::openai) choice: Members,
    pub(in crate::provider::openai) delta: Members,
}

/// A chunk read against the learned shape.
#[derive(Debug)]
pub(in crate::provider::openai) struct Read {
    pub(in crate::provider::openai) field: TextField,
    pub(in crate::provider::openai) text: String,
    /// The kept members, when the shape has any.
    pub(in crate::provider::openai) extra: Option<Box<Extra>>,
}

/// A place in a chunk of the shape: `offset` bytes into piece `piece` (the end of the chunk
/// when `piece` is the number of pieces).
#[derive(Debug, Clone, Copy)]
struct Mark {
    piece: usize,
    offset: usize,
}

/// A kept member of the shape: its object, name, and the marks of its value's ends.
#[derive(Debug)]
struct KeptMember {
    level: Level,
    name: String,
    start: usize,
    end: usize,
}

#[derive(Debug)]
struct Template {
    learned: String,
    pieces: Vec<Piece>,
    field: TextField,
    /// Where the kept members' values start and end, in piece order.
    marks: Vec<Mark>,
    kept: Vec<KeptMember>,
    /// The byte positions of `marks` in the chunk being read (reused).
    at_marks: Vec<usize>,
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
    pub(in crate::provider::openai) fn text(&mut self, data: &str) -> Option<Read> {
        let template = self.template.as_mut()?;
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
        let (chunk, recorded) = super::chunk_recording(data)?;
        self.template = Template::learn(data, &chunk, &recorded);
        self.misses += 1;
        Some(chunk)
    }
}

impl Template {
    /// The shape of `chunk`, read from `data` with what recording it saw, when it is the
    /// usual one.
    fn learn(data: &str, chunk: &Chunk, recorded: &Recorded) -> Option<Template> {
        let field = usual_text(chunk)?;
        let holes = &recorded.holes;
        let mut pieces = Vec::with_capacity(2 * holes.len() + 1);
        let mut at = 0;
        let mut texts = 0;
        for hole in holes {
            if hole.start > at {
                pieces.push(Piece::Literal(at..hole.start));
            }
            let range = hole.start..hole.end;
            pieces.push(match hole.kind {
                HoleKind::Skipped => Piece::Skipped(range),
                HoleKind::Number => Piece::Number(range),
                HoleKind::Text(f) => {
                    texts += 1;
                    if f != field {
                        return None;
                    }
                    Piece::Text(range)
                }
            });
            at = hole.end;
        }
        if at < data.len() {
            pieces.push(Piece::Literal(at..data.len()));
        }
        if texts != 1 {
            return None;
        }
        let (marks, kept) = if recorded.kept.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            kept_members(&pieces, data.len(), &recorded.kept)?
        };
        Some(Template {
            learned: data.to_string(),
            pieces,
            field,
            at_marks: Vec::with_capacity(marks.len()),
            marks,
            kept,
        })
    }

    fn read(&mut self, data: &str) -> Option<Read> {
        if self.marks.is_empty() {
            let mut s = Scanner::new(data);
            let mut text = None;
            for piece in &self.pieces {
                read_piece(&mut s, &self.learned, piece, &mut text)?;
            }
            return (s.at == data.len()).then_some(Read {
                field: self.field,
                text: text?,
                extra: None,
            });
        }
        self.read_keeping(data)
    }

    /// [`Template::read`] for a shape with kept members: their values cut from `data`.
    fn read_keeping(&mut self, data: &str) -> Option<Read> {
        let mut s = Scanner::new(data);
        let mut text = None;
        self.at_marks.clear();
        let mut next_mark = 0;
        for (i, piece) in self.pieces.iter().enumerate() {
            while let Some(m) = self.marks.get(next_mark)
                && m.piece == i
            {
                self.at_marks.push(s.at + m.offset);
                next_mark += 1;
            }
            read_piece(&mut s, &self.learned, piece, &mut text)?;
        }
        if s.at != data.len() {
            return None;
        }
        for _ in next_mark..self.marks.len() {
            self.at_marks.push(s.at);
        }
        let mut extra = Extra::default();
        for k in &self.kept {
            // A mark learned at a value's start may sit before the whitespace that precedes
            // it in this chunk; the value itself starts at its first non-blank byte, as serde
            // reads it.
            let value = data
                .get(self.at_marks[k.start]..self.at_marks[k.end])?
                .trim_start_matches([' ', '\t', '\n', '\r']);
            let members = match k.level {
                Level::Chunk => &mut extra.top,
                Level::Choice => &mut extra.choice,
                Level::Delta => &mut extra.delta,
            };
            members.push(&k.name, value);
        }
        Some(Read {
            field: self.field,
            text: text?,
            extra: Some(Box::new(extra)),
        })
    }
}

/// Reads one piece of the shape from `s` (`learned` is the chunk the shape was learned from).
/// Inlined into its loops: a call per piece cost a streamed chunk ~250 instructions.
#[inline(always)]
fn read_piece(
    s: &mut Scanner,
    learned: &str,
    piece: &Piece,
    text: &mut Option<String>,
) -> Option<()> {
    match piece {
        Piece::Literal(range) => s.literal(learned[range.clone()].as_bytes()),
        // The same `id`, `object` or `model` as the learned chunk's (the rule within a stream)
        // is a comparison; another is read as a string.
        Piece::Skipped(range) => {
            if !s.same(&learned[range.clone()]) {
                s.skip_string()?;
            }
            Some(())
        }
        // The same number only when no digit follows it (`1` is not the start of `12`).
        Piece::Number(range) => {
            let start = s.at;
            if !s.same(&learned[range.clone()]) || s.in_number() {
                s.at = start;
                s.number()?;
            }
            Some(())
        }
        Piece::Text(_) => {
            *text = Some(s.string()?);
            Some(())
        }
    }
}

/// The marks of the kept members' values (`pieces` of the learned chunk of `len` bytes), and
/// the members naming them. `None` when a value does not start and end at a place a chunk of
/// the shape has too (inside a hole: it cannot happen, as values start at a literal byte or a
/// hole's start and end at a hole's end or a literal byte).
fn kept_members(
    pieces: &[Piece],
    len: usize,
    spans: &[KeptSpan],
) -> Option<(Vec<Mark>, Vec<KeptMember>)> {
    let mark = |pos: usize| -> Option<Mark> {
        if pos == len {
            return Some(Mark {
                piece: pieces.len(),
                offset: 0,
            });
        }
        // The last piece starting at or before `pos`.
        let piece = pieces
            .partition_point(|p| p.start() <= pos)
            .checked_sub(1)?;
        let offset = pos - pieces[piece].start();
        match pieces[piece] {
            Piece::Literal(_) => Some(Mark { piece, offset }),
            _ if offset == 0 => Some(Mark { piece, offset }),
            _ => None,
        }
    };
    let mut marks = Vec::with_capacity(2 * spans.len());
    let mut kept = Vec::with_capacity(spans.len());
    for span in spans {
        marks.push(mark(span.value.start)?);
        marks.push(mark(span.value.end)?);
        kept.push(KeptMember {
            level: span.level,
            name: span.name.clone(),
            start: marks.len() - 2,
            end: marks.len() - 1,
        });
    }
    // Read in piece order; the members keep their own order.
    let mut order: Vec<usize> = (0..marks.len()).collect();
    order.sort_by_key(|&i| (marks[i].piece, marks[i].offset));
    let mut rank = vec![0; marks.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    for k in &mut kept {
        k.start = rank[k.start];
        k.end = rank[k.end];
    }
    let sorted = order.iter().map(|&i| marks[i]).collect();
    Some((sorted, kept))
}

/// The field of the one text in `chunk` when the chunk has the usual streamed shape.
fn usual_text(chunk: &Chunk) -> Option<TextField> {
    let Chunk {
        choices,
        usage: None,
        error: None,
        ..
    } = chunk
    else {
        return None;
    };
    let [
        Choice {
            index: 0,
            delta: Some(delta),
            finish_reason: None,
            ..
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
            ..
        } => Some(TextField::Content),
        Delta {
            content: None,
            reasoning_content: Some(_),
            reasoning: None,
            tool_calls: None,
            ..
        } => Some(TextField::ReasoningContent),
        Delta {
            content: None,
            reasoning_content: None,
            reasoning: Some(_),
            tool_calls: None,
            ..
        } => Some(TextField::Reasoning),
        _ => None,
    }
}

/// The chunk a reading of the learned shape stands for (what the full scan would have read).
#[cfg(test)]
pub(super) fn as_chunk(read: Read) -> Chunk {
    let extra = read.extra.map(|e| *e).unwrap_or_default();
    let mut delta = Delta {
        extra: extra.delta,
        ..Delta::default()
    };
    match read.field {
        TextField::Content => delta.content = Some(read.text),
        TextField::ReasoningContent => delta.reasoning_content = Some(read.text),
        TextField::Reasoning => delta.reasoning = Some(read.text),
    }
    Chunk {
        choices: vec![Choice {
            index: 0,
            delta: Some(delta),
            finish_reason: None,
            extra: extra.choice,
            raw: None,
        }],
        extra: extra.top,
        ..Chunk::default()
    }
}
