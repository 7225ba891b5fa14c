use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{Chunk, Members, Text, fast, read, read_serde};

fn text(t: &Option<Text>) -> Value {
    t.as_ref().map_or(Value::Null, |Text(t)| json!(t))
}

/// The members as an object; as their text where serde_json's tree refuses what its reader
/// steps over (an unpaired surrogate, a number out of range).
fn members(m: &Members) -> Value {
    serde_json::from_str(&format!("{{{}}}", m.as_str())).unwrap_or_else(|_| json!(m.as_str()))
}

/// What a chunk read says, as one JSON value to compare.
fn observed(chunk: &Chunk) -> Value {
    let choice = chunk.choice.as_ref().map(|c| {
        let delta = c.delta.as_ref().map(|d| {
            json!({
                "content": text(&d.content),
                "reasoning_content": text(&d.reasoning_content),
                "reasoning": text(&d.reasoning),
                "extra": members(&d.extra),
            })
        });
        json!({
            "index": c.index,
            "finish_reason": text(&c.finish_reason),
            "delta": delta,
            "extra": members(&c.extra),
        })
    });
    let others: Vec<Value> = chunk
        .others
        .iter()
        .map(|raw| serde_json::from_str(raw).unwrap_or_default())
        .collect();
    let usage = chunk.usage.as_ref().map(|u| {
        let u = u.normalize();
        json!([u.input, u.output, u.cached_input, u.reasoning])
    });
    json!({
        "choice": choice,
        "others": others,
        "usage": usage,
        "error": chunk.error,
        "extra": members(&chunk.extra),
    })
}

/// Everything a chunk read says, texts as read and what passes back byte for byte: what the
/// one-pass reader must agree with serde on.
fn exact(chunk: &Chunk) -> String {
    format!("{:?} {:?}", observed(chunk), chunk)
}

/// The one-pass reader reads `text` itself, as serde reads it.
fn fast_reads(text: &str) -> Chunk<'_> {
    let chunk = fast::read(text).unwrap_or_else(|| panic!("the one-pass reader gave up on {text}"));
    let serde = read_serde(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(exact(&chunk), exact(&serde), "{text}");
    chunk
}

/// The members of `object` other than `known`, without the nulls.
fn rest(object: &Value, known: &[&str]) -> Value {
    let mut out = Map::new();
    for (k, v) in object.as_object().into_iter().flatten() {
        if !known.contains(&k.as_str()) && !v.is_null() {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// What a chunk read must say, worked out from its JSON tree.
fn expected(v: &Value) -> Value {
    let index = |c: &Value| c.get("index").and_then(Value::as_u64).unwrap_or(0);
    let choices = v["choices"].as_array().cloned().unwrap_or_default();
    let choice = choices.iter().find(|c| index(c) == 0).map(|c| {
        let d = c.get("delta").or_else(|| c.get("message")).unwrap_or(&Value::Null);
        let delta = (!d.is_null()).then(|| {
            json!({
                "content": d["content"],
                "reasoning_content": d["reasoning_content"],
                "reasoning": d["reasoning"],
                "extra": rest(d, &["content", "reasoning_content", "reasoning", "tool_calls", "role"]),
            })
        });
        json!({
            "index": 0,
            "finish_reason": c["finish_reason"],
            "delta": delta,
            "extra": rest(c, &["index", "delta", "message", "finish_reason"]),
        })
    });
    let others: Vec<Value> = choices.into_iter().filter(|c| index(c) != 0).collect();
    let u = &v["usage"];
    let usage = (!u.is_null()).then(|| {
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        let cached = u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .or(u["prompt_cache_hit_tokens"].as_u64())
            .unwrap_or(0);
        json!([
            n(&u["prompt_tokens"]),
            n(&u["completion_tokens"]),
            cached,
            n(&u["completion_tokens_details"]["reasoning_tokens"]),
        ])
    });
    json!({
        "choice": choice,
        "others": others,
        "usage": usage,
        "error": v["error"],
        "extra": rest(v, &["id", "object", "created", "model", "choices", "usage", "error"]),
    })
}

/// Reads `text`, which must read, and checks the reading against its JSON tree (and the
/// one-pass reader's against serde's, where it reads it).
fn reads(text: &str) -> Chunk<'_> {
    let chunk = read(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    if let Some(fast) = fast::read(text) {
        assert_eq!(
            exact(&fast),
            exact(&read_serde(text).unwrap_or_default()),
            "{text}"
        );
    }
    let tree: Value = serde_json::from_str(text).unwrap_or_default();
    assert_eq!(observed(&chunk), expected(&tree), "{text}");
    chunk
}

fn content<'a>(chunk: &'a Chunk) -> Option<&'a str> {
    let delta = chunk.choice.as_ref()?.delta.as_ref()?;
    delta.content.as_ref().map(|Text(t)| t.as_ref())
}

#[test]
fn reads_the_chunks_of_a_stream_and_a_whole_answer() {
    let role = fast_reads(
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    );
    assert_eq!(content(&role), Some(""));
    assert_eq!(
        role.extra.as_str(),
        r#""system_fingerprint":"fp_0ba0d124f1""#
    );
    let escaped = fast_reads(
        r#"{"choices":[{"index":0,"delta":{"content":"line one\nline \"two\" \\ caf\u00e9 \ud83e\udd8a /\/\t"},"finish_reason":null}]}"#,
    );
    assert_eq!(
        content(&escaped),
        Some("line one\nline \"two\" \\ café 🦊 //\t")
    );
    let plain = fast_reads(r#"{"choices":[{"index":0,"delta":{"content":"a token"}}]}"#);
    let borrowed = plain.choice.as_ref().and_then(|c| c.delta.as_ref());
    assert!(
        matches!(
            borrowed.and_then(|d| d.content.as_ref()),
            Some(Text(std::borrow::Cow::Borrowed("a token")))
        ),
        "a text without escapes is borrowed, not copied"
    );
    fast_reads(r#"{"choices":[{"index":0,"delta":{"content":null,"reasoning_content":"hmm"}}]}"#);
    fast_reads(r#"{"choices":[{"index":0,"delta":{"reasoning":"so"},"finish_reason":null}]}"#);
    let finish = fast_reads(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#);
    assert!(matches!(
        finish.choice.and_then(|c| c.finish_reason),
        Some(Text(r)) if r == "stop"
    ));
    let usage = fast_reads(
        r#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32,"prompt_tokens_details":{"cached_tokens":8,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":5,"accepted_prediction_tokens":0}}}"#,
    );
    let u = usage.usage.as_ref().map(|u| u.normalize());
    assert_eq!(
        u.map(|u| (u.input, u.output, u.cached_input, u.reasoning)),
        Some((12, 20, 8, 5))
    );
    fast_reads(r#"{"choices":[],"usage":{"prompt_tokens":3,"prompt_cache_hit_tokens":2}}"#);
    let answer = fast_reads(
        " {\n  \"id\": \"chatcmpl-2\", \"object\": \"chat.completion\", \"created\": 0,\n  \"choices\": [ {\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"Hi.\", \"annotations\": []}, \"logprobs\": null, \"finish_reason\": \"stop\"} ],\n  \"usage\": {\"prompt_tokens\": 1, \"completion_tokens\": 2}, \"service_tier\": \"default\", \"error\": null, \"x\": [1.5e-3, -0, true, false, {\"y\": [[]]}]\n} ",
    );
    assert_eq!(content(&answer), Some("Hi."));
    let error = reads(r#"{"error":{"message":"overloaded","code":529}}"#);
    assert_eq!(
        error.error,
        Some(json!({"message": "overloaded", "code": 529}))
    );
}

/// What is passed back is kept as it was written, whitespace and number spelling included;
/// only nulls are left out.
#[test]
fn keeps_what_it_does_not_read_as_written() {
    let chunk = reads(
        "{\"x\" : [1.50, {\"a\" :1}],\"choices\":[ {\"index\":1,\"delta\": {\"content\":\"b\"} },\
         {\"index\":0,\"logprobs\":{ \"content\" :[] },\"delta\":{\"refusal\":null,\"we\\\"ird\":2e3}},\
         {\"index\":0,\"delta\":{\"content\":\"a second choice 0 is dropped\"}},{\"index\":2}],\
         \"null\":null}",
    );
    assert_eq!(chunk.extra.as_str(), r#""x":[1.50, {"a" :1}]"#);
    let choice = chunk.choice.as_ref().map(|c| &c.extra);
    assert_eq!(
        choice.map(Members::as_str),
        Some(r#""logprobs":{ "content" :[] }"#)
    );
    let delta = chunk.choice.as_ref().and_then(|c| c.delta.as_ref());
    assert_eq!(delta.map(|d| d.extra.as_str()), Some(r#""we\"ird":2e3"#));
    assert_eq!(
        chunk.others,
        [r#"{"index":1,"delta": {"content":"b"} }"#, r#"{"index":2}"#]
    );
}

/// What the one-pass reader leaves to serde, serde reads.
#[test]
fn leaves_the_unusual_to_serde() {
    for text in [
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{}"}}]}}]}"#,
        r#"{"error":{"message":"overloaded","code":529}}"#,
        r#"{"choices":[{"index":0,"delta":{"cont\u0065nt":"an escaped name"}}]}"#,
        r#"{"choices":[],"x":"\ud800 unpaired, stepped over by serde"}"#,
        &format!(
            r#"{{"choices":[],"x":{}1{}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        ),
    ] {
        assert!(fast::read(text).is_none(), "{text}");
        assert!(read(text).is_ok(), "{text}");
    }
}

#[test]
fn refuses_what_a_derived_reader_would_refuse() {
    for text in [
        r#"{"choices":[],"choices":[]}"#,
        r#"{"choices":[{"delta":{},"message":{}}]}"#,
        r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
        r#"{"choices":[{"index":1.0}]}"#,
        r#"{"choices":[{"index":01}]}"#,
        r#"{"choices":[{"index":-1}]}"#,
        r#"{"choices":[{"index":4294967296}]}"#,
        r#"{"choices":[{"index":1,"delta":{"content":1}}]}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551616}}"#,
        r#"{"usage":{"prompt_tokens":"3"}}"#,
        r#"{"usage":{"prompt_tokens":-0}}"#,
        r#"{"choices":null}"#,
        r#"{"choices":[{"finish_reason":3}]}"#,
        "{\"choices\":[{\"delta\":{\"content\":\"raw\ttab\"}}]}",
        r#"{"choices":[{"delta":{"content":"bad \x escape"}}]}"#,
        r#"{"choices":[{"delta":{"content":"\ud800 unpaired"}}]}"#,
        r#"{"choices":[]} trailing"#,
        r#"{"choices":[],}"#,
        r#"{"x":01}"#,
        r#"{"x":1.}"#,
        r#"{"x":nul}"#,
        r#"{"choices":[{"delta":{"content":"unterminated}}]}"#,
        r#"[[], null, null]"#,
        "",
    ] {
        assert!(fast::read(text).is_none(), "{text}");
        assert!(read(text).is_err(), "{text}");
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
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{0,12}",
        any::<String>(),
        "[\"\\\\/\\n\\t\\u{0}-\\u{1f}é🦊]{0,6}",
    ]
}

fn optional_text() -> impl Strategy<Value = Json> {
    prop_oneof![Just(Json::Null), any_text().prop_map(Json::Text)]
}

/// Values the router never reads, nested a little.
fn junk() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number(),
        any_text().prop_map(Json::Text),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((any_text(), inner), 0..4).prop_map(Json::Object),
        ]
    })
}

/// Members no struct of the chunk has, each name once (a repeated name is a client's to
/// read as it likes); with `USUAL`, names without escapes.
fn junk_members<const USUAL: bool>(max: usize) -> impl Strategy<Value = Vec<(String, Json)>> {
    let name = if USUAL {
        "x_[a-z_]{0,6}"
    } else {
        "x_[a-z_\"\\\\]{0,6}"
    };
    prop::collection::btree_map(name, junk(), 0..=max).prop_map(|m| m.into_iter().collect())
}

/// An object of some of `members` (each kept or not) and some junk, in any order.
fn object<const USUAL: bool>(
    members: Vec<BoxedStrategy<Option<(String, Json)>>>,
) -> impl Strategy<Value = Json> {
    (members, junk_members::<USUAL>(2))
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

fn delta<const USUAL: bool>() -> impl Strategy<Value = Json> {
    object::<USUAL>(vec![
        maybe("role", Just(Json::Text("assistant".into()))),
        maybe("content", optional_text()),
        maybe("reasoning_content", optional_text()),
        maybe("reasoning", optional_text()),
        maybe("tool_calls", Just(Json::Null)),
        maybe("refusal", Just(Json::Null)),
    ])
}

fn choice<const USUAL: bool>() -> impl Strategy<Value = Json> {
    let body = prop_oneof![Just("delta"), Just("message")];
    (body, delta::<USUAL>()).prop_flat_map(|(name, delta)| {
        object::<USUAL>(vec![
            maybe("index", integer(3)),
            maybe(name, prop_oneof![Just(Json::Null), Just(delta)]),
            maybe("finish_reason", optional_text()),
            maybe("logprobs", prop_oneof![Just(Json::Null), junk()]),
        ])
    })
}

fn details<const USUAL: bool>(name: &'static str) -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        object::<USUAL>(vec![
            maybe(name, prop_oneof![Just(Json::Null), integer(u64::MAX)]),
            maybe("audio_tokens", integer(9)),
        ]),
    ]
}

fn usage<const USUAL: bool>() -> impl Strategy<Value = Json> {
    let count = || prop_oneof![Just(Json::Null), integer(u64::MAX)];
    prop_oneof![
        Just(Json::Null),
        object::<USUAL>(vec![
            maybe("prompt_tokens", count()),
            maybe("completion_tokens", count()),
            maybe("total_tokens", count()),
            maybe("prompt_cache_hit_tokens", count()),
            maybe("prompt_tokens_details", details::<USUAL>("cached_tokens")),
            maybe(
                "completion_tokens_details",
                details::<USUAL>("reasoning_tokens")
            ),
        ]),
    ]
}

/// Chunks and answers of every shape the decoder reads, written in any style; with `USUAL`,
/// only those the one-pass reader reads (no in-band error, no escaped member names).
fn chunk_text<const USUAL: bool>() -> impl Strategy<Value = String> {
    let error = if USUAL {
        Just(Json::Null).boxed()
    } else {
        prop_oneof![Just(Json::Null), junk()].boxed()
    };
    let chunk = object::<USUAL>(vec![
        maybe("id", any_text().prop_map(Json::Text)),
        maybe("object", Just(Json::Text("chat.completion.chunk".into()))),
        maybe("created", integer(2_000_000_000)),
        maybe("model", any_text().prop_map(Json::Text)),
        maybe(
            "choices",
            prop::collection::vec(choice::<USUAL>(), 0..3).prop_map(Json::Array),
        ),
        maybe("usage", usage::<USUAL>()),
        maybe("error", error),
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

    /// The usual chunks and answers, in any style with any values: the one-pass reader reads
    /// every one, as serde does and as the JSON tree says.
    #[test]
    fn reads_the_usual_in_one_pass_as_serde_does(text in chunk_text::<true>()) {
        let fast = fast::read(&text);
        prop_assert!(fast.is_some(), "the one-pass reader gave up on {}", text);
        let serde = read_serde(&text);
        prop_assert!(serde.is_ok(), "{:?}: {}", serde.as_ref().err(), text);
        let (fast, serde) = (fast.unwrap_or_default(), serde.unwrap_or_default());
        prop_assert_eq!(exact(&fast), exact(&serde), "{}", text);
        let tree: Value = serde_json::from_str(&text).unwrap_or_default();
        prop_assert_eq!(observed(&fast), expected(&tree), "{}", text);
    }

    /// Every chunk of the shapes the decoder reads is read, and read as its JSON tree says.
    #[test]
    fn reads_every_chunk_as_its_tree_says(text in chunk_text::<false>()) {
        let chunk = read(&text);
        prop_assert!(chunk.is_ok(), "{:?}: {}", chunk.err(), text);
        let tree: Value = serde_json::from_str(&text).unwrap_or_default();
        prop_assert_eq!(observed(&chunk.unwrap_or_default()), expected(&tree), "{}", text);
    }

    /// Damaged or unusual JSON: whatever the one-pass reader reads, serde reads the same; and
    /// whatever is read is read as its tree says.
    #[test]
    fn never_reads_other_than_serde_and_the_tree(
        text in prop_oneof![chunk_text::<true>(), chunk_text::<false>()],
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), json_char()), 1..4),
    ) {
        let mut text = text;
        for (at, op, with) in edits {
            text = edit(&text, at, op, with);
        }
        if let Some(fast) = fast::read(&text) {
            let serde = read_serde(&text);
            prop_assert!(serde.is_ok(), "read what serde refuses ({:?}): {}", serde.as_ref().err(), text);
            prop_assert_eq!(exact(&fast), exact(&serde.unwrap_or_default()), "{}", text);
        }
        // serde_json steps over an unpaired surrogate in a value it does not read (kept as
        // written), which its tree refuses: those have no tree to compare with.
        if let (Ok(chunk), Ok(tree)) = (read(&text), serde_json::from_str::<Value>(&text)) {
            // A repeated member is read by the tree as its last value and passed back as
            // both: leave those to the client.
            if !repeats(&tree, &text) {
                prop_assert_eq!(observed(&chunk), expected(&tree), "{}", text);
            }
        }
    }
}

/// True when `text` may repeat a member name of an object (its tree has fewer members than
/// the text has name-value separators outside strings would suggest). Rough, and on the
/// safe side: any object with fewer members in the tree than `"…":` pairs in the text.
fn repeats(tree: &Value, text: &str) -> bool {
    fn count(v: &Value) -> usize {
        match v {
            Value::Object(m) => m.len() + m.values().map(count).sum::<usize>(),
            Value::Array(a) => a.iter().map(count).sum(),
            _ => 0,
        }
    }
    let mut colons = 0;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ':' if !in_string => colons += 1,
            _ => {}
        }
    }
    count(tree) < colons
}
