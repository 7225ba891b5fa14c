use proptest::prelude::*;

use super::super::Chunk;
use super::Shapes;
use super::chunk;
use super::shape::as_chunk;

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

/// What a stream's decoder makes of `text` with `shapes`: the learned shape's reading
/// (true), else the full scan's (false; `None` leaves it to serde).
fn read_in_stream(shapes: &mut Shapes, text: &str) -> (Option<Chunk>, bool) {
    match shapes.text(text) {
        Some(read) => (Some(as_chunk(read)), true),
        None => (shapes.chunk(text), false),
    }
}

#[test]
fn a_stream_of_one_shape_is_read_against_it() {
    let chunk = |delta: &str, finish: &str, pad: &str| {
        format!(
            r#"{{"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0ba0d124f1","choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}],"usage":null,"obfuscation":"{pad}"}}"#
        )
    };
    let mut stream = vec![chunk(
        r#"{"role":"assistant","content":"","refusal":null}"#,
        "null",
        "x",
    )];
    for (i, word) in ["Hello", " there", "\\n\\u00e9\\\"", " 🦊", ""]
        .iter()
        .enumerate()
    {
        stream.push(chunk(
            &format!(r#"{{"content":"{word}"}}"#),
            "null",
            &"q".repeat(i),
        ));
    }
    stream.push(chunk(r#"{"reasoning_content":"hmm"}"#, "null", "r"));
    stream.push(chunk(r#"{"content":"again"}"#, "null", "s"));
    stream.push(chunk("{}", r#""stop""#, "t"));
    stream.push(
        r#"{"id":"chatcmpl-B9","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#
            .to_string(),
    );
    let mut shapes = Shapes::default();
    let mut hits = Vec::new();
    for text in &stream {
        let (read, hit) = read_in_stream(&mut shapes, text);
        assert_eq!(read, serde(text), "{text}");
        hits.push(hit);
    }
    assert_eq!(
        hits,
        [
            false, false, true, true, true, true, false, false, false, false
        ],
        "learned from the first text chunk; the reasoning chunk, the one after it, the finish \
         and the usage chunks are read in full"
    );
}

/// A chunk of the usual streamed shape: one choice, index 0, one text, in any member order
/// with any junk.
fn usual_chunk() -> impl Strategy<Value = Json> {
    let text_field = prop_oneof![
        Just("content"),
        Just("reasoning_content"),
        Just("reasoning")
    ];
    (text_field, text()).prop_flat_map(|(field, t)| {
        let others: Vec<_> = ["content", "reasoning_content", "reasoning", "tool_calls"]
            .into_iter()
            .filter(|f| *f != field)
            .map(|f| maybe(f, Just(Json::Null)))
            .collect();
        let mut members = vec![
            Just(Some((field.to_string(), Json::Text(t.clone())))).boxed(),
            maybe("role", Just(Json::Text("assistant".into()))),
            maybe("refusal", Just(Json::Null)),
        ];
        members.extend(others);
        let delta = object(members);
        let choice = delta.prop_flat_map(|delta| {
            object(vec![
                Just(Some(("index".to_string(), Json::Number("0".into())))).boxed(),
                Just(Some(("delta".to_string(), delta))).boxed(),
                maybe("finish_reason", Just(Json::Null)),
                maybe("logprobs", prop_oneof![Just(Json::Null), junk()]),
            ])
        });
        choice.prop_flat_map(|choice| {
            object(vec![
                maybe("id", text().prop_map(Json::Text)),
                maybe("object", Just(Json::Text("chat.completion.chunk".into()))),
                maybe("created", integer(2_000_000_000)),
                maybe("model", text().prop_map(Json::Text)),
                Just(Some(("choices".to_string(), Json::Array(vec![choice])))).boxed(),
                maybe("usage", Just(Json::Null)),
                maybe("error", Just(Json::Null)),
            ])
        })
    })
}

/// Values to put in a chunk's holes: strings and numbers; and with `read`, a value for the
/// n-th member the scan reads (a null or an `index`), which makes the chunk another shape.
#[derive(Debug, Clone)]
struct Fill {
    texts: Vec<String>,
    numbers: Vec<Json>,
    read: Option<(usize, Json)>,
}

/// Where [`refill`] is in the tree: values visited, and reads (nulls and indexes) visited.
#[derive(Default)]
struct At {
    value: usize,
    read: usize,
}

/// `json` with its strings and numbers taken from `fill` in turn (and one read replaced).
fn refill(json: &Json, fill: &Fill, at: &mut At) -> Json {
    at.value += 1;
    match json {
        Json::Text(_) => Json::Text(fill.texts[at.value % fill.texts.len()].clone()),
        Json::Number(_) => fill.numbers[at.value % fill.numbers.len()].clone(),
        Json::Null => read(json, fill, at),
        Json::Array(items) => Json::Array(items.iter().map(|i| refill(i, fill, at)).collect()),
        Json::Object(members) => Json::Object(
            members
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Json::Number(_) if k == "index" => read(v, fill, at),
                        _ => refill(v, fill, at),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A value the scan reads: kept, unless it is the one `fill` replaces.
fn read(json: &Json, fill: &Fill, at: &mut At) -> Json {
    at.read += 1;
    match &fill.read {
        Some((n, value)) if *n == at.read => value.clone(),
        _ => json.clone(),
    }
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop_oneof![Just(""), Just(" "), Just("\n  "), Just("\t")],
        any::<bool>(),
    )
        .prop_map(|(space, ascii)| Style { space, ascii })
}

/// A usual chunk and a few more of its shape with other values in the holes, in one style.
/// With `reads`, the ones after the first also share another value for one of the members
/// the scan reads: another shape, which may or may not be a usual one.
fn one_shape_stream(reads: bool) -> impl Strategy<Value = Vec<String>> {
    let read = if reads {
        prop::option::of((
            1..12usize,
            prop_oneof![
                junk(),
                integer(2),
                text().prop_map(Json::Text),
                Just(Json::Object(Vec::new())),
                Just(Json::Array(Vec::new())),
            ],
        ))
        .boxed()
    } else {
        Just(None).boxed()
    };
    let holes = (
        prop::collection::vec(text(), 1..6),
        prop::collection::vec(number(), 1..4),
    );
    (
        usual_chunk(),
        style(),
        read,
        prop::collection::vec(holes, 1..6),
    )
        .prop_map(|(first, style, read, fills)| {
            let mut out = Vec::new();
            let mut push = |json: &Json| {
                let mut text = String::new();
                write(json, &style, &mut text);
                out.push(text);
            };
            push(&first);
            for (texts, numbers) in fills {
                let fill = Fill {
                    texts,
                    numbers,
                    read: read.clone(),
                };
                push(&refill(&first, &fill, &mut At::default()));
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Chunks of one shape with other strings and numbers in it: after the first, every one
    /// is read against the learned shape, and read as serde reads it.
    #[test]
    fn reads_a_learned_shape_as_serde_does(stream in one_shape_stream(false)) {
        let mut shapes = Shapes::default();
        for (i, text) in stream.iter().enumerate() {
            let (read, hit) = read_in_stream(&mut shapes, text);
            prop_assert!(read.is_some(), "the scan gave up on {}", text);
            prop_assert_eq!(&read, &serde(text), "{}", text);
            prop_assert_eq!(hit, i > 0, "{}", text);
        }
    }

    /// The same streams with some chunks damaged, and chunks of other shapes mixed in:
    /// whatever is read (learned shape or full scan) is read as serde reads it.
    #[test]
    fn a_learned_shape_never_disagrees_with_serde(
        stream in one_shape_stream(true),
        others in prop::collection::vec(chunk_text(), 0..3),
        edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<u8>(), json_char()), 1..6),
    ) {
        let mut stream = stream;
        for (i, other) in others.into_iter().enumerate() {
            let at = (i * 2 + 1).min(stream.len());
            stream.insert(at, other);
        }
        let n = stream.len();
        for (which, at, op, with) in edits {
            let victim = &mut stream[which % n];
            *victim = edit(victim, at, op, with);
        }
        let mut shapes = Shapes::default();
        for text in &stream {
            if let (Some(read), _) = read_in_stream(&mut shapes, text) {
                prop_assert_eq!(Some(read), serde(text), "{}", text);
            }
        }
    }
}
