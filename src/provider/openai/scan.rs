//! A fast path for reading the JSON of an OpenAI chunk or answer into [`Chunk`].
//!
//! Every token of a stream through `llmux serve` arrives as one such object, and serde_json
//! spends ~4,500 instructions on each (most of a streamed frame's cost), going through its
//! visitors for keys and values the router never reads (`id`, `object`, `created`, `model`).
//! This reads the common shape in one pass: the members [`Chunk`] has, the choice's `delta`
//! (or `message`) texts and `finish_reason`, and `usage`; the members the router does not
//! read are stepped over, and kept as written where a front end passes them back (the
//! [`Members`] of the chunk, choice and delta besides `id`, `object`, `created`, `model` and
//! `role`; every choice but choice 0 whole).
//!
//! It gives up — `None`, and the caller asks serde — on anything it does not handle the way
//! serde would: tool calls, a non-null `error`, a field name with escapes, a repeated field,
//! a number that is not a plain integer where one is wanted, an unpaired surrogate, nesting
//! deeper than [`MAX_DEPTH`], and any JSON that is not well formed. So it never decides
//! differently from serde; the differential property tests in `scan/tests.rs` hold it to that.

use super::{Choice, Chunk, CompletionDetails, Delta, PromptDetails, WireUsage};
use crate::json_text::plain_run;
use crate::provider::passthrough::Members;

mod shape;

pub(super) use shape::{Extra, Read, Shapes, TextField};
use shape::{Hole, HoleKind};

/// Nesting of skipped values beyond which the scan leaves the object to serde.
const MAX_DEPTH: usize = 32;

/// [`Chunk`] read from `text`, or `None` when serde must read it.
pub(super) fn chunk(text: &str) -> Option<Chunk> {
    Scanner::new(text).whole_chunk()
}

/// Which object of a chunk a kept member belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Chunk,
    Choice,
    Delta,
}

/// Where the full scan saw a member it keeps: its object, name and value.
#[derive(Debug, Clone)]
struct KeptSpan {
    level: Level,
    name: String,
    value: std::ops::Range<usize>,
}

/// What recording a chunk saw ([`chunk_recording`]).
struct Recorded {
    holes: Vec<Hole>,
    kept: Vec<KeptSpan>,
}

/// [`chunk`], with where the values a chunk's shape may vary in are, and the members it keeps
/// ([`shape`]).
fn chunk_recording(text: &str) -> Option<(Chunk, Recorded)> {
    let mut s = Scanner::new(text);
    s.recorded = Some(Recorded {
        holes: Vec::new(),
        kept: Vec::new(),
    });
    let chunk = s.whole_chunk()?;
    let recorded = s.recorded?;
    Some((chunk, recorded))
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
    /// Where skipped strings and numbers, the delta's texts and kept members are, when
    /// recording.
    recorded: Option<Recorded>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            at: 0,
            recorded: None,
        }
    }

    /// A chunk that is all of the text (whitespace aside).
    fn whole_chunk(&mut self) -> Option<Chunk> {
        let chunk = self.chunk()?;
        self.skip_ws();
        (self.at == self.text.len()).then_some(chunk)
    }

    /// Notes the value that started at `start` and ended here, when recording.
    fn hole(&mut self, kind: HoleKind, start: usize) {
        if let Some(r) = &mut self.recorded {
            r.holes.push(Hole {
                kind,
                start,
                end: self.at,
            });
        }
    }

    /// Steps over the value of the member `name` and keeps it in `members`, as written (a
    /// `null` is left out).
    fn keep(
        &mut self,
        level: Level,
        name: &str,
        depth: usize,
        members: &mut Members,
    ) -> Option<()> {
        self.skip_ws();
        let start = self.at;
        self.skip(depth)?;
        let value = self.text.get(start..self.at)?;
        if value != "null" {
            members.push(name, value);
            if let Some(r) = &mut self.recorded {
                r.kept.push(KeptSpan {
                    level,
                    name: name.to_string(),
                    value: start..self.at,
                });
            }
        }
        Some(())
    }

    /// A nullable text of the delta (a hole of the shape when it is a string).
    fn text_field(&mut self, field: TextField) -> Option<Option<String>> {
        self.skip_ws();
        let start = self.at;
        let text = self.nullable(Self::string)?;
        if text.is_some() {
            self.hole(HoleKind::Text(field), start);
        }
        Some(text)
    }

    /// Steps over `text` when it comes next, as it is; false (and nothing read) otherwise.
    fn same(&mut self, text: &str) -> bool {
        let end = self.at + text.len();
        let same = self.bytes().get(self.at..end) == Some(text.as_bytes());
        if same {
            self.at = end;
        }
        same
    }

    /// True when the next byte could continue a number.
    fn in_number(&self) -> bool {
        matches!(
            self.bytes().get(self.at),
            Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
        )
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes().get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes().get(self.at..end)? == word).then(|| self.at = end)
    }

    /// True (and consumed) when the next value is `null`.
    fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(true)
        } else {
            Some(false)
        }
    }

    /// Calls `member` with each key of the object that starts here (`None` for a key with
    /// escapes); `member` reads the value.
    fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Option<&'a str>) -> Option<()>,
    ) -> Option<()> {
        self.sequence(b'{', b'}', |s| {
            let key = s.key()?;
            s.expect(b':')?;
            member(s, key)
        })
    }

    /// Calls `item` for each element of the array that starts here.
    fn array(&mut self, item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.sequence(b'[', b']', item)
    }

    /// `open`, then `item`s separated by commas, then `close`.
    fn sequence(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.expect(open)?;
        if self.peek()? == close {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b if b == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An object whose keys are matched against a struct's fields: one with escapes, which
    /// serde would unescape before matching, is left to serde.
    fn fields(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.object(|s, key| field(s, key?))
    }

    /// A member name; `None` inside when it has escapes (it is read, not kept).
    fn key(&mut self) -> Option<Option<&'a str>> {
        if self.peek()? != b'"' {
            return None;
        }
        let quote = self.at;
        self.at += 1;
        let end = self.at + self.plain_run();
        if self.bytes().get(end) == Some(&b'"') {
            let key = self.text.get(quote + 1..end)?;
            self.at = end + 1;
            return Some(Some(key));
        }
        self.at = quote;
        self.skip_string()?;
        Some(None)
    }

    /// Bytes from here up to the next quote, backslash or control character.
    fn plain_run(&self) -> usize {
        plain_run(&self.bytes()[self.at..])
    }

    /// A string value, unescaped.
    fn string(&mut self) -> Option<String> {
        self.expect(b'"')?;
        let start = self.at;
        self.at += self.plain_run();
        // Quotes and backslashes are ASCII: a run ends on a character boundary.
        let run = self.text.get(start..self.at)?;
        if self.bytes().get(self.at) == Some(&b'"') {
            self.at += 1;
            return Some(run.to_string());
        }
        let mut out = run.to_string();
        loop {
            match *self.bytes().get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.at += 1;
                    out.push(self.escape()?);
                }
                _ => return None, // a raw control character: not JSON
            }
            let start = self.at;
            self.at += self.plain_run();
            out.push_str(self.text.get(start..self.at)?);
        }
    }

    /// Steps over a string value, checking it as [`Scanner::string`] does.
    fn skip_string(&mut self) -> Option<()> {
        self.expect(b'"')?;
        loop {
            self.at += self.plain_run();
            match *self.bytes().get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    self.at += 1;
                    self.escape()?;
                }
                _ => return None,
            }
        }
    }

    /// The character of the escape after a backslash.
    fn escape(&mut self) -> Option<char> {
        let byte = *self.bytes().get(self.at)?;
        self.at += 1;
        Some(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF => {
                        self.literal(b"\\u")?;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        char::from_u32(code)?
                    }
                    0xDC00..=0xDFFF => return None,
                    _ => char::from_u32(unit)?,
                }
            }
            _ => return None,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// `null` (`None`), or a value `read` reads.
    fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.null()? {
            Some(None)
        } else {
            read(self).map(Some)
        }
    }

    /// A non-negative integer written without fraction or exponent.
    fn integer(&mut self) -> Option<u64> {
        self.skip_ws();
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(&b) = self.bytes().get(self.at)
            && b.is_ascii_digit()
        {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes()[start] == b'0';
        let fraction = matches!(self.bytes().get(self.at), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !fraction).then_some(value)
    }

    /// Steps over one well-formed value of any kind.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let first = self.peek()?;
        let start = self.at;
        match first {
            b'"' => {
                self.skip_string()?;
                self.hole(HoleKind::Skipped, start);
                Some(())
            }
            b'{' => self.object(|s, _| s.skip(depth + 1)),
            b'[' => self.array(|s| s.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => {
                self.number()?;
                self.hole(HoleKind::Number, start);
                Some(())
            }
        }
    }

    /// Steps over a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.bytes().get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.bytes().get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.bytes().get(self.at) == Some(&b'.') {
            self.at += 1;
            self.required_digits()?;
        }
        if let Some(b'e' | b'E') = self.bytes().get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes().get(self.at) {
                self.at += 1;
            }
            self.required_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.bytes().get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
    }

    fn required_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    fn chunk(&mut self) -> Option<Chunk> {
        let mut chunk = Chunk::default();
        let (mut choices, mut usage, mut error) = (false, false, false);
        self.fields(|s, key| match key {
            "choices" => {
                once(&mut choices)?;
                // One choice is the rule: room for it, not the four a first push makes.
                chunk.choices.reserve_exact(1);
                s.array(|s| {
                    s.skip_ws();
                    let start = s.at;
                    let mut choice = s.choice()?;
                    if choice.index != 0 {
                        // Passed back whole; never part of a learned shape (one choice, 0).
                        choice.raw = Some(s.text.get(start..s.at)?.into());
                    }
                    chunk.choices.push(choice);
                    Some(())
                })
            }
            "usage" => {
                once(&mut usage)?;
                chunk.usage = s.nullable(Self::usage)?;
                Some(())
            }
            // An in-band error is rare and serde's to read.
            "error" => {
                once(&mut error)?;
                s.null()?.then_some(())
            }
            // Said again by the front end in its own words.
            "id" | "object" | "created" | "model" => s.skip(1),
            name => s.keep(Level::Chunk, name, 1, &mut chunk.extra),
        })?;
        Some(chunk)
    }

    fn choice(&mut self) -> Option<Choice> {
        let mut choice = Choice::default();
        let (mut index, mut delta, mut finish) = (false, false, false);
        self.fields(|s, key| match key {
            "index" => {
                once(&mut index)?;
                choice.index = u32::try_from(s.integer()?).ok()?;
                Some(())
            }
            // One field under two names: both present is a duplicate to serde.
            "delta" | "message" => {
                once(&mut delta)?;
                choice.delta = s.nullable(Self::delta)?;
                Some(())
            }
            "finish_reason" => {
                once(&mut finish)?;
                choice.finish_reason = s.nullable(Self::string)?;
                Some(())
            }
            name => s.keep(Level::Choice, name, 2, &mut choice.extra),
        })?;
        Some(choice)
    }

    fn delta(&mut self) -> Option<Delta> {
        let mut delta = Delta::default();
        let mut seen = [false; 4];
        self.fields(|s, key| match key {
            "content" => {
                once(&mut seen[0])?;
                delta.content = s.text_field(TextField::Content)?;
                Some(())
            }
            "reasoning_content" => {
                once(&mut seen[1])?;
                delta.reasoning_content = s.text_field(TextField::ReasoningContent)?;
                Some(())
            }
            "reasoning" => {
                once(&mut seen[2])?;
                delta.reasoning = s.text_field(TextField::Reasoning)?;
                Some(())
            }
            // Tool calls are serde's (arguments may be any JSON).
            "tool_calls" => {
                once(&mut seen[3])?;
                s.null()?.then_some(())
            }
            // Always the assistant's: the front end says it itself.
            "role" => s.skip(3),
            name => s.keep(Level::Delta, name, 3, &mut delta.extra),
        })?;
        Some(delta)
    }

    fn usage(&mut self) -> Option<WireUsage> {
        let mut usage = WireUsage::default();
        let mut seen = [false; 5];
        self.fields(|s, key| match key {
            "prompt_tokens" => {
                once(&mut seen[0])?;
                usage.prompt_tokens = s.nullable(Self::integer)?;
                Some(())
            }
            "completion_tokens" => {
                once(&mut seen[1])?;
                usage.completion_tokens = s.nullable(Self::integer)?;
                Some(())
            }
            "prompt_cache_hit_tokens" => {
                once(&mut seen[2])?;
                usage.prompt_cache_hit_tokens = s.nullable(Self::integer)?;
                Some(())
            }
            "prompt_tokens_details" => {
                once(&mut seen[3])?;
                usage.prompt_tokens_details = s.nullable(|s| {
                    let cached_tokens = s.one_integer("cached_tokens")?;
                    Some(PromptDetails { cached_tokens })
                })?;
                Some(())
            }
            "completion_tokens_details" => {
                once(&mut seen[4])?;
                usage.completion_tokens_details = s.nullable(|s| {
                    let reasoning_tokens = s.one_integer("reasoning_tokens")?;
                    Some(CompletionDetails { reasoning_tokens })
                })?;
                Some(())
            }
            _ => s.skip(3),
        })?;
        Some(usage)
    }

    /// An object of which only the optional integer `name` is read.
    fn one_integer(&mut self, name: &str) -> Option<Option<u64>> {
        let (mut value, mut seen) = (None, false);
        self.fields(|s, key| {
            if key == name {
                once(&mut seen)?;
                value = s.nullable(Self::integer)?;
                Some(())
            } else {
                s.skip(4)
            }
        })?;
        Some(value)
    }
}

/// Marks a member as read; `None` the second time (serde refuses a duplicate field).
fn once(seen: &mut bool) -> Option<()> {
    (!std::mem::replace(seen, true)).then_some(())
}

#[cfg(test)]
mod tests;
