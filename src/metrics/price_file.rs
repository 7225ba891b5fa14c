//! LiteLLM's `model_prices_and_context_window.json` format, read in one pass: an object of
//! model names to objects, of which only the fields llmux prices with are kept.
//!
//! Text enters through [`parse`]; out come the model names with their [`ModelFacts`], as
//! written (dollars per token, tokens), for `prices` to turn into its own units. The file is
//! read as LiteLLM's own is written, quirks included: numbers written as strings, objects where
//! a number is documented, entries that are not objects (all skipped, never fatal); every other
//! field is skipped without being built, which keeps the embedded table's start-up cost low.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What one model's entry says, in the file's own units; `None` for a field absent or
/// unusable.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ModelFacts {
    pub input_cost_per_token: Number,
    pub output_cost_per_token: Number,
    pub cache_read_input_token_cost: Number,
    pub cache_creation_input_token_cost: Number,
    pub output_cost_per_reasoning_token: Number,
    pub max_input_tokens: Number,
    pub litellm_provider: Text,
    /// `tiered_pricing`: rates by the request's input tokens (Dashscope's models).
    pub tiered_pricing: Tiers,
}

/// One tier of `tiered_pricing`: its rates, and the input tokens it applies to
/// (`range: [start, end]`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Tier {
    pub input_cost_per_token: Number,
    pub output_cost_per_token: Number,
    pub cache_read_input_token_cost: Number,
    pub cache_creation_input_token_cost: Number,
    pub output_cost_per_reasoning_token: Number,
    pub range: Range,
}

/// A list of tiers; anything else reads as none, and so does a tier that is not an object.
#[derive(Debug, Default)]
pub struct Tiers(pub Vec<Tier>);

/// A tier's `range: [start, end]`: its start, when it is a number.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Range {
    pub start: Option<f64>,
}

/// Why the text of a price file is not one.
#[derive(Debug, thiserror::Error)]
pub enum PriceJsonError {
    #[error("not valid JSON: {0}")]
    Syntax(serde_json::Error),
    #[error("expected a JSON object of model names to prices")]
    NotAnObject,
}

/// Parses the whole file: model names to what their entries say. Only text that is not a
/// JSON object of entries is an error.
pub fn parse(text: &str) -> Result<HashMap<String, ModelFacts>, PriceJsonError> {
    let models: HashMap<String, MaybeEntry> = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            PriceJsonError::NotAnObject
        } else {
            PriceJsonError::Syntax(e)
        }
    })?;
    Ok(models
        .into_iter()
        .filter_map(|(name, entry)| Some((name, entry.0?)))
        .collect())
}

/// A JSON number, or a string holding one; anything else reads as absent.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Number(pub Option<f64>);

/// A JSON string; anything else reads as absent.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Text(pub Option<Box<str>>);

/// An entry that is an object, else nothing (`"b": "not an object"` is skipped).
struct MaybeEntry(Option<ModelFacts>);

/// A scalar JSON value.
enum Scalar<'a> {
    Number(f64),
    Str(&'a str),
    Other,
}

/// A value read from whatever JSON stands where it is expected: a scalar is judged by
/// `scalar`, an object by `object` and a list by `list` (each skipped whole unless
/// overridden).
trait Lenient<'de>: Sized {
    const WHAT: &'static str;

    fn scalar(v: Scalar) -> Option<Self>;

    fn object<A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        IgnoredAny::deserialize(MapAccessDeserializer::new(map))?;
        Ok(None)
    }

    fn list<A: SeqAccess<'de>>(seq: A) -> Result<Option<Self>, A::Error> {
        IgnoredAny::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(None)
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Lenient<'de>> Visitor<'de> for LenientVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::WHAT)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<T>, E> {
        Ok(T::scalar(Scalar::Number(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<T>, E> {
        Ok(T::scalar(Scalar::Number(v as f64)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<T>, E> {
        Ok(T::scalar(Scalar::Number(v as f64)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
        Ok(T::scalar(Scalar::Str(v)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<T>, E> {
        Ok(T::scalar(Scalar::Other))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(T::scalar(Scalar::Other))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        T::list(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::object(map)
    }
}

fn lenient<'de, T: Lenient<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_any(LenientVisitor(PhantomData))
}

impl Lenient<'_> for f64 {
    const WHAT: &'static str = "a number";

    fn scalar(v: Scalar) -> Option<f64> {
        match v {
            Scalar::Number(n) => Some(n),
            Scalar::Str(s) => s.trim().parse().ok(),
            Scalar::Other => None,
        }
    }
}

impl Lenient<'_> for Box<str> {
    const WHAT: &'static str = "a string";

    fn scalar(v: Scalar) -> Option<Box<str>> {
        match v {
            Scalar::Str(s) => Some(Box::from(s)),
            Scalar::Number(_) | Scalar::Other => None,
        }
    }
}

impl<'de> Lenient<'de> for ModelFacts {
    const WHAT: &'static str = "a model's object";

    fn scalar(_: Scalar) -> Option<ModelFacts> {
        None
    }

    fn object<A: MapAccess<'de>>(map: A) -> Result<Option<ModelFacts>, A::Error> {
        ModelFacts::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

impl<'de> Lenient<'de> for Tiers {
    const WHAT: &'static str = "a list of tiers";

    fn scalar(_: Scalar) -> Option<Tiers> {
        None
    }

    fn list<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Tiers>, A::Error> {
        let mut tiers = Vec::new();
        while let Some(tier) = seq.next_element::<MaybeTier>()? {
            tiers.extend(tier.0);
        }
        Ok(Some(Tiers(tiers)))
    }
}

impl<'de> Lenient<'de> for Tier {
    const WHAT: &'static str = "a tier's object";

    fn scalar(_: Scalar) -> Option<Tier> {
        None
    }

    fn object<A: MapAccess<'de>>(map: A) -> Result<Option<Tier>, A::Error> {
        Tier::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

impl<'de> Lenient<'de> for Range {
    const WHAT: &'static str = "a range [start, end]";

    fn scalar(_: Scalar) -> Option<Range> {
        None
    }

    fn list<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Range>, A::Error> {
        let start = seq.next_element::<Number>()?.and_then(|n| n.0);
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Some(Range { start }))
    }
}

/// A tier that is an object, else nothing.
struct MaybeTier(Option<Tier>);

impl<'de> Deserialize<'de> for MaybeTier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MaybeTier, D::Error> {
        lenient(d).map(MaybeTier)
    }
}

impl<'de> Deserialize<'de> for Tiers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tiers, D::Error> {
        lenient(d).map(|t| t.unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for Range {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Range, D::Error> {
        lenient(d).map(|r| r.unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Number, D::Error> {
        lenient(d).map(Number)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        lenient(d).map(Text)
    }
}

impl<'de> Deserialize<'de> for MaybeEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MaybeEntry, D::Error> {
        lenient(d).map(MaybeEntry)
    }
}
