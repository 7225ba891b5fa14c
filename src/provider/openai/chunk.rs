//! The JSON of an OpenAI chunk or whole answer, typed: what the decoder reads (choice 0's
//! texts, tool calls and finish reason, the usage, an in-band error) and, kept as written, what
//! it passes back without reading ([`Members`]: the chunk's, choice 0's and its delta's other
//! members; the raw text of every other choice).
//!
//! serde reads these through the visitors below, which match what `#[derive(Deserialize)]`
//! would accept (the same fields, `message` as another name of `delta`, a repeated field
//! refused) and keep each member they do not know as its raw JSON. The fast reader in
//! `scan` produces the same values, and its property tests hold it to these.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::provider::Usage;
use crate::provider::passthrough::Members;

#[derive(Debug, Default, PartialEq)]
pub(super) struct Chunk {
    pub(super) choices: Vec<Choice>,
    pub(super) usage: Option<WireUsage>,
    pub(super) error: Option<Value>,
    /// Members besides `id`, `object`, `created`, `model`, `choices`, `usage` and `error`.
    pub(super) extra: Members,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Choice {
    pub(super) index: u32,
    /// Streaming chunks carry `delta`, whole answers `message`; both have the same fields.
    pub(super) delta: Option<Delta>,
    pub(super) finish_reason: Option<String>,
    /// Members besides `index`, `delta` (`message`) and `finish_reason` (`logprobs`).
    pub(super) extra: Members,
    /// The choice as written, for a choice other than 0 (it is passed back whole).
    pub(super) raw: Option<Box<str>>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Delta {
    pub(super) content: Option<String>,
    pub(super) reasoning_content: Option<String>,
    pub(super) reasoning: Option<String>,
    pub(super) tool_calls: Option<Vec<WireToolCall>>,
    /// Members besides the texts, `tool_calls` and `role` (`refusal`, `annotations`).
    pub(super) extra: Members,
}

/// A tool call, or a piece of one in a stream (`index` only in streams).
#[derive(Debug, Default, PartialEq, Deserialize)]
pub(super) struct WireToolCall {
    #[serde(default)]
    pub(super) index: Option<u32>,
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) function: Option<WireFunction>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub(super) struct WireFunction {
    #[serde(default)]
    pub(super) name: Option<String>,
    /// A string by the spec; some compatible servers send an object.
    #[serde(default)]
    pub(super) arguments: Option<Value>,
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

/// A member name, borrowed from the text unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
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
    let raw: Box<RawValue> = map.next_value()?;
    extra.push(name, raw.get());
    Ok(())
}

impl<'de> Deserialize<'de> for Chunk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ChunkVisitor;
        impl<'de> Visitor<'de> for ChunkVisitor {
            type Value = Chunk;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct Chunk")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Chunk, A::Error> {
                let mut chunk = Chunk::default();
                let mut seen = [false; 3];
                while let Some(Key(key)) = map.next_key()? {
                    match key.as_ref() {
                        "choices" => {
                            once(&mut seen[0], "choices")?;
                            chunk.choices = map.next_value::<Choices>()?.0;
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
                Ok(chunk)
            }
        }
        d.deserialize_map(ChunkVisitor)
    }
}

/// The `choices` array: each choice read, and kept as written when it is not choice 0.
struct Choices(Vec<Choice>);

impl<'de> Deserialize<'de> for Choices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ChoicesVisitor;
        impl<'de> Visitor<'de> for ChoicesVisitor {
            type Value = Choices;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Choices, A::Error> {
                let mut out = Vec::with_capacity(1);
                while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
                    let mut choice: Choice =
                        serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                    if choice.index != 0 {
                        choice.raw = Some(raw.get().into());
                    }
                    out.push(choice);
                }
                Ok(Choices(out))
            }
        }
        d.deserialize_seq(ChoicesVisitor)
    }
}

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ChoiceVisitor;
        impl<'de> Visitor<'de> for ChoiceVisitor {
            type Value = Choice;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct Choice")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Choice, A::Error> {
                let mut choice = Choice::default();
                let mut seen = [false; 3];
                while let Some(Key(key)) = map.next_key()? {
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

impl<'de> Deserialize<'de> for Delta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DeltaVisitor;
        impl<'de> Visitor<'de> for DeltaVisitor {
            type Value = Delta;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct Delta")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Delta, A::Error> {
                let mut delta = Delta::default();
                let mut seen = [false; 4];
                while let Some(Key(key)) = map.next_key()? {
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
