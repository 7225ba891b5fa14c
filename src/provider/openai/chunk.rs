//! The JSON of an OpenAI chunk or whole answer, read by serde into borrowed, typed structs:
//! what the decoder reads (choice 0's texts, tool calls and finish reason, the usage, an
//! in-band error) and, kept as written, what it passes back without reading ([`Members`]: the
//! chunk's, choice 0's and its delta's other members; every other choice whole).
//!
//! Texts borrow from the chunk's text unless they have escapes ([`Text`]); a member kept as
//! written is a slice of it. The usual chunk is read in one pass by [`fast`], which leaves
//! anything else to serde. [`Chunk`], [`Choice`] and [`Delta`] have visitors of their
//! own rather than a derive because they keep every member they do not know (serde's `flatten`
//! cannot hold a `RawValue`); otherwise they accept what the derive would: the same fields,
//! `message` as another name of `delta`, a repeated field refused.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::provider::Usage;
use crate::provider::passthrough::Members;

#[derive(Debug, Default)]
pub(super) struct Chunk<'a> {
    /// Choice 0: the first choice whose index is 0.
    pub(super) choice: Option<Choice<'a>>,
    /// Every choice whose index is not 0, as written (`n > 1`; passed back whole).
    pub(super) others: Vec<&'a str>,
    pub(super) usage: Option<WireUsage>,
    pub(super) error: Option<Value>,
    /// Members besides `id`, `object`, `created`, `model`, `choices`, `usage` and `error`.
    pub(super) extra: Members,
}

#[derive(Debug, Default)]
pub(super) struct Choice<'a> {
    pub(super) index: u32,
    /// Streaming chunks carry `delta`, whole answers `message`; both have the same fields.
    pub(super) delta: Option<Delta<'a>>,
    pub(super) finish_reason: Option<Text<'a>>,
    /// Members besides `index`, `delta` (`message`) and `finish_reason` (`logprobs`).
    pub(super) extra: Members,
}

#[derive(Debug, Default)]
pub(super) struct Delta<'a> {
    pub(super) content: Option<Text<'a>>,
    pub(super) reasoning_content: Option<Text<'a>>,
    pub(super) reasoning: Option<Text<'a>>,
    pub(super) tool_calls: Option<Vec<WireToolCall<'a>>>,
    /// Members besides the texts, `tool_calls` and `role` (`refusal`, `annotations`).
    pub(super) extra: Members,
}

impl Delta<'_> {
    /// True when it carries a text, reasoning or a tool call.
    pub(super) fn carries(&self) -> bool {
        let text = |t: &Option<Text>| t.as_ref().is_some_and(|t| !t.0.is_empty());
        text(&self.content)
            || text(&self.reasoning_content)
            || text(&self.reasoning)
            || self.tool_calls.as_ref().is_some_and(|c| !c.is_empty())
    }
}

/// A tool call, or a piece of one in a stream (`index` only in streams).
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireToolCall<'a> {
    #[serde(default)]
    pub(super) index: Option<u32>,
    #[serde(default, borrow)]
    pub(super) id: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub(super) function: Option<WireFunction<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct WireFunction<'a> {
    #[serde(default, borrow)]
    pub(super) name: Option<Text<'a>>,
    /// A string by the spec; some compatible servers send an object.
    #[serde(default, borrow)]
    pub(super) arguments: Option<&'a RawValue>,
}

impl WireFunction<'_> {
    /// The arguments as text: a string as it is, anything else as compact JSON.
    pub(super) fn arguments_text(&self) -> String {
        let Some(raw) = self.arguments else {
            return String::new();
        };
        if let Ok(Text(text)) = serde_json::from_str(raw.get()) {
            return text.into_owned();
        }
        serde_json::from_str::<Value>(raw.get())
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub(super) prompt_tokens: Option<u64>,
    #[serde(default)]
    pub(super) completion_tokens: Option<u64>,
    #[serde(default)]
    pub(super) prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    pub(super) completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek reports its cache hits here instead of `prompt_tokens_details`.
    #[serde(default)]
    pub(super) prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub(super) struct PromptDetails {
    #[serde(default)]
    pub(super) cached_tokens: Option<u64>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub(super) struct CompletionDetails {
    #[serde(default)]
    pub(super) reasoning_tokens: Option<u64>,
}

impl WireUsage {
    pub(super) fn normalize(&self) -> Usage {
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .unwrap_or(0);
        Usage {
            input: self.prompt_tokens.unwrap_or(0),
            output: self.completion_tokens.unwrap_or(0),
            cached_input: cached,
            cache_write: 0,
            reasoning: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            estimated: false,
        }
    }
}

/// A string, borrowed from the JSON text unless it has escapes (a member name or a text).
/// serde's own `Cow<str>` borrows only as a field marked `borrow`, never inside an `Option`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Text<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

/// Marks `field` as read; a second time is the error serde's derive gives a repeated field.
fn once<E: de::Error>(seen: &mut bool, field: &'static str) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        Err(E::duplicate_field(field))
    } else {
        Ok(())
    }
}

/// Reads the value of an unknown member into `extra`, as written.
fn keep<'de, A: MapAccess<'de>>(
    map: &mut A,
    name: &str,
    extra: &mut Members,
) -> Result<(), A::Error> {
    let raw: &'de RawValue = map.next_value()?;
    extra.push(name, raw.get());
    Ok(())
}

/// Reads a chunk or a whole answer: the usual one in one pass ([`fast`]), anything else by
/// serde ([`read_serde`]), whose error says what is wrong.
pub(super) fn read(text: &str) -> serde_json::Result<Chunk<'_>> {
    match fast::read(text) {
        Some(chunk) => Ok(chunk),
        None => read_serde(text),
    }
}

/// Reads a chunk or a whole answer with serde. Every choice is read once, in place; only when
/// one is not choice 0 (`n > 1`, rare) is the text read again to keep those choices as written.
fn read_serde(text: &str) -> serde_json::Result<Chunk<'_>> {
    let (chunk, others) = read_keeping(text, false)?;
    if others {
        return Ok(read_keeping(text, true)?.0);
    }
    Ok(chunk)
}

/// [`read`] in one pass: the chunk, and whether it has choices other than 0 (kept in
/// `others` when `keep_others`).
fn read_keeping(text: &str, keep_others: bool) -> serde_json::Result<(Chunk<'_>, bool)> {
    let mut de = serde_json::Deserializer::from_str(text);
    let read = ChunkSeed { keep_others }.deserialize(&mut de)?;
    de.end()?;
    Ok(read)
}

/// Reads a [`Chunk`], noting whether it has choices other than 0.
struct ChunkSeed {
    keep_others: bool,
}

impl<'de> DeserializeSeed<'de> for ChunkSeed {
    type Value = (Chunk<'de>, bool);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChunkSeed {
    type Value = (Chunk<'de>, bool);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Chunk")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut chunk = Chunk::default();
        let mut others = false;
        let mut seen = [false; 3];
        while let Some(Text(key)) = map.next_key()? {
            match key.as_ref() {
                "choices" => {
                    once(&mut seen[0], "choices")?;
                    let choices = map.next_value_seed(ChoicesSeed {
                        keep_others: self.keep_others,
                    })?;
                    chunk.choice = choices.first;
                    chunk.others = choices.others;
                    others = choices.any_other;
                }
                "usage" => {
                    once(&mut seen[1], "usage")?;
                    chunk.usage = map.next_value()?;
                }
                "error" => {
                    once(&mut seen[2], "error")?;
                    chunk.error = map.next_value()?;
                }
                // Said again by the front end in its own words.
                "id" | "object" | "created" | "model" => {
                    map.next_value::<IgnoredAny>()?;
                }
                name => keep(&mut map, name, &mut chunk.extra)?,
            }
        }
        Ok((chunk, others))
    }
}

/// The `choices` array: choice 0 read, the others kept as written (when asked to).
struct Choices<'a> {
    first: Option<Choice<'a>>,
    others: Vec<&'a str>,
    any_other: bool,
}

struct ChoicesSeed {
    keep_others: bool,
}

impl<'de> DeserializeSeed<'de> for ChoicesSeed {
    type Value = Choices<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChoicesSeed {
    type Value = Choices<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Choices<'de>, A::Error> {
        let mut choices = Choices {
            first: None,
            others: Vec::new(),
            any_other: false,
        };
        loop {
            // Kept: each choice read from its own text, which passes back whole when it is
            // not choice 0.
            let (choice, raw) = if self.keep_others {
                let Some(raw) = seq.next_element::<&'de RawValue>()? else {
                    break;
                };
                let choice: Choice<'de> =
                    serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                (choice, Some(raw))
            } else {
                let Some(choice) = seq.next_element::<Choice<'de>>()? else {
                    break;
                };
                (choice, None)
            };
            if choice.index != 0 {
                choices.any_other = true;
                choices.others.extend(raw.map(RawValue::get));
            } else if choices.first.is_none() {
                choices.first = Some(choice);
            }
        }
        Ok(choices)
    }
}

impl<'de> Deserialize<'de> for Choice<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ChoiceVisitor;
        impl<'de> Visitor<'de> for ChoiceVisitor {
            type Value = Choice<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct Choice")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Choice<'de>, A::Error> {
                let mut choice = Choice::default();
                let mut seen = [false; 3];
                while let Some(Text(key)) = map.next_key()? {
                    match key.as_ref() {
                        "index" => {
                            once(&mut seen[0], "index")?;
                            choice.index = map.next_value()?;
                        }
                        // One field under two names: both present is a repeat.
                        "delta" | "message" => {
                            once(&mut seen[1], "delta")?;
                            choice.delta = map.next_value()?;
                        }
                        "finish_reason" => {
                            once(&mut seen[2], "finish_reason")?;
                            choice.finish_reason = map.next_value()?;
                        }
                        name => keep(&mut map, name, &mut choice.extra)?,
                    }
                }
                Ok(choice)
            }
        }
        d.deserialize_map(ChoiceVisitor)
    }
}

impl<'de> Deserialize<'de> for Delta<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DeltaVisitor;
        impl<'de> Visitor<'de> for DeltaVisitor {
            type Value = Delta<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct Delta")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Delta<'de>, A::Error> {
                let mut delta = Delta::default();
                let mut seen = [false; 4];
                while let Some(Text(key)) = map.next_key()? {
                    match key.as_ref() {
                        "content" => {
                            once(&mut seen[0], "content")?;
                            delta.content = map.next_value()?;
                        }
                        "reasoning_content" => {
                            once(&mut seen[1], "reasoning_content")?;
                            delta.reasoning_content = map.next_value()?;
                        }
                        "reasoning" => {
                            once(&mut seen[2], "reasoning")?;
                            delta.reasoning = map.next_value()?;
                        }
                        "tool_calls" => {
                            once(&mut seen[3], "tool_calls")?;
                            delta.tool_calls = map.next_value()?;
                        }
                        // Always the assistant's: the front end says it itself.
                        "role" => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        name => keep(&mut map, name, &mut delta.extra)?,
                    }
                }
                Ok(delta)
            }
        }
        d.deserialize_map(DeltaVisitor)
    }
}

mod fast;
#[cfg(test)]
mod tests;
