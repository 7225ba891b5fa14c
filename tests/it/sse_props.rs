//! The stream framing and the per-event decoders under properties: any split of a valid
//! stream gives the events of the whole (SSE with `\n`, `\r\n` and `\r`, comments, multi-line
//! data, multi-byte UTF-8, a BOM; NDJSON), arbitrary bytes never panic nor buffer past the
//! limit, and the OpenAI / Anthropic / Gemini decoders survive arbitrary event data. A few
//! worked examples pin the framing rules down first.

use std::ops::ControlFlow;

use futures::StreamExt;
use llmux::provider::sse::{NdjsonSplitter, SseEvent, SseParser, WireDecoder, drive};
use llmux::provider::{
    ErrorClass, StreamEvent, anthropic::AnthropicDecoder, gemini::GeminiDecoder,
    ollama::OllamaDecoder, openai::OpenAiDecoder,
};
use proptest::prelude::*;
use serde_json::Value;

use crate::upstream::Reply;

fn ev(event: Option<&str>, data: &str, id: Option<&str>) -> SseEvent {
    SseEvent {
        event: event.map(str::to_string),
        data: data.to_string(),
        id: id.map(str::to_string),
    }
}

/// Feeds `bytes` in pieces cut at `cuts` (positions, any order, may repeat).
fn feed_split(bytes: &[u8], cuts: &[usize]) -> Result<Vec<SseEvent>, ErrorClass> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    let mut at = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        out.extend(parser.push(&bytes[at..cut]).map_err(|e| e.class)?);
        at = cut;
    }
    assert!(
        parser.finish().is_none(),
        "a valid stream leaves nothing open"
    );
    Ok(out)
}

#[test]
fn framing_examples() {
    let mut p = SseParser::new();
    let out = p
        .push(b"event: a\ndata: one\ndata:two\nid: 7\n\n: comment\n\ndata\n\nevent: b\n\n")
        .unwrap();
    assert_eq!(
        out,
        [ev(Some("a"), "one\ntwo", Some("7")), ev(None, "", None)],
        "multi-line data, no space after the colon, a bare field, data-less events dropped"
    );
    let mut p = SseParser::new();
    assert!(p.push(b"id: 1\r").unwrap().is_empty());
    assert!(
        p.push(b"").unwrap().is_empty(),
        "an empty read changes nothing"
    );
    assert!(p.push(b"\ndata: x\r").unwrap().is_empty());
    assert_eq!(
        p.push(b"\n\r\n").unwrap(),
        [ev(None, "x", Some("1"))],
        "CRLF split after CR"
    );
    let mut p = SseParser::new();
    assert_eq!(
        p.push(b"data:  two spaces\r\rdata: \xC3").unwrap(),
        [ev(None, " two spaces", None)]
    );
    assert_eq!(
        p.push(b"\xA9\n\n").unwrap(),
        [ev(None, "é", None)],
        "split UTF-8"
    );
    let mut p = SseParser::new();
    assert_eq!(
        p.push(b"data: a\xFFb\ndata: \xC3(\n\n").unwrap(),
        [ev(None, "a\u{FFFD}b\n\u{FFFD}(", None)],
        "bytes that are not UTF-8 become replacement characters"
    );
    let mut p = SseParser::new();
    assert_eq!(p.push(b"\xEF\xBB").unwrap(), []);
    assert_eq!(
        p.push(b"\xBFdata: bom\n\n").unwrap(),
        [ev(None, "bom", None)]
    );
}

#[test]
fn finish_reports_an_unterminated_event() {
    let mut p = SseParser::new();
    assert!(p.push(b"data: {\"partial\"").unwrap().is_empty());
    assert_eq!(p.finish(), Some(ev(None, "{\"partial\"", None)));
    let mut p = SseParser::new();
    p.push(b"data: done\n\n: trailing comment").unwrap();
    assert_eq!(p.finish(), None);
}

#[test]
fn push_each_lends_events_until_the_reader_stops() {
    let mut p = SseParser::new();
    let mut seen = Vec::new();
    p.push_each(
        b"event: a\ndata: one\n\ndata: two\n\ndata: three\n\n",
        |e| {
            seen.push(e.clone());
            if e.data == "two" {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert_eq!(
        seen,
        [ev(Some("a"), "one", None), ev(None, "two", None)],
        "the reused event carries nothing over, and nothing is read after Break"
    );
}

#[test]
fn a_framing_error_keeps_the_tokens_decoded_before_it_in_the_same_read() {
    let wire = format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"hi\"}}}}]}}\n\ndata: {}\n",
        "x".repeat(300)
    );
    let bytes = futures::stream::iter([Ok(bytes::Bytes::from(wire))]);
    let stream = drive(bytes, SseParser::with_limit(200), OpenAiDecoder::new(1));
    let out: Vec<_> = futures::executor::block_on(stream.collect());
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].as_ref().unwrap(), &StreamEvent::Delta("hi".into()));
    assert_eq!(out[1].as_ref().unwrap_err().class, ErrorClass::Protocol);
}

#[test]
fn a_chunk_that_fails_gives_its_error_and_none_of_its_text() {
    // The text of a chunk stopped by the content filter is not a token streamed before a
    // failure (which would turn a content-policy fallback into a mid-stream failure).
    let wire = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\n\
                data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"bad\"},\"finish_reason\":\"content_filter\"}]}\n\n";
    let bytes = futures::stream::iter([Ok(bytes::Bytes::from(wire))]);
    let stream = drive(bytes, SseParser::new(), OpenAiDecoder::new(1));
    let out: Vec<_> = futures::executor::block_on(stream.collect());
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].as_ref().unwrap(), &StreamEvent::Delta("ok".into()));
    assert_eq!(
        out[1].as_ref().unwrap_err().class,
        ErrorClass::ContentPolicy
    );
}

#[test]
fn a_line_past_the_limit_is_a_protocol_error() {
    let mut p = SseParser::with_limit(16);
    let e = p
        .push(&[b'x'; 10])
        .and_then(|_| p.push(&[b'y'; 10]))
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Protocol);
    let mut p = SseParser::with_limit(16);
    let e = p.push(b"data: 0123456789\ndata: 0123456789\n").unwrap_err();
    assert_eq!(e.class, ErrorClass::Protocol, "event data is bounded too");
    let mut n = NdjsonSplitter::with_limit(8);
    assert_eq!(n.push(b"{\"a\":1}\n").unwrap(), ["{\"a\":1}"]);
    assert_eq!(
        n.push(b"{\"long\": true}").unwrap_err().class,
        ErrorClass::Protocol
    );
}

/// One event of a generated stream, and how it is written.
#[derive(Debug, Clone)]
struct GenEvent {
    name: Option<String>,
    id: Option<String>,
    /// Empty: an event with no data line, which must not be dispatched.
    data: Vec<String>,
    comment_before: bool,
    space_after_colon: bool,
}

fn gen_event() -> impl Strategy<Value = GenEvent> {
    let text = "[a-zA-Z0-9{}\":,é日本語🦀 ]{0,12}";
    (
        proptest::option::of("[a-z_]{1,10}"),
        proptest::option::of("[0-9a-f]{1,6}"),
        proptest::collection::vec(text, 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(name, id, data, comment_before, space_after_colon)| GenEvent {
                name,
                id,
                data,
                comment_before,
                space_after_colon,
            },
        )
}

/// The stream's bytes and the events a correct parser dispatches from them.
fn render(events: &[GenEvent], eol: &str, bom: bool) -> (Vec<u8>, Vec<SseEvent>) {
    let mut wire = String::new();
    if bom {
        wire.push('\u{FEFF}');
    }
    let mut expected = Vec::new();
    for e in events {
        if e.comment_before {
            wire.push_str(&format!(": keep-alive{eol}"));
        }
        if let Some(name) = &e.name {
            wire.push_str(&format!("event: {name}{eol}"));
        }
        if let Some(id) = &e.id {
            wire.push_str(&format!("id: {id}{eol}"));
        }
        for line in &e.data {
            // Without the space, a value that itself starts with one would lose it.
            if e.space_after_colon || line.starts_with(' ') {
                wire.push_str(&format!("data: {line}{eol}"));
            } else {
                wire.push_str(&format!("data:{line}{eol}"));
            }
        }
        wire.push_str(eol);
        if !e.data.is_empty() {
            expected.push(SseEvent {
                event: e.name.clone(),
                data: e.data.join("\n"),
                id: e.id.clone(),
            });
        }
    }
    (wire.into_bytes(), expected)
}

fn decode_all<D: WireDecoder<Item = SseEvent>>(
    mut decoder: D,
    events: &[SseEvent],
) -> Vec<Result<StreamEvent, ErrorClass>> {
    let mut out = Vec::new();
    for e in events {
        match decoder.decode_event(e) {
            Ok(evs) => out.extend(evs.into_iter().map(Ok)),
            Err(err) => {
                out.push(Err(err.class));
                return out;
            }
        }
        // As the stream driver does: nothing is read after Done.
        if decoder.is_done() {
            return out;
        }
    }
    match decoder.end(None) {
        Ok(evs) => out.extend(evs.into_iter().map(Ok)),
        Err(err) => out.push(Err(err.class)),
    }
    out
}

fn texts_of(out: &[Result<StreamEvent, ErrorClass>]) -> String {
    out.iter()
        .filter_map(|e| match e {
            Ok(StreamEvent::Delta(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// Arbitrary JSON that often has the keys and type names the decoders look for.
fn arb_json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "choices",
        "delta",
        "message",
        "content",
        "reasoning_content",
        "reasoning",
        "finish_reason",
        "usage",
        "prompt_tokens",
        "completion_tokens",
        "prompt_tokens_details",
        "cached_tokens",
        "error",
        "code",
        "status",
        "type",
        "index",
        "text",
        "thinking",
        "stop_reason",
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "candidates",
        "parts",
        "thought",
        "finishReason",
        "usageMetadata",
        "promptTokenCount",
        "thoughtsTokenCount",
        "promptFeedback",
        "blockReason",
        "done",
        "eval_count",
    ]);
    let names = prop::sample::select(vec![
        "message_start",
        "content_block_start",
        "content_block_delta",
        "message_delta",
        "message_stop",
        "error",
        "ping",
        "text_delta",
        "thinking_delta",
        "overloaded_error",
        "stop",
        "SAFETY",
        "STOP",
        "[DONE]",
        "content_filter",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        names.prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.into(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::faults::fuzz::cases(256)))]

    #[test]
    fn any_split_of_a_valid_stream_gives_the_same_events(
        events in proptest::collection::vec(gen_event(), 0..8),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        bom in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let (wire, expected) = render(&events, eol, bom);
        let whole = feed_split(&wire, &[]).unwrap();
        prop_assert_eq!(&whole, &expected);
        prop_assert_eq!(feed_split(&wire, &cuts).unwrap(), expected);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_events(
        events in proptest::collection::vec(gen_event(), 0..5),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
    ) {
        let (wire, expected) = render(&events, eol, false);
        let cuts: Vec<usize> = (0..wire.len()).collect();
        prop_assert_eq!(feed_split(&wire, &cuts).unwrap(), expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_buffer_past_the_limit(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        limit in 1usize..96,
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parser = SseParser::with_limit(limit);
        let mut ndjson = NdjsonSplitter::with_limit(limit);
        let mut at = 0;
        let (mut sse_failed, mut nd_failed) = (false, false);
        for cut in cuts.into_iter().chain([bytes.len()]) {
            let piece = &bytes[at..cut];
            at = cut;
            if !sse_failed {
                match parser.push(piece) {
                    Ok(events) => {
                        for e in events {
                            prop_assert!(e.data.len() <= limit);
                        }
                    }
                    Err(e) => {
                        prop_assert_eq!(e.class, ErrorClass::Protocol);
                        sse_failed = true;
                    }
                }
                prop_assert!(parser.buffered() <= 2 * limit, "buffered {}", parser.buffered());
            }
            if !nd_failed {
                match ndjson.push(piece) {
                    Ok(lines) => {
                        for l in lines {
                            prop_assert!(l.len() <= limit * 3, "lossy decoding at most triples");
                        }
                    }
                    Err(e) => {
                        prop_assert_eq!(e.class, ErrorClass::Protocol);
                        nd_failed = true;
                    }
                }
            }
        }
        let _ = parser.finish();
        let _ = ndjson.finish();
    }

    #[test]
    fn decoders_survive_arbitrary_event_data(
        datas in proptest::collection::vec(prop_oneof![
            arb_json().prop_map(|v| v.to_string()),
            ".{0,40}",
            Just("[DONE]".to_string()),
        ], 1..6),
        name in proptest::option::of(prop::sample::select(vec!["error", "message_stop", "ping"])),
    ) {
        let events: Vec<SseEvent> = datas
            .iter()
            .map(|d| SseEvent { event: name.map(str::to_string), data: d.clone(), id: None })
            .collect();
        for out in [
            decode_all(OpenAiDecoder::new(10), &events),
            decode_all(AnthropicDecoder::new(10), &events),
            decode_all(GeminiDecoder::new(10), &events),
        ] {
            // Whatever came in, the stream ends with Done or an error, and nothing follows.
            let last = out.last().cloned();
            prop_assert!(
                matches!(last, Some(Err(_)) | Some(Ok(StreamEvent::Done { .. }))),
                "{:?}", out
            );
            let ends = out
                .iter()
                .filter(|e| matches!(e, Err(_) | Ok(StreamEvent::Done { .. })))
                .count();
            prop_assert_eq!(ends, 1);
        }
        let mut ollama = OllamaDecoder::new(10);
        for d in &datas {
            if ollama.decode_event(d).is_err() {
                break;
            }
        }
    }

    #[test]
    fn provider_streams_decode_the_same_for_any_split(
        texts in proptest::collection::vec("[a-zA-Z é日本🦀\\n\"\\\\]{1,8}", 0..6),
        usage in proptest::option::of((0u64..100_000, 0u64..100_000)),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let pieces: Vec<&str> = texts.iter().map(String::as_str).collect();
        let whole_text: String = texts.concat();
        let streams = [
            ("openai", Reply::openai_stream(&pieces, usage)),
            ("anthropic", Reply::anthropic_stream(&pieces, usage)),
            ("gemini", Reply::gemini_stream(&pieces, usage)),
        ];
        for (which, reply) in streams {
            let wire = reply.chunks().concat();
            let whole = feed_split(&wire, &[]).unwrap();
            let split = feed_split(&wire, &cuts).unwrap();
            prop_assert_eq!(&whole, &split);
            let decoded = match which {
                "openai" => decode_all(OpenAiDecoder::new(10), &split),
                "anthropic" => decode_all(AnthropicDecoder::new(10), &split),
                _ => decode_all(GeminiDecoder::new(10), &split),
            };
            prop_assert_eq!(texts_of(&decoded), whole_text.clone(), "{}", which);
            let usage_seen = decoded.iter().rev().find_map(|e| match e {
                Ok(StreamEvent::Usage(u)) => Some(*u),
                _ => None,
            });
            let u = usage_seen.expect("usage before Done");
            match usage {
                Some((i, o)) => prop_assert_eq!((u.input, u.output, u.estimated), (i, o, false)),
                None => prop_assert!(u.estimated, "{}", which),
            }
            let ends_done = matches!(decoded.last(), Some(Ok(StreamEvent::Done { .. })));
            prop_assert!(ends_done, "{}: {:?}", which, decoded);
        }
    }

    #[test]
    fn ndjson_any_split_gives_the_same_lines(
        texts in proptest::collection::vec("[a-z é🦀]{1,8}", 0..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let pieces: Vec<&str> = texts.iter().map(String::as_str).collect();
        let wire = Reply::ollama_stream(&pieces, Some((3, 4))).chunks().concat();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        let mut splitter = NdjsonSplitter::new();
        let mut decoder = OllamaDecoder::new(1);
        let mut text = String::new();
        let mut done = false;
        let mut at = 0;
        for cut in cuts.into_iter().chain([wire.len()]) {
            for line in splitter.push(&wire[at..cut]).unwrap() {
                for e in decoder.decode_event(&line).unwrap() {
                    match e {
                        StreamEvent::Delta(t) => text.push_str(&t),
                        StreamEvent::Done { .. } => done = true,
                        _ => {}
                    }
                }
            }
            at = cut;
        }
        prop_assert_eq!(splitter.finish(), None);
        prop_assert_eq!(text, texts.concat());
        prop_assert!(done, "the done line was decoded");
    }
}
