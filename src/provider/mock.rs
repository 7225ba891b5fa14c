//! The built-in demo provider (`mock/`, DESIGN.md §2): no network, no key.
//!
//! A [`Deployment`] with [`MockParams`] and a [`ChatRequest`] enter [`open`]. With probability
//! `error_rate` the request fails before any token (after a short part of `ttft`) with the
//! configured HTTP status; otherwise the stream waits `ttft`, then yields the answer a token
//! at a time at `tokens_per_s` (a token is a word with its leading whitespace), then usage
//! and `Done`. The answer is `response` when set, else `tokens` words of generated prose with
//! a little markdown, different on every request. Waiting uses `tokio::time::sleep`, so tests
//! with paused time run it instantly.

use std::time::Duration;

use futures::StreamExt;
use rand::RngExt;
use rand::seq::IndexedRandom;

use super::{
    ChatRequest, EventStream, ProviderError, StreamEvent, Usage, estimate_prompt_tokens,
};
use crate::config::{Deployment, MockParams};

/// The status of a simulated failure when `mock_error` is unset.
pub const DEFAULT_MOCK_ERROR_STATUS: u16 = 500;
/// The message of a simulated failure.
pub const MOCK_ERROR_MESSAGE: &str = "mock deployment failure (mock_error_rate)";
/// A simulated failure arrives after this fraction of the time to first token.
const ERROR_TTFT_FRACTION: f64 = 0.25;
/// The finish reason of a mock answer.
const FINISH_REASON: &str = "stop";
/// Answers at least this long get a heading.
const MIN_TOKENS_FOR_HEADING: usize = 12;
/// Chance that an answer with room for it carries a short code block.
const CODE_BLOCK_CHANCE: f64 = 0.35;

/// Starts a mock answer (see the module docs).
pub async fn open(
    deployment: &Deployment,
    request: &ChatRequest,
) -> Result<EventStream, ProviderError> {
    let params = deployment.mock.clone().unwrap_or_default();
    // Every random choice is made here, before any await: the thread RNG is not `Send`.
    let plan = plan(&params);
    if plan.fail {
        tokio::time::sleep(params.ttft.mul_f64(ERROR_TTFT_FRACTION)).await;
        return Err(ProviderError::from_http(
            params.error.unwrap_or(DEFAULT_MOCK_ERROR_STATUS),
            MOCK_ERROR_MESSAGE,
            None,
        ));
    }
    let input = estimate_prompt_tokens(&request.messages);
    let gap = token_gap(params.tokens_per_s);
    let state = (plan.tokens.into_iter(), 0u64, false);
    let ttft = params.ttft;
    Ok(Box::pin(futures::stream::unfold(
        state,
        move |(mut tokens, sent, finished)| async move {
            if finished {
                return None;
            }
            match tokens.next() {
                Some(token) => {
                    tokio::time::sleep(if sent == 0 { ttft } else { gap }).await;
                    let event = Ok(StreamEvent::Delta(token));
                    Some((vec![event], (tokens, sent + 1, false)))
                }
                None => {
                    let usage = Usage {
                        input,
                        output: sent,
                        ..Usage::default()
                    };
                    let done = StreamEvent::Done {
                        finish_reason: Some(FINISH_REASON.to_string()),
                    };
                    Some((
                        vec![Ok(StreamEvent::Usage(usage)), Ok(done)],
                        (tokens, sent, true),
                    ))
                }
            }
        },
    )
    .flat_map(futures::stream::iter)))
}

/// What one request will do, decided up front.
struct Plan {
    fail: bool,
    tokens: Vec<String>,
}

fn plan(params: &MockParams) -> Plan {
    let mut rng = rand::rng();
    let rate = params.error_rate;
    // NaN and out-of-range rates are read as "never" and "always".
    let fail = rate >= 1.0 || (rate > 0.0 && rng.random::<f64>() < rate);
    let tokens = match &params.response {
        Some(text) => split_tokens(text),
        None => generate(&mut rng, params.tokens as usize),
    };
    Plan { fail, tokens }
}

/// The pause between tokens; none when the rate is not a positive number.
fn token_gap(tokens_per_s: f64) -> Duration {
    if tokens_per_s.is_finite() && tokens_per_s > 0.0 {
        Duration::from_secs_f64(1.0 / tokens_per_s)
    } else {
        Duration::ZERO
    }
}

/// Splits text into tokens that are a word with its leading whitespace; joined again, they
/// are exactly `text`.
pub fn split_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() && in_word {
            tokens.push(std::mem::take(&mut current));
            in_word = false;
        }
        in_word |= !c.is_whitespace();
        current.push(c);
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

const WORDS: [&str; 48] = [
    "router", "latency", "token", "stream", "fallback", "deployment", "request", "model",
    "cooldown", "retry", "budget", "provider", "answer", "window", "context", "cache", "quota",
    "metric", "signal", "queue", "the", "a", "every", "each", "quickly", "safely", "under",
    "load", "keeps", "routes", "measures", "balances", "holds", "sends", "waits", "for",
    "with", "across", "healthy", "slow", "fast", "cheap", "steady", "first", "second", "group",
    "limit", "error",
];
const TITLES: [&str; 6] = [
    "How routing works",
    "A short answer",
    "What happens next",
    "Latency and cost",
    "The plan",
    "Notes on fallbacks",
];
const CODE_BLOCKS: [&str; 3] = [
    "```rust\nlet pick = group.healthy().min_by_key(|d| d.latency);\n```",
    "```python\nreply = route(request, retries=2)\n```",
    "```sh\nllmux ask -m fast \"hello\"\n```",
];

/// `count` tokens of plausible prose with a heading, a list and sometimes a code block.
fn generate(rng: &mut impl RngExt, count: usize) -> Vec<String> {
    let mut text = String::new();
    let mut words = 0;
    let push = |text: &mut String, piece: &str, words: &mut usize| {
        text.push_str(piece);
        *words += split_tokens(piece).len();
    };
    if count >= MIN_TOKENS_FOR_HEADING {
        let title = TITLES.choose(rng).copied().unwrap_or(TITLES[0]);
        push(&mut text, &format!("## {title}\n\n"), &mut words);
    }
    let mut code_used = false;
    let mut block = 0;
    while words < count {
        let left = count - words;
        let code = CODE_BLOCKS.choose(rng).copied().unwrap_or(CODE_BLOCKS[0]);
        let code_len = split_tokens(code).len();
        if !code_used && left > code_len + 4 && rng.random::<f64>() < CODE_BLOCK_CHANCE {
            push(&mut text, &format!("\n\n{code}\n\n"), &mut words);
            code_used = true;
        } else if block % 3 == 1 {
            for _ in 0..rng.random_range(2..=4) {
                let item = sentence(rng, 3, 6);
                push(&mut text, &format!("\n- {item}"), &mut words);
            }
            text.push_str("\n\n");
        } else {
            for _ in 0..rng.random_range(1..=3) {
                let s = sentence(rng, 6, 14);
                push(&mut text, &format!(" {s}."), &mut words);
            }
            text.push_str("\n\n");
        }
        block += 1;
    }
    let mut tokens = split_tokens(text.trim());
    tokens.truncate(count);
    // A cut inside a code block would leave it open; close it.
    if tokens.iter().filter(|t| t.contains("```")).count() % 2 == 1
        && let Some(last) = tokens.last_mut()
    {
        last.push_str("\n```");
    }
    tokens
}

/// A capitalized sentence of `min..=max` words, without its full stop.
fn sentence(rng: &mut impl RngExt, min: usize, max: usize) -> String {
    let n = rng.random_range(min..=max);
    let mut s = String::new();
    for i in 0..n {
        let w = WORDS.choose(rng).copied().unwrap_or(WORDS[0]);
        if i == 0 {
            let mut chars = w.chars();
            if let Some(first) = chars.next() {
                s.extend(first.to_uppercase());
                s.push_str(chars.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(w);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_the_text() {
        let text = "Hello  world\n\n- a list\n```rust\nx\n```";
        let tokens = split_tokens(text);
        assert_eq!(tokens.concat(), text);
        assert_eq!(tokens[0], "Hello");
        assert_eq!(tokens[1], "  world");
    }

    #[test]
    fn generated_answers_have_the_asked_length_and_markdown() {
        let mut rng = rand::rng();
        for count in [0, 1, 5, 12, 60, 300] {
            let tokens = generate(&mut rng, count);
            assert_eq!(tokens.len(), count, "count {count}");
            let text = tokens.concat();
            assert_eq!(text.matches("```").count() % 2, 0, "{text}");
            if count >= MIN_TOKENS_FOR_HEADING {
                assert!(text.starts_with("## "), "{text}");
            }
        }
        let a = generate(&mut rng, 60).concat();
        let b = generate(&mut rng, 60).concat();
        let c = generate(&mut rng, 60).concat();
        assert!(a != b || b != c, "answers vary per request");
    }
}
