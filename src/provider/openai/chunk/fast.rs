//! A one-pass reader of the usual chunk, for the path of every streamed token.
//!
//! serde_json spends ~5,100 instructions on a ~170-byte chunk (a visitor call per key and per
//! value, each key copied through its scratch buffer's logic): with it alone, a stream of 20
//! chunks through `llmux serve` took 48% more instructions and served half the streams/s at
//! c=16 (docs/performance.md). This reads the same [`Chunk`] in one pass over the bytes: member
//! names compared in place, texts borrowed, values nobody reads stepped over (and kept as
//! written where they pass back).
//!
//! It reads only what it reads exactly as serde does ([`super::read`] without it), and gives up
//! (`None`: serde reads it) on anything else: tool calls, a non-null `error`, a member name
//! with escapes, a repeated member, a number that is not a plain integer where one is read,
//! nesting deeper than [`MAX_DEPTH`], and any text that is not well-formed JSON. The property
//! tests in `tests.rs` hold it to serde.

use std::borrow::Cow;

use super::{Choice, Chunk, CompletionDetails, Delta, PromptDetails, Text, WireUsage};
use crate::provider::passthrough::Members;

/// Nesting of skipped values beyond which the reader leaves the text to serde.
const MAX_DEPTH: usize = 32;

/// `text` read as a [`Chunk`], or `None` when serde must read it.
pub(super) fn read(text: &str) -> Option<Chunk<'_>> {
    let mut c = Cursor { text, at: 0 };
    let mut chunk = Chunk::default();
    c.chunk(&mut chunk)?;
    c.skip_ws();
    (c.at == text.len()).then_some(chunk)
}

/// A place in a JSON text, moving forward as values are read.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

/// The bytes of `word` (little-endian: byte 0 lowest) that end a plain run of a JSON string
/// (`"`, `\` or a control character below 0x20), each marked by its high bit. The lowest mark
/// is exact; marks above it may be false (a borrow carries upward), so only the first counts.
fn stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte is zero ⇔ subtracting 1 borrows into its high bit while it had none.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let quote = zero(word ^ (ONES * u64::from(b'"')));
    let backslash = zero(word ^ (ONES * u64::from(b'\\')));
    // Below 0x20 ⇔ subtracting 0x20 borrows into the high bit while it had none.
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    quote | backslash | control
}

/// Marks a member as read; `None` the second time (serde refuses a repeated field).
fn once(seen: &mut bool) -> Option<()> {
    (!std::mem::replace(seen, true)).then_some(())
}

impl<'a> Cursor<'a> {
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
        // Upstreams write compact JSON: whitespace (all of it at or below b' ') is the
        // exception, so the byte at hand is looked at once before any loop.
        let byte = *self.bytes().get(self.at)?;
        if byte > b' ' {
            return Some(byte);
        }
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

    /// `null` (`None`), or a value `read` reads.
    fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.null()? {
            Some(None)
        } else {
            read(self).map(Some)
        }
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

    /// Calls `item` for each element of the array that starts here.
    fn array(&mut self, item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.sequence(b'[', b']', item)
    }

    /// Calls `member` with the name of each member of the object that starts here; `member`
    /// reads the value. A name with escapes, which serde would unescape before matching it,
    /// is left to serde.
    fn fields(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.sequence(b'{', b'}', |s| {
            let name = s.name()?;
            s.expect(b':')?;
            member(s, name)
        })
    }

    /// A member name without escapes, borrowed (`None` when it has escapes: serde's).
    fn name(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let end = self.plain_run()?;
        if self.bytes()[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }

    /// Where the string's next run of plain characters ends (at a quote or a backslash), or
    /// `None` at a control character, which JSON does not allow in a string.
    /// Eight bytes at a time in a plain `u64` ([`stops`]): the strings of a chunk are short,
    /// `memchr`'s vector search cost more to set up than it saved (~130 instructions a
    /// string), and a byte-at-a-time loop took ~6 instructions a byte.
    fn plain_run(&self) -> Option<usize> {
        let bytes = self.bytes();
        let mut at = self.at;
        while let Some(word) = bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(word.try_into().ok()?);
            let stops = stops(word);
            if stops != 0 {
                at += (stops.trailing_zeros() / 8) as usize;
                return (bytes[at] >= 0x20).then_some(at);
            }
            at += 8;
        }
        let rest = bytes.get(at..)?;
        let end = rest
            .iter()
            .position(|&b| matches!(b, b'"' | b'\\' | 0..=0x1f))?;
        (rest[end] >= 0x20).then_some(at + end)
    }

    /// A string value: borrowed from the text when it has no escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.at;
        self.at = self.plain_run()?;
        // Quotes and backslashes are ASCII: a run ends on a character boundary.
        let run = self.text.get(start..self.at)?;
        if self.bytes().get(self.at) == Some(&b'"') {
            self.at += 1;
            return Some(Cow::Borrowed(run));
        }
        let mut out = run.to_string();
        loop {
            match *self.bytes().get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(Cow::Owned(out));
                }
                _ => {
                    self.at += 1;
                    out.push(self.escape()?);
                }
            }
            let start = self.at;
            self.at = self.plain_run()?;
            out.push_str(self.text.get(start..self.at)?);
        }
    }

    /// Steps over a string value, checking it as [`Cursor::string`] does.
    fn skip_string(&mut self) -> Option<()> {
        self.expect(b'"')?;
        loop {
            self.at = self.plain_run()?;
            match *self.bytes().get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                _ => {
                    self.at += 1;
                    self.escape()?;
                }
            }
        }
    }

    /// The character of the escape after a backslash (an unpaired surrogate is left to serde).
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
            b'u' => match self.hex4()? {
                high @ 0xD800..=0xDBFF => {
                    self.literal(b"\\u")?;
                    let low = self.hex4()?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
                }
                unit => char::from_u32(unit)?,
            },
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

    /// A non-negative integer written without sign, fraction or exponent.
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

    /// Steps over one well-formed value of any kind.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.sequence(b'{', b'}', |s| {
                s.skip_string()?;
                s.expect(b':')?;
                s.skip(depth + 1)
            }),
            b'[' => self.array(|s| s.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// Steps over one value and returns it as written.
    fn raw(&mut self, depth: usize) -> Option<&'a str> {
        self.skip_ws();
        let start = self.at;
        self.skip(depth)?;
        self.text.get(start..self.at)
    }

    /// Steps over the value of the member `name` and keeps it in `members`, as written.
    fn keep(&mut self, name: &str, depth: usize, members: &mut Members) -> Option<()> {
        members.push(name, self.raw(depth)?);
        Some(())
    }

    fn text_value(&mut self) -> Option<Option<Text<'a>>> {
        self.nullable(|s| s.string().map(Text))
    }

    /// Reads the chunk into `chunk` (a default one: out-parameters spare the copies of these
    /// few-hundred-byte structs that returning them cost, ~300 instructions a chunk).
    fn chunk(&mut self, chunk: &mut Chunk<'a>) -> Option<()> {
        let mut seen = [false; 3];
        self.fields(|s, name| match name {
            "choices" => {
                once(&mut seen[0])?;
                s.array(|s| {
                    s.skip_ws();
                    let start = s.at;
                    let index = match &mut chunk.choice {
                        None => {
                            let choice = chunk.choice.insert(Choice::default());
                            s.choice(choice)?;
                            let index = choice.index;
                            if index != 0 {
                                chunk.choice = None;
                            }
                            index
                        }
                        // A later choice (`n > 1`, rare): read the same way, kept as written.
                        Some(_) => {
                            let mut later = Choice::default();
                            s.choice(&mut later)?;
                            later.index
                        }
                    };
                    if index != 0 {
                        chunk.others.push(s.text.get(start..s.at)?);
                    }
                    Some(())
                })
            }
            "usage" => {
                once(&mut seen[1])?;
                chunk.usage = s.nullable(Self::usage)?;
                Some(())
            }
            // An in-band error is rare, and serde's to read.
            "error" => {
                once(&mut seen[2])?;
                s.null()?.then_some(())
            }
            // Said again by the front end in its own words.
            "id" | "object" | "created" | "model" => s.skip(1),
            name => s.keep(name, 1, &mut chunk.extra),
        })
    }

    fn choice(&mut self, choice: &mut Choice<'a>) -> Option<()> {
        let mut seen = [false; 3];
        self.fields(|s, name| match name {
            "index" => {
                once(&mut seen[0])?;
                choice.index = u32::try_from(s.integer()?).ok()?;
                Some(())
            }
            "delta" | "message" => {
                once(&mut seen[1])?;
                if !s.null()? {
                    s.delta(choice.delta.insert(Delta::default()))?;
                }
                Some(())
            }
            "finish_reason" => {
                once(&mut seen[2])?;
                choice.finish_reason = s.text_value()?;
                Some(())
            }
            name => s.keep(name, 2, &mut choice.extra),
        })
    }

    fn delta(&mut self, delta: &mut Delta<'a>) -> Option<()> {
        let mut seen = [false; 4];
        self.fields(|s, name| match name {
            "content" => {
                once(&mut seen[0])?;
                delta.content = s.text_value()?;
                Some(())
            }
            "reasoning_content" => {
                once(&mut seen[1])?;
                delta.reasoning_content = s.text_value()?;
                Some(())
            }
            "reasoning" => {
                once(&mut seen[2])?;
                delta.reasoning = s.text_value()?;
                Some(())
            }
            // Tool calls are serde's (their arguments may be any JSON).
            "tool_calls" => {
                once(&mut seen[3])?;
                s.null()?.then_some(())
            }
            "role" => s.skip(3),
            name => s.keep(name, 3, &mut delta.extra),
        })
    }

    fn usage(&mut self) -> Option<WireUsage> {
        let mut usage = WireUsage::default();
        let mut seen = [false; 5];
        self.fields(|s, name| match name {
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

#[cfg(test)]
mod word_tests {
    use super::stops;

    /// The first stop [`stops`] marks, as a byte index.
    fn first_stop(bytes: [u8; 8]) -> Option<usize> {
        let marks = stops(u64::from_le_bytes(bytes));
        (marks != 0).then(|| (marks.trailing_zeros() / 8) as usize)
    }

    #[test]
    fn the_first_stop_in_a_word_is_found_for_every_byte_at_every_place() {
        // Each byte value at each place, with plain bytes below it and every kind of byte
        // above it (the ones above are where a borrow can mark falsely).
        for place in 0..8 {
            for byte in 0..=255u8 {
                for above in [b'a', b'"', 0x00, 0x1f, 0x20, 0xff, b'\\'] {
                    let mut word = [b'x'; 8];
                    word[place] = byte;
                    word[place + 1..].fill(above);
                    let want = word
                        .iter()
                        .position(|&b| matches!(b, b'"' | b'\\' | 0..=0x1f));
                    assert_eq!(first_stop(word), want, "{word:?}");
                }
            }
        }
    }
}
