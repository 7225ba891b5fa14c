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

use super::{ChatRequest, EventStream, ProviderError, StreamEvent, Usage, estimate_prompt_tokens};
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
    let opened = tokio::time::Instant::now();
    Ok(Box::pin(
        futures::stream::unfold(state, move |(mut tokens, sent, finished)| async move {
            if finished {
                return None;
            }
            match tokens.next() {
                Some(token) => {
                    // Paced against the clock, not token to token, so a high rate is not
                    // slowed by the timer's millisecond resolution; nothing due, no sleep.
                    let due = opened + ttft + gap.mul_f64(sent as f64);
                    if due > tokio::time::Instant::now() {
                        tokio::time::sleep_until(due).await;
                    }
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
        })
        .flat_map(futures::stream::iter),
    ))
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

const SUBJECTS: [&str; 8] = [
    "the router",
    "each deployment",
    "a fallback",
    "the cooldown",
    "every retry",
    "the fast group",
    "a slow provider",
    "the prompt cache",
];
const VERBS: [&str; 8] = [
    "keeps",
    "measures",
    "balances",
    "routes",
    "waits for",
    "skips",
    "prefers",
    "reports",
];
const OBJECTS: [&str; 8] = [
    "the healthy deployment",
    "its own latency",
    "the first token",
    "each request",
    "the error rate",
    "the cheapest model",
    "a steady stream",
    "the token budget",
];
const TAILS: [&str; 8] = [
    "under load",
    "across providers",
    "before the deadline",
    "when a limit is hit",
    "without a restart",
    "in a few milliseconds",
    "for every group",
    "",
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

/// `count` tokens of plausible prose: a heading, paragraphs, a list, and sometimes a short
/// code block, as blocks separated by blank lines.
fn generate(rng: &mut impl RngExt, count: usize) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    let mut words = 0;
    if count >= MIN_TOKENS_FOR_HEADING {
        blocks.push(format!("## {}", pick(rng, &TITLES)));
        words += count_words(&blocks[0]);
    }
    let mut code_used = false;
    while words < count {
        let left = count - words;
        let code = pick(rng, &CODE_BLOCKS);
        // Code never opens the answer: it follows some prose.
        let block = if !code_used
            && blocks.len() >= 2
            && left > count_words(code) + MIN_WORDS_AFTER_CODE
            && rng.random::<f64>() < CODE_BLOCK_CHANCE
        {
            code_used = true;
            code.to_string()
        } else if blocks.len() % 3 == 2 {
            let items: Vec<String> = (0..rng.random_range(2..=4))
                .map(|_| format!("- {}", capitalize(&phrase(rng))))
                .collect();
            items.join("\n")
        } else {
            let sentences: Vec<String> = (0..rng.random_range(1..=3))
                .map(|_| sentence(rng))
                .collect();
            sentences.join(" ")
        };
        // A block that does not fit would be cut mid-sentence (a newcomer reads that as a
        // broken stream): the rest is whole sentences of exactly the words left.
        let block = if count_words(&block) <= left {
            block
        } else {
            closing_paragraph(rng, left)
        };
        words += count_words(&block);
        blocks.push(block);
    }
    split_tokens(&blocks.join("\n\n"))
}

/// Fewer words than this after a code block would cut the answer right after it.
const MIN_WORDS_AFTER_CODE: usize = 4;

fn pick<'a>(rng: &mut impl RngExt, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or_default()
}

/// Runs of non-whitespace: the tokens a block adds to the answer.
fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// An object and its tail: "the first token before the deadline".
fn phrase(rng: &mut impl RngExt) -> String {
    let tail = pick(rng, &TAILS);
    let object = pick(rng, &OBJECTS);
    join_phrase(object, tail)
}

/// An object and its tail, which may be empty.
fn join_phrase(object: &str, tail: &str) -> String {
    if tail.is_empty() {
        object.to_string()
    } else {
        format!("{object} {tail}")
    }
}

/// Subject, verb and phrase as a sentence, capitalized, with its full stop.
fn join_sentence(subject: &str, verb: &str, phrase: &str) -> String {
    capitalize(&format!("{subject} {verb} {phrase}."))
}

/// "The router waits for the first token before the deadline."
fn sentence(rng: &mut impl RngExt) -> String {
    let subject = pick(rng, &SUBJECTS);
    let verb = pick(rng, &VERBS);
    join_sentence(subject, verb, &phrase(rng))
}

/// Short sentences for the last one to four words of an answer, by length.
const CLOSERS: [&str; 4] = [
    "Done.",
    "That's all.",
    "Hope this helps.",
    "That is the plan.",
];
/// The longest sentence `sentence_of` is asked for; longer rests are split.
const MAX_SENTENCE_WORDS: usize = 13;
/// Where a long rest is split: leaves at least five words, which a sentence can always take.
const SPLIT_SENTENCE_WORDS: usize = 8;

/// Whole sentences of exactly `words` words in one paragraph.
fn closing_paragraph(rng: &mut impl RngExt, mut words: usize) -> String {
    let mut sentences = Vec::new();
    while words > MAX_SENTENCE_WORDS {
        sentences.push(sentence_of(rng, SPLIT_SENTENCE_WORDS));
        words -= SPLIT_SENTENCE_WORDS;
    }
    sentences.push(sentence_of(rng, words));
    sentences.join(" ")
}

/// One sentence of exactly `words` words (1 to [`MAX_SENTENCE_WORDS`]): a closer for up to
/// four, else subject, verb, object and tail chosen among the combinations of that length.
fn sentence_of(rng: &mut impl RngExt, words: usize) -> String {
    if let Some(closer) = words.checked_sub(1).and_then(|i| CLOSERS.get(i)) {
        return closer.to_string();
    }
    let lengths = |parts: &[&str]| parts.iter().map(|p| count_words(p)).collect::<Vec<_>>();
    let (s, v, o, t) = (
        lengths(&SUBJECTS),
        lengths(&VERBS),
        lengths(&OBJECTS),
        lengths(&TAILS),
    );
    let mut fitting = Vec::new();
    for (si, sl) in s.iter().enumerate() {
        for (vi, vl) in v.iter().enumerate() {
            for (oi, ol) in o.iter().enumerate() {
                for (ti, tl) in t.iter().enumerate() {
                    if sl + vl + ol + tl == words {
                        fitting.push((si, vi, oi, ti));
                    }
                }
            }
        }
    }
    let Some(&(si, vi, oi, ti)) = fitting.choose(rng) else {
        // No combination has that length (the word lists changed): closers, whole.
        return closing_closers(words);
    };
    join_sentence(
        SUBJECTS[si],
        VERBS[vi],
        &join_phrase(OBJECTS[oi], TAILS[ti]),
    )
}

/// `words` words of closers, the longest first.
fn closing_closers(mut words: usize) -> String {
    let mut out = Vec::new();
    while words > 0 {
        let n = words.min(CLOSERS.len());
        out.push(CLOSERS[n - 1]);
        words -= n;
    }
    out.join(" ")
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
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
        for count in [0, 1, 5, 12, 13, 25, 60, 300].repeat(100) {
            let tokens = generate(&mut rng, count);
            assert_eq!(tokens.len(), count, "count {count}");
            let text = tokens.concat();
            assert_eq!(text.matches("```").count() % 2, 0, "{text}");
            if count >= MIN_TOKENS_FOR_HEADING {
                assert!(text.starts_with("## "), "{text}");
            }
            // No sentence is cut: every paragraph ends with its full stop.
            for block in text.split("\n\n") {
                let prose = !block.is_empty()
                    && !block.starts_with("## ")
                    && !block.starts_with("- ")
                    && !block.starts_with("```");
                assert!(!prose || block.ends_with('.'), "cut: {block:?} in {text}");
            }
        }
        let a = generate(&mut rng, 60).concat();
        let b = generate(&mut rng, 60).concat();
        let c = generate(&mut rng, 60).concat();
        assert!(a != b || b != c, "answers vary per request");
    }

    #[test]
    fn closing_paragraphs_have_exactly_the_words_asked() {
        let mut rng = rand::rng();
        for words in 1..=60 {
            for _ in 0..20 {
                let text = closing_paragraph(&mut rng, words);
                assert_eq!(count_words(&text), words, "{text}");
                assert!(text.ends_with('.'), "{text}");
            }
        }
        assert_eq!(closing_closers(6), "That is the plan. That's all.");
        // Every length up to the longest is one sentence of the word lists, not closers.
        for words in 5..=MAX_SENTENCE_WORDS {
            let s = sentence_of(&mut rng, words);
            assert_eq!((count_words(&s), s.matches('.').count()), (words, 1), "{s}");
        }
    }
}
