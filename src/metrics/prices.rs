//! Prices: what a token costs on a deployment, and what an answer cost.
//!
//! A [`PriceTable`] is read from LiteLLM's `model_prices_and_context_window.json` format: the
//! built-in `prices.json`, then `llmux.pricing_file` merged over it. The built-in table is
//! LiteLLM's own (MIT, Copyright (c) 2023 Berri AI; see `prices.LICENSE`), cut by
//! `scripts/litellm-data.py` to the chat and embedding models of the providers llmux speaks.
//! [`PriceTable::price_for`] resolves a [`Deployment`] to a [`Price`] (config overrides
//! first, then the table by name, as LiteLLM looks names up); [`Price::cost`] turns a
//! [`Usage`] into exact [`Usd`]. A model nobody priced has no `Price`: its cost is unknown,
//! never $0.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use super::price_file::PriceJsonError;
use super::price_file::{self, ModelFacts, Number, Tier};
use crate::config::{Config, Deployment};
use crate::money::Usd;
use crate::provider::Usage;

/// The built-in price table, in LiteLLM's format.
const BUILTIN_PRICES: &str = include_str!("prices.json");

/// The documentation entry at the top of LiteLLM's file; not a model.
const SAMPLE_SPEC: &str = "sample_spec";

/// The provider of the demo deployments: only explicit prices apply to it.
const MOCK_PROVIDER: &str = "mock";

/// LiteLLM's proxy stands for any provider: its deployments take any entry's price.
const PROXY_PROVIDER: &str = "litellm_proxy";

/// llmux's own provider names and the LiteLLM provider whose entries price them: `zhipu/`
/// calls the endpoint LiteLLM calls `bigmodel/` (open.bigmodel.cn). `scripts/litellm-data.py`
/// reads this list to keep those entries in the built-in table.
const PRICED_AS: &[(&str, &str)] = &[("zhipu", "bigmodel")];

/// The `litellm_provider` names whose entries price a deployment of `provider`: its own, and
/// the one it is priced as.
fn litellm_names(provider: &str) -> impl Iterator<Item = &str> {
    let aliases = PRICED_AS
        .iter()
        .filter(move |(own, _)| *own == provider)
        .map(|(_, as_)| *as_);
    std::iter::once(provider).chain(aliases)
}

/// Tokens in a million, for "price per million tokens" displays.
const TOKENS_PER_MILLION: u64 = 1_000_000;

/// A deployment's price per token (whole picodollars: $0.00000015 is 150,000 of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Price {
    /// Uncached input (prompt) tokens.
    pub input: Usd,
    /// Output (completion) tokens that are not reasoning.
    pub output: Usd,
    /// Input tokens read from the prompt cache; `None` charges them at `input`.
    pub cache_read: Option<Usd>,
    /// Input tokens written to the prompt cache; `None` charges them at `input`.
    pub cache_write: Option<Usd>,
    /// Reasoning tokens; `None` charges them at `output`.
    pub reasoning: Option<Usd>,
}

impl Price {
    /// The cost of one answer. Unlike LiteLLM, cache reads, cache writes and reasoning tokens
    /// are each charged once, at their own rate where there is one: the plain input is what
    /// remains of `input` after the cached and cache-written tokens, the plain output what
    /// remains of `output` after the reasoning tokens.
    pub fn cost(&self, usage: &Usage) -> Usd {
        let cached = usage.cached_input.min(usage.input);
        let written = usage.cache_write.min(usage.input - cached);
        let text_in = usage.input - cached - written;
        let reasoning = usage.reasoning.min(usage.output);
        let text_out = usage.output - reasoning;
        let parts = [
            (text_in, self.input),
            (cached, self.cache_read.unwrap_or(self.input)),
            (written, self.cache_write.unwrap_or(self.input)),
            (text_out, self.output),
            (reasoning, self.reasoning.unwrap_or(self.output)),
        ];
        parts.iter().map(|&(tokens, rate)| rate.times(tokens)).sum()
    }

    /// Price of a million uncached input tokens, for tables.
    pub fn input_per_million(&self) -> Usd {
        self.input.times(TOKENS_PER_MILLION)
    }

    /// Price of a million output tokens, for tables.
    pub fn output_per_million(&self) -> Usd {
        self.output.times(TOKENS_PER_MILLION)
    }
}

/// A price file that could not be used; the message names it.
#[derive(Debug, thiserror::Error)]
pub enum PriceFileError {
    #[error("{}: cannot read price file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: PriceJsonError,
    },
}

/// `llmux.pricing_file` names a price file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("llmux.pricing_file: {0}")]
pub struct PricingFileError(pub PriceFileError);

/// What the table knows about one model name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    input: Option<Usd>,
    output: Option<Usd>,
    cache_read: Option<Usd>,
    cache_write: Option<Usd>,
    reasoning: Option<Usd>,
    max_input_tokens: Option<u64>,
    /// `litellm_provider`: whose model this is; `None` fits every provider.
    provider: Option<Box<str>>,
}

impl Entry {
    /// The entry's price, when it has an input or output rate (a missing one of the two is 0,
    /// as in LiteLLM).
    fn price(&self) -> Option<Price> {
        if self.input.is_none() && self.output.is_none() {
            return None;
        }
        Some(Price {
            input: self.input.unwrap_or_default(),
            output: self.output.unwrap_or_default(),
            cache_read: self.cache_read,
            cache_write: self.cache_write,
            reasoning: self.reasoning,
        })
    }

    /// One model's facts in our units; a price that is not a non-negative number of dollars,
    /// or a count that is not a whole number, is absent.
    ///
    /// A model priced only by `tiered_pricing` (Dashscope's Qwen models: LiteLLM bills every
    /// token of a request at the one tier its input tokens fall in) takes its first tier's
    /// rates, what LiteLLM bills a prompt up to that tier's end (32k to 256k tokens); llmux
    /// does not switch tiers by prompt size (docs/prices.md).
    fn from_facts(facts: ModelFacts) -> Entry {
        let dollars = |n: Number| n.0.and_then(Usd::from_dollars_f64);
        let count = facts
            .max_input_tokens
            .0
            .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n < u64::MAX as f64)
            .map(|n| n as u64);
        let first_tier = facts
            .tiered_pricing
            .0
            .into_iter()
            .filter(|t| t.input_cost_per_token.0.is_some())
            .filter_map(|t| Some((t.range.start?, t)))
            .min_by(|(a, _), (b, _)| a.total_cmp(b))
            .map(|(_, t)| t)
            .filter(|_| facts.input_cost_per_token.0.is_none());
        let rate = |own: Number, tier: fn(&Tier) -> Number| {
            first_tier
                .as_ref()
                .map(tier)
                .filter(|n| n.0.is_some())
                .map_or_else(|| dollars(own), dollars)
        };
        Entry {
            input: rate(facts.input_cost_per_token, |t| t.input_cost_per_token),
            output: rate(facts.output_cost_per_token, |t| t.output_cost_per_token),
            cache_read: rate(facts.cache_read_input_token_cost, |t| {
                t.cache_read_input_token_cost
            }),
            cache_write: rate(facts.cache_creation_input_token_cost, |t| {
                t.cache_creation_input_token_cost
            }),
            reasoning: rate(facts.output_cost_per_reasoning_token, |t| {
                t.output_cost_per_reasoning_token
            }),
            max_input_tokens: count,
            provider: facts.litellm_provider.0,
        }
    }

    /// Whether this entry prices a deployment of `provider`: as LiteLLM's
    /// `_check_provider_match`, an entry of another provider does not, except under LiteLLM's
    /// proxy and for the entries LiteLLM files as `<provider>-<kind>`
    /// (`fireworks_ai-embedding-models`).
    fn serves(&self, provider: &str) -> bool {
        let Some(own) = self.provider.as_deref() else {
            return true;
        };
        provider == PROXY_PROVIDER
            || litellm_names(provider).any(|name| {
                own == name
                    || own
                        .strip_prefix(name)
                        .is_some_and(|kind| kind.starts_with('-'))
            })
    }
}

/// Model names → prices and context windows, in LiteLLM's price-table format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceTable {
    entries: HashMap<String, Entry>,
}

impl PriceTable {
    /// An empty table: every lookup falls back to config overrides.
    pub fn new() -> PriceTable {
        PriceTable::default()
    }

    /// Parses LiteLLM's `model_prices_and_context_window.json` format: an object of model
    /// names to objects. Unknown fields, `sample_spec`, and entries without prices are
    /// tolerated; only text that is not a JSON object is an error.
    pub fn from_json(text: &str) -> Result<PriceTable, PriceJsonError> {
        let entries = price_file::parse(text)?
            .into_iter()
            .filter(|(name, _)| name != SAMPLE_SPEC)
            .map(|(name, facts)| (name, Entry::from_facts(facts)))
            .collect();
        Ok(PriceTable { entries })
    }

    /// Reads a price file; the error names the file.
    pub fn load(path: &Path) -> Result<PriceTable, PriceFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| PriceFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        PriceTable::from_json(&text).map_err(|source| PriceFileError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The embedded table of common models (parsed once per process).
    pub fn builtin() -> PriceTable {
        static BUILTIN: OnceLock<PriceTable> = OnceLock::new();
        BUILTIN
            .get_or_init(|| PriceTable::from_json(BUILTIN_PRICES).unwrap_or_default())
            .clone()
    }

    /// The table a config prices with: the built-in one with `llmux.pricing_file` merged over
    /// it. The error names the file and what is wrong with it.
    pub fn for_config(config: &Config) -> Result<PriceTable, PricingFileError> {
        PriceTable::builtin().with_pricing_file(config)
    }

    /// `self` with `llmux.pricing_file` merged over it, when the config names one.
    pub fn with_pricing_file(mut self, config: &Config) -> Result<PriceTable, PricingFileError> {
        if let Some(path) = &config.app.pricing_file {
            let extra = PriceTable::load(path).map_err(PricingFileError)?;
            self.merge(extra);
        }
        Ok(self)
    }

    /// Entries of `other` replace ours by name (a user's file over the built-in one).
    pub fn merge(&mut self, other: PriceTable) {
        self.entries.extend(other.entries);
    }

    /// Number of model names in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The price of one model name exactly as the table spells it.
    pub fn get(&self, name: &str) -> Option<Price> {
        self.entries.get(name).and_then(Entry::price)
    }

    /// The price of a deployment. Config overrides win field by field; a deployment that
    /// overrides only one of input and output takes the other from the table (0 when the
    /// table has none). Without an input or output override, the table is searched by name
    /// (see [`PriceTable::candidates`]); nothing found → `None`, the cost is unknown.
    pub fn price_for(&self, d: &Deployment) -> Option<Price> {
        let from_table = self.find(d, Entry::price);
        let input = d.input_cost_per_token.and_then(Usd::from_dollars_f64);
        let output = d.output_cost_per_token.and_then(Usd::from_dollars_f64);
        let mut price = match (from_table, input.is_some() || output.is_some()) {
            (Some(p), _) => p,
            (None, true) => Price::default(),
            (None, false) => return None,
        };
        if let Some(v) = input {
            price.input = v;
        }
        if let Some(v) = output {
            price.output = v;
        }
        let overrides = [
            (&mut price.cache_read, d.cache_read_input_token_cost),
            (&mut price.cache_write, d.cache_creation_input_token_cost),
            (&mut price.reasoning, d.output_cost_per_reasoning_token),
        ];
        for (slot, value) in overrides {
            if let Some(v) = value.and_then(Usd::from_dollars_f64) {
                *slot = Some(v);
            }
        }
        Some(price)
    }

    /// The context window of a deployment: its own `max_input_tokens`, else the table's.
    pub fn max_input_tokens(&self, d: &Deployment) -> Option<u64> {
        d.max_input_tokens
            .or_else(|| self.find(d, |e| e.max_input_tokens))
    }

    /// The first of a deployment's names for which `pick` finds something.
    fn find<T>(&self, d: &Deployment, pick: impl Fn(&Entry) -> Option<T>) -> Option<T> {
        candidates(d).into_iter().find_map(|(name, any_provider)| {
            self.entries
                .get(&name)
                .filter(|e| any_provider || e.serves(&d.provider))
                .and_then(&pick)
        })
    }
}

/// The names a deployment is looked up by, in order, each with whether an entry of any
/// provider will do: `base_model` (also without its provider prefix; the user named it, so
/// any), then, only from entries of the deployment's own provider, in LiteLLM's order
/// (`_model_cost_lookup_order`): `{provider}/{model}` (LiteLLM keys Gemini, Groq, DeepSeek…
/// that way; also under the name it is [`PRICED_AS`]), `litellm_model` as written
/// (`qwen/qwen-max`), and the bare `model` (`gpt-4o`). So `hosted_vllm/gpt-4o` is not priced
/// as OpenAI's `gpt-4o`, as in LiteLLM. A `mock/` deployment is priced only through
/// `base_model`, so the demo never borrows a real model's price.
fn candidates(d: &Deployment) -> Vec<(String, bool)> {
    let mut names = Vec::new();
    if let Some(base) = d.base_model.as_deref() {
        names.push((base.to_string(), true));
        if let Some((_, bare)) = base.split_once('/') {
            names.push((bare.to_string(), true));
        }
    }
    if d.provider != MOCK_PROVIDER {
        for provider in litellm_names(&d.provider) {
            names.push((format!("{provider}/{}", d.model), false));
        }
        names.push((d.litellm_model.clone(), false));
        names.push((d.model.clone(), false));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input,
            output,
            ..Usage::default()
        }
    }

    #[test]
    fn plain_tokens_at_plain_rates() {
        let price = Price {
            input: Usd::from_pico(150_000),
            output: Usd::from_pico(600_000),
            ..Price::default()
        };
        // 1000 × 150_000 + 500 × 600_000
        assert_eq!(price.cost(&usage(1000, 500)).pico(), 450_000_000);
        assert_eq!(price.cost(&Usage::default()), Usd::ZERO);
    }

    #[test]
    fn cached_written_and_reasoning_tokens_at_their_own_rates() {
        let price = Price {
            input: Usd::from_pico(3_000_000),
            output: Usd::from_pico(15_000_000),
            cache_read: Some(Usd::from_pico(300_000)),
            cache_write: Some(Usd::from_pico(3_750_000)),
            reasoning: Some(Usd::from_pico(20_000_000)),
        };
        let u = Usage {
            input: 10_000,
            output: 2_000,
            cached_input: 6_000,
            cache_write: 1_000,
            reasoning: 500,
            estimated: false,
        };
        let expected = 3_000 * 3_000_000   // plain input
            + 6_000 * 300_000              // cache reads
            + 1_000 * 3_750_000            // cache writes
            + 1_500 * 15_000_000           // plain output
            + 500 * 20_000_000; //            reasoning
        assert_eq!(price.cost(&u).pico(), expected);
    }

    #[test]
    fn missing_special_rates_fall_back_to_the_plain_ones() {
        let price = Price {
            input: Usd::from_pico(1_000),
            output: Usd::from_pico(4_000),
            ..Price::default()
        };
        let u = Usage {
            input: 100,
            output: 10,
            cached_input: 40,
            cache_write: 10,
            reasoning: 5,
            estimated: false,
        };
        assert_eq!(price.cost(&u).pico(), 100 * 1_000 + 10 * 4_000);
    }

    #[test]
    fn inconsistent_usage_never_underflows() {
        let price = Price {
            input: Usd::from_pico(1),
            output: Usd::from_pico(1),
            cache_read: Some(Usd::from_pico(0)),
            ..Price::default()
        };
        let u = Usage {
            input: 10,
            output: 1,
            cached_input: 50,
            cache_write: 50,
            reasoning: 9,
            estimated: false,
        };
        // All 10 input tokens are cached (free), the one output token is reasoning.
        assert_eq!(price.cost(&u).pico(), 1);
    }

    #[test]
    fn per_million_prices() {
        let price = Price {
            input: Usd::from_pico(150_000),
            output: Usd::from_pico(600_000),
            ..Price::default()
        };
        assert_eq!(price.input_per_million().to_string(), "$0.15");
        assert_eq!(price.output_per_million().to_string(), "$0.60");
    }

    #[test]
    fn the_builtin_table_parses_and_prices_common_models() {
        let table = PriceTable::builtin();
        let priced = table
            .entries
            .values()
            .filter(|e| e.price().is_some())
            .count();
        assert!(priced >= 800, "only {priced} priced models");
        let mini = table.get("gpt-4o-mini").unwrap();
        assert_eq!((mini.input.pico(), mini.output.pico()), (150_000, 600_000));
        assert!(table.get("claude-sonnet-4-5").unwrap().cache_read.is_some());
        assert!(table.get("gemini/gemini-2.5-flash").is_some());
        // Only the providers llmux speaks: a bedrock model is not in it.
        assert!(table.entries.keys().all(|k| !k.starts_with("bedrock/")));
    }

    #[test]
    fn bad_files_are_errors() {
        let list = PriceTable::from_json("[1, 2]").unwrap_err();
        assert!(matches!(list, PriceJsonError::NotAnObject), "{list}");
        assert_eq!(
            list.to_string(),
            "expected a JSON object of model names to prices"
        );
        let cut = PriceTable::from_json("{").unwrap_err();
        assert!(matches!(cut, PriceJsonError::Syntax(_)), "{cut}");
        assert!(cut.to_string().starts_with("not valid JSON: "), "{cut}");
        let err = PriceTable::load(Path::new("/nonexistent/prices.json")).unwrap_err();
        assert!(matches!(err, PriceFileError::Read { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("/nonexistent/prices.json: cannot read price file: "),
            "{err}"
        );
    }

    #[test]
    fn odd_values_are_skipped_not_fatal() {
        let table = PriceTable::from_json(
            r#"{"a": {"input_cost_per_token": "0.000001", "output_cost_per_token": -1,
                      "max_input_tokens": 1.5, "litellm_provider": 7,
                      "supported_regions": ["global"], "mode": null},
                "b": "not an object",
                "c": {"output_cost_per_token": {"nested": [1, {"x": true}]}},
                "d": [1, {"input_cost_per_token": 1}],
                "e": null,
                "f": {"max_input_tokens": "8192", "litellm_provider": "openai",
                      "input_cost_per_token": false}}"#,
        )
        .unwrap();
        let a = table.get("a").unwrap();
        assert_eq!((a.input.pico(), a.output.pico()), (1_000_000, 0));
        assert_eq!(table.entries["a"].max_input_tokens, None);
        assert_eq!(table.entries["a"].provider, None);
        assert_eq!(table.get("b"), None);
        assert_eq!(table.get("c"), None);
        assert!(!table.entries.contains_key("d") && !table.entries.contains_key("e"));
        let f = &table.entries["f"];
        assert_eq!((f.max_input_tokens, f.input), (Some(8192), None));
        assert_eq!(f.provider.as_deref(), Some("openai"));
    }
}
