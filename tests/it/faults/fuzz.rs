//! Property tests (fuzzing) that `sse_props` and `config::props` leave out: the Anthropic and
//! Gemini decoders on events shaped like theirs with arbitrary values, arbitrary event names
//! and JSON cut anywhere; Ollama's NDJSON; the whole pipeline (bytes → framing → decoder)
//! on mangled wire text; and the config loader on configs with arbitrary values in every
//! section. Nothing may panic, every stream ends with exactly one `Done` or error, and the
//! text out is never more than the bytes in (no allocation beyond the input).
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default, what CI runs); for a long run:
//! `PROPTEST_CASES=20000 cargo test --release --test it faults::fuzz`.

use bytes::Bytes;
use futures::StreamExt;
use llmux::config::load_str_with_env;
use llmux::provider::sse::{Framer, NdjsonSplitter, SseEvent, SseParser, WireDecoder, drive};
use llmux::provider::{
    ProviderError, StreamEvent, anthropic::AnthropicDecoder, gemini::GeminiDecoder,
    ollama::OllamaDecoder, openai::OpenAiDecoder,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 256;
/// Lossy UTF-8 decoding turns one bad byte into a three-byte replacement character.
const MAX_GROWTH: usize = 3;

/// `PROPTEST_CASES` when set, else `default`: what every property test of this binary runs.
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(DEFAULT_CASES),
        ..ProptestConfig::default()
    }
}

/// Text with what breaks naive code: controls, escapes, quotes, astral characters, nothing.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{0,8}",
        ".{0,12}",
        Just(String::new()),
        Just("\u{0}\x1b[2J\"\\\u{202e}🦀".to_string()),
    ]
}

/// A JSON value where a number is expected: any number, or the wrong type.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..100_000).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::Null),
        Just(json!("12")),
        Just(json!([1])),
    ]
}

/// Drops the keys of `v` whose bit in `mask` is clear (so events come with any subset).
fn subset(v: Value, mask: u32) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << (i % 32)) != 0)
                .map(|(_, kv)| kv)
                .collect(),
        ),
        other => other,
    }
}

fn anthropic_payload() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        prop::sample::select(vec![
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
            "ping",
            "error",
        ])
        .prop_map(str::to_string),
        ".{0,10}",
    ];
    let delta_kind = prop::sample::select(vec![
        "text_delta",
        "thinking_delta",
        "input_json_delta",
        "signature_delta",
        "",
    ]);
    let stop = prop::sample::select(vec![
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "refusal",
        "pause_turn",
        "tool_use",
        "",
    ]);
    let error_kind = prop::sample::select(vec![
        "overloaded_error",
        "rate_limit_error",
        "authentication_error",
        "invalid_request_error",
        "api_error",
        "",
    ]);
    (
        kind,
        delta_kind,
        stop,
        error_kind,
        (text(), text()),
        (number(), number(), number(), number()),
        any::<u32>(),
    )
        .prop_map(|(kind, dk, stop, ek, (t1, t2), (n1, n2, n3, n4), mask)| {
            let usage = subset(
                json!({"input_tokens": n1, "output_tokens": n2,
                       "cache_read_input_tokens": n3, "cache_creation_input_tokens": n4}),
                mask >> 8,
            );
            let v = json!({
                "type": kind,
                "index": n4,
                "message": {"id": "m", "usage": usage.clone(), "content": []},
                "content_block": {"type": "text", "text": t1},
                "delta": subset(json!({"type": dk, "text": t1, "thinking": t2,
                                        "stop_reason": stop, "partial_json": t2}), mask >> 4),
                "usage": usage,
                "error": {"type": ek, "message": t2},
            });
            // Keep `type` always; any subset of the rest.
            let mut v = subset(v, mask | 1);
            v["type"] = json!(kind);
            v
        })
}

fn gemini_payload() -> impl Strategy<Value = Value> {
    let finish = prop_oneof![
        prop::sample::select(vec![
            "STOP",
            "MAX_TOKENS",
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "FINISH_REASON_UNSPECIFIED",
            "OTHER",
        ])
        .prop_map(str::to_string),
        ".{0,8}",
    ];
    (
        finish,
        (text(), text(), any::<bool>()),
        (number(), number(), number(), number()),
        (0u32..3, any::<u32>()),
    )
        .prop_map(|(finish, (t1, t2, thought), (n1, n2, n3, n4), (index, mask))| {
            let candidate = subset(
                json!({"index": index,
                       "content": {"role": "model", "parts": [{"text": t1, "thought": thought}, {"text": t2}]},
                       "finishReason": finish}),
                mask | 2,
            );
            subset(
                json!({
                    "candidates": [candidate],
                    "usageMetadata": {"promptTokenCount": n1, "candidatesTokenCount": n2,
                                      "thoughtsTokenCount": n3, "cachedContentTokenCount": n4},
                    "promptFeedback": {"blockReason": t2},
                    "error": {"code": n1, "message": t1, "status": "UNAVAILABLE"},
                }),
                mask >> 3,
            )
        })
}

fn openai_payload() -> impl Strategy<Value = Value> {
    (text(), text(), number(), any::<u32>()).prop_map(|(t1, t2, n, mask)| {
        subset(
            json!({
                "choices": [subset(json!({"index": 0,
                    "delta": {"content": t1, "reasoning_content": t2},
                    "finish_reason": "stop"}), mask >> 8)],
                "usage": {"prompt_tokens": n, "completion_tokens": n},
                "error": {"message": t2, "code": n},
            }),
            mask,
        )
    })
}

fn ollama_payload() -> impl Strategy<Value = Value> {
    (
        (text(), text(), any::<bool>()),
        (number(), number()),
        any::<u32>(),
    )
        .prop_map(|((t1, t2, done), (n1, n2), mask)| {
            subset(
                json!({"model": "m", "created_at": "2025-01-01T00:00:00Z",
                       "message": {"role": "assistant", "content": t1, "thinking": t2},
                       "done": done, "done_reason": "stop",
                       "prompt_eval_count": n1, "eval_count": n2, "error": t2}),
                mask,
            )
        })
}

/// How a payload goes on the wire: whole, cut anywhere (a truncated event), or replaced.
fn wire_text(payload: impl Strategy<Value = Value>) -> impl Strategy<Value = String> {
    (payload, any::<prop::sample::Index>(), 0u8..10).prop_map(|(v, cut, how)| {
        let s = v.to_string();
        match how {
            0..=5 => s,
            6 | 7 => {
                let chars: Vec<char> = s.chars().collect();
                chars[..cut.index(chars.len() + 1)].iter().collect()
            }
            8 => "[DONE]".to_string(),
            _ => "{\"unterminated".to_string(),
        }
    })
}

/// An SSE event name: none, one the decoders know, or anything.
fn event_name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "message_start",
            "content_block_delta",
            "message_stop",
            "error",
            "ping",
            "message",
        ])
        .prop_map(|s| Some(s.to_string())),
        ".{0,16}".prop_map(Some),
    ]
}

/// Runs `decoder` over `events` as the stream driver does; returns the outputs (errors as
/// `Err(())`).
fn decode_all<D: WireDecoder<Item = SseEvent>>(
    mut decoder: D,
    events: &[SseEvent],
) -> Vec<Result<StreamEvent, ()>> {
    let mut out = Vec::new();
    for e in events {
        match decoder.decode_event(e) {
            Ok(evs) => out.extend(evs.into_iter().map(Ok)),
            Err(_) => {
                out.push(Err(()));
                return out;
            }
        }
        if decoder.is_done() {
            return out;
        }
    }
    match decoder.end(None) {
        Ok(evs) => out.extend(evs.into_iter().map(Ok)),
        Err(_) => out.push(Err(())),
    }
    out
}

fn is_end(e: &Result<StreamEvent, ()>) -> bool {
    matches!(e, Err(()) | Ok(StreamEvent::Done { .. }))
}

fn text_bytes(out: &[Result<StreamEvent, ()>]) -> usize {
    out.iter()
        .map(|e| match e {
            Ok(StreamEvent::Delta(t) | StreamEvent::Reasoning(t)) => t.len(),
            _ => 0,
        })
        .sum()
}

/// One terminator, last; no more text out than bytes in.
fn check_stream(out: &[Result<StreamEvent, ()>], input_bytes: usize) -> Result<(), TestCaseError> {
    prop_assert!(out.last().is_some_and(is_end), "{:?}", out);
    prop_assert_eq!(out.iter().filter(|e| is_end(e)).count(), 1, "{:?}", out);
    prop_assert!(text_bytes(out) <= input_bytes * MAX_GROWTH, "{:?}", out);
    Ok(())
}

fn sse(name: Option<String>, data: String) -> SseEvent {
    SseEvent {
        event: name,
        data,
        id: None,
    }
}

/// Runs a byte stream, cut into `pieces`, through framing and `decoder` to the end.
fn pipeline<F, D>(pieces: Vec<Vec<u8>>, framer: F, decoder: D) -> Vec<Result<StreamEvent, ()>>
where
    F: Framer,
    D: WireDecoder<Item = F::Item>,
{
    let bytes: Vec<Result<Bytes, ProviderError>> =
        pieces.into_iter().map(|p| Ok(Bytes::from(p))).collect();
    let stream = drive(futures::stream::iter(bytes), framer, decoder);
    futures::executor::block_on(stream.map(|r| r.map_err(|_| ())).collect())
}

/// Cuts `bytes` at `cuts` (any positions), for feeding in pieces.
fn cut(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for c in cuts.into_iter().chain([bytes.len()]) {
        out.push(bytes[at..c].to_vec());
        at = c;
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn anthropic_decoder_survives_any_event_names_values_and_cuts(
        events in prop::collection::vec((event_name(), wire_text(anthropic_payload())), 1..10),
    ) {
        let input: usize = events.iter().map(|(_, d)| d.len()).sum();
        let events: Vec<SseEvent> = events.into_iter().map(|(n, d)| sse(n, d)).collect();
        check_stream(&decode_all(AnthropicDecoder::new(7), &events), input)?;
    }

    #[test]
    fn gemini_decoder_survives_any_event_names_values_and_cuts(
        events in prop::collection::vec((event_name(), wire_text(gemini_payload())), 1..10),
    ) {
        let input: usize = events.iter().map(|(_, d)| d.len()).sum();
        let events: Vec<SseEvent> = events.into_iter().map(|(n, d)| sse(n, d)).collect();
        check_stream(&decode_all(GeminiDecoder::new(7), &events), input)?;
    }

    #[test]
    fn openai_decoder_survives_cut_json_and_any_event_names(
        events in prop::collection::vec(
            (event_name(), wire_text(prop_oneof![openai_payload(), gemini_payload()])),
            1..10,
        ),
    ) {
        let input: usize = events.iter().map(|(_, d)| d.len()).sum();
        let events: Vec<SseEvent> = events.into_iter().map(|(n, d)| sse(n, d)).collect();
        check_stream(&decode_all(OpenAiDecoder::new(7), &events), input)?;
    }

    #[test]
    fn ollama_ndjson_survives_any_lines_and_any_split(
        lines in prop::collection::vec(wire_text(ollama_payload()), 1..10),
        eol in prop::sample::select(vec!["\n", "\r\n"]),
        last_eol in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = lines.join(eol);
        if last_eol {
            wire.push_str(eol);
        }
        let out = pipeline(cut(wire.as_bytes(), &cuts), NdjsonSplitter::new(), OllamaDecoder::new(3));
        check_stream(&out, wire.len())?;
        // The splitter alone: every line it yields is one of ours (no line glued or lost).
        let mut splitter = NdjsonSplitter::new();
        let mut got = Vec::new();
        for piece in cut(wire.as_bytes(), &cuts) {
            got.extend(splitter.push(&piece).unwrap());
        }
        got.extend(splitter.finish());
        let expected: Vec<String> = lines.iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn the_whole_sse_pipeline_survives_mangled_wire_bytes(
        events in prop::collection::vec((event_name(), wire_text(prop_oneof![anthropic_payload(), gemini_payload(), openai_payload()])), 0..8),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        noise in prop::collection::vec(any::<u8>(), 0..64),
        noise_at in any::<prop::sample::Index>(),
        keep in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = String::new();
        for (name, data) in &events {
            if let Some(n) = name {
                wire.push_str(&format!("event: {}{eol}", n.replace(['\n', '\r'], " ")));
            }
            for line in data.split(['\n', '\r']) {
                wire.push_str(&format!("data: {line}{eol}"));
            }
            wire.push_str(eol);
        }
        // Arbitrary bytes somewhere, then the stream cut short anywhere.
        let mut bytes = wire.into_bytes();
        let at = noise_at.index(bytes.len() + 1);
        bytes.splice(at..at, noise.iter().copied());
        bytes.truncate(keep.index(bytes.len() + 1).max(bytes.len() / 2));
        let n = bytes.len();
        check_stream(&pipeline(cut(&bytes, &cuts), SseParser::new(), AnthropicDecoder::new(1)), n)?;
        check_stream(&pipeline(cut(&bytes, &cuts), SseParser::new(), GeminiDecoder::new(1)), n)?;
        check_stream(&pipeline(cut(&bytes, &cuts), SseParser::new(), OpenAiDecoder::new(1)), n)?;
    }

    #[test]
    fn configs_with_arbitrary_values_in_every_section_never_panic(
        values in prop::collection::vec(prop_oneof![
            Just("0".to_string()), Just("-1".to_string()), Just("1e309".to_string()),
            Just("18446744073709551616".to_string()), Just("~".to_string()), Just("[]".to_string()),
            Just("{}".to_string()), Just("os.environ/UNSET_FUZZ_VAR".to_string()),
            Just("\"\\u202e\\x1b\"".to_string()), Just("nan".to_string()), Just(".inf".to_string()),
            "[a-z0-9/_.-]{0,12}",
            "\\PC{0,6}".prop_map(|s| format!("{s:?}")),
        ], 24),
    ) {
        let v = |i: usize| values[i % values.len()].as_str();
        let yaml = format!(
            "model_list:\n  - model_name: {}\n    litellm_params:\n      model: {}\n      api_base: {}\n      api_key: {}\n      rpm: {}\n      tpm: {}\n      timeout: {}\n      stream_timeout: {}\n      weight: {}\n      order: {}\n      cooldown_time: {}\n      input_cost_per_token: {}\n      mock_response: {}\n      mock_tokens_per_s: {}\n    model_info: {{ id: {}, max_input_tokens: {} }}\n  - model_name: ok\n    litellm_params: {{ model: mock/ok }}\nrouter_settings:\n  num_retries: {}\n  allowed_fails: {}\n  cooldown_time: {}\n  routing_strategy: {}\n  fallbacks: [{{ok: [{}]}}]\n  timeout: {}\ngeneral_settings:\n  master_key: {}\nllmux:\n  default_model: {}\n  mid_stream_failover: {}\n",
            v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7), v(8), v(9), v(10), v(11), v(12), v(13),
            v(14), v(15), v(16), v(17), v(18), v(19), v(20), v(21), v(22), v(23), v(0)
        );
        let _ = load_str_with_env(&yaml, None, &|_| None);
        let with_mock = yaml.replacen(&format!("model: {}\n", v(1)), "model: mock/x\n", 1);
        let _ = load_str_with_env(&with_mock, None, &|_| None);
    }
}

#[test]
fn a_yaml_alias_bomb_is_refused_not_expanded() {
    let mut yaml = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = 'a';
    for n in 'b'..='i' {
        let refs = vec![format!("*{prev}"); 9].join(",");
        yaml.push_str(&format!("{n}: &{n} [{refs}]\n"));
        prev = n;
    }
    yaml.push_str("model_list:\n  - model_name: x\n    litellm_params: { model: mock/x }\n");
    let err = load_str_with_env(&yaml, None, &|_| None).unwrap_err();
    assert!(err.message.contains("repetition limit"), "{err}");
}
