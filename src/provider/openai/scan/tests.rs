use proptest::prelude::*;

use super::super::Chunk;
use super::chunk;

/// What serde makes of `text`, the reference the scan must agree with.
fn serde(text: &str) -> Option<Chunk> {
    serde_json::from_str(text).ok()
}

/// The scan reads `text` itself, and reads it as serde does.
fn scanned(text: &str) -> Chunk {
    let fast = chunk(text).unwrap_or_else(|| panic!("the scan gave up on {text}"));
    assert_eq!(Some(&fast), serde(text).as_ref(), "{text}");
    fast
}

#[test]
fn reads_the_chunks_of_a_stream_and_a_whole_answer() {
    let role = scanned(
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    );
    assert_eq!(
        role.choices[0]
            .delta
            .as_ref()
            .and_then(|d| d.content.as_deref()),
        Some("")
    );
    let text = scanned(
        r#"{"choices":[{"index":0,"delta":{"content":"line one\nline \"two\" \\ caf\u00e9 \ud83e\udd8a /\/\t"},"finish_reason":null}]}"#,
    );
    assert_eq!(
        text.choices[0]
            .delta
            .as_ref()
            .and_then(|d| d.content.as_deref()),
        Some("line one\nline \"two\" \\ café 🦊 //\t")
    );
    let reasoning =
        scanned(r#"{"choices":[{"index":0,"delta":{"content":null,"reasoning_content":"hmm"}}]}"#);
    assert_eq!(
        reasoning.choices[0]
            .delta
            .as_ref()
            .and_then(|d| d.reasoning_content.as_deref()),
        Some("hmm")
    );
    scanned(r#"{"choices":[{"index":0,"delta":{"reasoning":"so"},"finish_reason":null}]}"#);
    let finish = scanned(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#);
    assert_eq!(finish.choices[0].finish_reason.as_deref(), Some("stop"));
    let usage = scanned(
        r#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32,"prompt_tokens_details":{"cached_tokens":8,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":5,"accepted_prediction_tokens":0}}}"#,
    );
    let u = usage.usage.as_ref().map(|u| u.normalize());
    assert_eq!(
        u.map(|u| (u.input, u.output, u.cached_input, u.reasoning)),
        Some((12, 20, 8, 5))
    );
    scanned(r#"{"choices":[],"usage":{"prompt_tokens":3,"prompt_cache_hit_tokens":2}}"#);
    let answer = scanned(
        " {\n  \"id\": \"chatcmpl-2\", \"object\": \"chat.completion\", \"created\": 0,\n  \"choices\": [ {\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"Hi.\", \"annotations\": []}, \"logprobs\": null, \"finish_reason\": \"stop\"} ],\n  \"usage\": {\"prompt_tokens\": 1, \"completion_tokens\": 2}, \"service_tier\": \"default\", \"error\": null, \"x\": [1.5e-3, -0, true, false, {\"y\": [[]]}]\n} ",
    );
    assert_eq!(
        answer.choices[0]
            .delta
            .as_ref()
            .and_then(|d| d.content.as_deref()),
        Some("Hi.")
    );
}

#[test]
fn leaves_to_serde_what_it_does_not_read_as_serde_would() {
    for text in [
        // Read by serde, not by the scan.
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
        r#"{"error":{"message":"overloaded","code":529}}"#,
        r#"{"choices":[{"delta":{"cont\u0065nt":"escaped key"}}]}"#,
        r#"{"choices":[],"x":"\ud800 unpaired, but ignored by serde"}"#,
        r#"[[], null, null]"#,
        // Refused by serde too.
        r#"{"choices":[],"choices":[]}"#,
        r#"{"choices":[{"delta":{},"message":{}}]}"#,
        r#"{"choices":[{"index":1.0}]}"#,
        r#"{"choices":[{"index":01}]}"#,
        r#"{"choices":[{"index":-1}]}"#,
        r#"{"choices":[{"index":4294967296}]}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551616}}"#,
        r#"{"choices":null}"#,
        r#"{"choices":[{"finish_reason":3}]}"#,
        "{\"choices\":[{\"delta\":{\"content\":\"raw	tab\"}}]}",
        r#"{"choices":[{"delta":{"content":"bad \x escape"}}]}"#,
        r#"{"choices":[]} trailing"#,
        r#"{"choices":[],}"#,
        r#"{"x":01}"#,
        r#"{"x":1.}"#,
        r#"{"x":nul}"#,
        r#"{"choices":[{"delta":{"content":"unterminated}}]}"#,
        "",
    ] {
        assert_eq!(chunk(text), None, "{text}");
    }
}

/// A JSON value kept as written: member order, number spelling and duplicates are the
/// test's to choose, unlike `serde_json::Value`.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// How a value is written: whitespace between tokens, and whether every non-ASCII character
/// is escaped (`\uXXXX`, as Python's `json.dumps` does by default).
#[derive(Debug, Clone)]
struct Style {
    space: &'static str,
    ascii: bool,
}

fn write(json: &Json, style: &Style, out: &mut String) {
    match json {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::Text(t) => write_text(t, style, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(style.space);
                write(item, style, out);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(style.space);
                write_text(key, style, out);
                out.push(':');
                out.push_str(style.space);
                write(value, style, out);
            }
            out.push_str(style.space);
            out.push('}');
        }
    }
}

fn write_text(text: &str, style: &Style, out: &mut String) {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    if !style.ascii {
        out.push_str(&quoted);
        return;
    }
    for c in quoted.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
}

fn number() -> impl Strategy<Value = Json> {
    "-?(0|[1-9][0-9]{0,5})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?".prop_map(Json::Number)
}

fn integer(max: u64) -> impl Strategy<Value = Json> {
    (0..=max).prop_map(|n| Json::Number(n.to_string()))
}

/// Any text: quotes, backslashes, control characters, non-ASCII and astral characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{0,12}",
        any::<String>(),
        "[\"\\\\/\\n\\t\\u{0}-\\u{1f}é🦊]{0,6}",
    ]
}

fn optional_text() -> impl Strategy<Value = Json> {
    prop_oneof![Just(Json::Null), text().prop_map(Json::Text)]
}

/// Values the router never reads, nested a little.
fn junk() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number(),
        text().prop_map(Json::Text),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((text(), inner), 0..4).prop_map(Json::Object),
        ]
    })
}

/// Members no struct of the chunk has (so never a duplicate of one it has).
fn junk_members(max: usize) -> impl Strategy<Value = Vec<(String, Json)>> {
    prop::collection::vec(("x_[a-z_]{0,6}", junk()), 0..=max)
}

/// An object of some of `members` (each kept or not) and some junk, in any order.
fn object(members: Vec<BoxedStrategy<Option<(String, Json)>>>) -> impl Strategy<Value = Json> {
    (members, junk_members(2))
        .prop_flat_map(|(members, junk)| {
            let all: Vec<_> = members.into_iter().flatten().chain(junk).collect();
            Just(all).prop_shuffle()
        })
        .prop_map(Json::Object)
}

fn maybe(
    key: &'static str,
    value: impl Strategy<Value = Json> + 'static,
) -> BoxedStrategy<Option<(String, Json)>> {
    prop::option::of(value.prop_map(move |v| (key.to_string(), v))).boxed()
}

fn delta() -> impl Strategy<Value = Json> {
    object(vec![
        maybe("role", Just(Json::Text("assistant".into()))),
        maybe("content", optional_text()),
        maybe("reasoning_content", optional_text()),
        maybe("reasoning", optional_text()),
        maybe("tool_calls", Just(Json::Null)),
        maybe("refusal", Just(Json::Null)),
    ])
}

fn choice() -> impl Strategy<Value = Json> {
    let body = prop_oneof![Just("delta"), Just("message")];
    (body, delta()).prop_flat_map(|(name, delta)| {
        object(vec![
            maybe("index", integer(3)),
            maybe(name, prop_oneof![Just(Json::Null), Just(delta)]),
            maybe("finish_reason", optional_text()),
            maybe("logprobs", prop_oneof![Just(Json::Null), junk()]),
        ])
    })
}

fn details(name: &'static str) -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        object(vec![
            maybe(name, prop_oneof![Just(Json::Null), integer(u64::MAX)]),
            maybe("audio_tokens", integer(9)),
        ]),
    ]
}

fn usage() -> impl Strategy<Value = Json> {
    let count = || prop_oneof![Just(Json::Null), integer(u64::MAX)];
    prop_oneof![
        Just(Json::Null),
        object(vec![
            maybe("prompt_tokens", count()),
            maybe("completion_tokens", count()),
            maybe("total_tokens", count()),
            maybe("prompt_cache_hit_tokens", count()),
            maybe("prompt_tokens_details", details("cached_tokens")),
            maybe("completion_tokens_details", details("reasoning_tokens")),
        ]),
    ]
}

/// Chunks and answers of the shape the scan reads, written in any style.
fn chunk_text() -> impl Strategy<Value = String> {
    let chunk = object(vec![
        maybe("id", text().prop_map(Json::Text)),
        maybe("object", Just(Json::Text("chat.completion.chunk".into()))),
        maybe("created", integer(2_000_000_000)),
        maybe("model", text().prop_map(Json::Text)),
        maybe(
            "choices",
            prop::collection::vec(choice(), 0..3).prop_map(Json::Array),
        ),
        maybe("usage", usage()),
        maybe("error", Just(Json::Null)),
    ]);
    let style = (
        prop_oneof![Just(""), Just(" "), Just("\n  "), Just("\t")],
        any::<bool>(),
    )
        .prop_map(|(space, ascii)| Style { space, ascii });
    (chunk, style).prop_map(|(chunk, style)| {
        let mut out = String::new();
        write(&chunk, &style, &mut out);
        out
    })
}

/// One small edit: a character taken out, put in (mostly one JSON cares about) or replaced.
fn edit(text: &str, at: usize, op: u8, with: char) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return with.to_string();
    }
    let at = at % chars.len();
    match op % 3 {
        0 => {
            chars.remove(at);
        }
        1 => chars.insert(at, with),
        _ => chars[at] = with,
    }
    chars.into_iter().collect()
}

fn json_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(r#"{}[]:,"\ 0123456789.eE+-untrlfasx/"#.chars().collect::<Vec<_>>()),
        any::<char>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every chunk of the shape it handles is read by the scan, exactly as serde reads it.
    #[test]
    fn reads_its_shape_as_serde_does(text in chunk_text()) {
        let fast = chunk(&text);
        prop_assert!(fast.is_some(), "the scan gave up on {}", text);
        prop_assert_eq!(fast, serde(&text), "{}", text);
    }

    /// Damaged or unusual JSON: whatever the scan accepts, serde accepts and reads the same.
    #[test]
    fn never_disagrees_with_serde(
        text in chunk_text(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), json_char()), 1..4),
    ) {
        let mut text = text;
        for (at, op, with) in edits {
            text = edit(&text, at, op, with);
        }
        if let Some(fast) = chunk(&text) {
            prop_assert_eq!(Some(fast), serde(&text), "{}", text);
        }
    }
}
