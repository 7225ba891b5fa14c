//! `chat.completion.chunk` frames: a streamed answer's encoder. Every chunk of a stream
//! shares its id, time and model, every text delta its shape: both are written once per
//! stream from shapes serialized once ([`Shapes`]), and a token costs the copies around its
//! text. What the upstream passed through rides on the chunk it came with.

use std::sync::LazyLock;

use serde::Serialize;

use super::{UsageJson, outcome_finish, usage_json};
use crate::provider::{Passthrough, ToolCallDelta};
use crate::router::ChatOutcome;
use crate::serve::chat::unix_now;
use crate::serve::error::{Api, ApiError};
use crate::serve::json::{self, Probe, Shape};
use crate::serve::sse::{SseEncoder, frame, json_frame, unstreamed_calls};

/// The shapes every stream shares, serialized once (see [`json`]): their holes are numbered
/// in the order their structs list them.
struct Shapes {
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[…]}`
    chunk: Shape,
    /// `{"index":0,"delta":…,"finish_reason":…}`
    choice: Shape,
    /// `{"index":0,"delta":{"content":…},"finish_reason":null}`, then with
    /// `reasoning_content` (see [`TextField`]).
    text_choices: [Shape; 2],
    /// The delta of a stream's first chunk.
    open_delta: Shape,
}

static SHAPES: LazyLock<Shapes> = LazyLock::new(|| {
    let p = Probe::default();
    let text_choice = |field: TextField| {
        let delta = match field {
            TextField::Content => TextDelta {
                content: Some(p.hole()),
                reasoning_content: None,
            },
            TextField::Reasoning => TextDelta {
                content: None,
                reasoning_content: Some(p.hole()),
            },
        };
        let choice = ChunkChoice {
            index: 0,
            delta,
            finish_reason: None::<&str>,
        };
        Shape::of(&choice, &p)
    };
    Shapes {
        chunk: Shape::of(
            &Chunk {
                id: p.hole(),
                object: "chat.completion.chunk",
                created: p.hole(),
                model: p.hole(),
                choices: [p.hole()],
            },
            &p,
        ),
        choice: Shape::of(
            &ChunkChoice {
                index: 0,
                delta: p.hole(),
                finish_reason: p.hole(),
            },
            &p,
        ),
        text_choices: [
            text_choice(TextField::Content),
            text_choice(TextField::Reasoning),
        ],
        open_delta: Shape::of(
            &Delta {
                role: Some("assistant"),
                content: Some(""),
                ..Delta::default()
            },
            &p,
        ),
    }
});

/// A `chat.completion.chunk` object, members in the order OpenAI writes them.
#[derive(Serialize)]
struct Chunk<H> {
    id: H,
    object: &'static str,
    created: H,
    model: H,
    choices: [H; 1],
}

/// The `usage` member of a stream's last chunk.
#[derive(Serialize)]
struct UsageMember {
    usage: UsageJson,
}

/// A choice of a chunk.
#[derive(Serialize)]
struct ChunkChoice<D, F> {
    index: u32,
    delta: D,
    finish_reason: F,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallPiece<'a>; 1]>,
}

/// [`Delta`] of a text, in a shape.
#[derive(Serialize)]
struct TextDelta<H> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<H>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<H>,
}

/// A piece of a streamed tool call: id, type and name only with its first piece.
#[derive(Serialize)]
struct ToolCallPiece<'a> {
    function: FunctionPiece<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    index: u32,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
}

#[derive(Serialize)]
struct FunctionPiece<'a> {
    arguments: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

/// Where a text delta goes: `delta.content` or `delta.reasoning_content`.
#[derive(Clone, Copy)]
enum TextField {
    Content = 0,
    Reasoning = 1,
}

impl TextField {
    fn delta(self, text: &str) -> Delta<'_> {
        match self {
            TextField::Content => Delta {
                content: Some(text),
                ..Delta::default()
            },
            TextField::Reasoning => Delta {
                reasoning_content: Some(text),
                ..Delta::default()
            },
        }
    }
}

/// `chat.completion.chunk` frames.
///
/// What the upstream passed through goes into the chunk of the content it came with
/// ([`Passthrough::carries`]); a piece of other choices alone (`n > 1`) is a chunk of its own;
/// members of the chunk alone (`system_fingerprint`) ride on the next chunk written.
pub struct Chunks {
    /// This stream's chunk: [`Shapes::chunk`] with its id, time and model; its hole takes
    /// the choices.
    chunk: Shape,
    /// This stream's chunk of a text delta, its hole the text, per [`TextField`]; made at
    /// its first use.
    text_chunks: [Option<Shape>; 2],
    include_usage: bool,
    /// Tool call indexes already started in the stream.
    tools_started: Vec<u32>,
    /// Passed through, waiting for the chunk it belongs in.
    pending: Option<Box<Passthrough>>,
}

impl Chunks {
    pub(in crate::serve) fn new(id: &str, model: &str, include_usage: bool) -> Chunks {
        let mut bytes = Vec::with_capacity(CHUNK_HEAD_CAPACITY + model.len());
        let mut holes = Vec::with_capacity(1);
        SHAPES.chunk.write(&mut bytes, |hole, out| match hole {
            0 => json::write(out, id),
            1 => json::write(out, &unix_now()),
            2 => json::write(out, model),
            _ => holes.push(out.len()),
        });
        Chunks {
            chunk: Shape::written(bytes, &holes),
            text_chunks: [None, None],
            include_usage,
            tools_started: Vec::new(),
            pending: None,
        }
    }

    /// One `data:` frame of a chunk: `choices` writes what goes in its `choices`, `more` the
    /// members after them.
    fn frame(
        &self,
        out: &mut Vec<u8>,
        mut choices: impl FnMut(&mut Vec<u8>),
        more: impl FnOnce(&mut Vec<u8>),
    ) {
        frame(out, None, |out| {
            self.chunk.write(out, |_, out| choices(out));
            json::add_members(out, more);
        });
    }

    /// A chunk of choice 0, its delta written by `delta`, with what is pending.
    fn chunk(
        &mut self,
        out: &mut Vec<u8>,
        delta: impl Fn(&mut Vec<u8>),
        finish: Option<&'static str>,
    ) {
        let extra = self.pending.take();
        let p = extra.as_deref();
        self.frame(
            out,
            |out| {
                write_choice(out, &delta, finish, p);
                if let Some(p) = p {
                    p.write_choices(out);
                }
            },
            |out| top_members(out, p),
        );
    }

    /// A chunk of what was passed through alone: choice 0's members when there are any
    /// (with an empty delta), the other choices, the chunk's members.
    fn passthrough_chunk(&self, out: &mut Vec<u8>, p: &Passthrough) {
        self.frame(
            out,
            |out| {
                let at = out.len();
                if !p.choice.is_empty() || !p.delta.is_empty() {
                    write_choice(out, |o| json::write(o, &Delta::default()), None, Some(p));
                }
                p.write_choices(out);
                // The other choices' commas assume a choice 0 before them.
                if out.get(at) == Some(&b',') {
                    out.remove(at);
                }
            },
            |out| top_members(out, Some(p)),
        );
    }

    /// Writes what is pending when it has a choice's part; keeps the chunk's members alone
    /// for the next chunk.
    fn flush_choices(&mut self, out: &mut Vec<u8>) {
        if let Some(p) = self.pending.take_if(|p| p.has_choices()) {
            self.passthrough_chunk(out, &p);
        }
    }

    /// A text delta under `field`: this stream's text chunk filled in, with the chunk's
    /// members pending; a chunk written in full when what is pending has a choice's part.
    fn text(&mut self, out: &mut Vec<u8>, field: TextField, text: &str) {
        if self.pending.as_ref().is_some_and(|p| p.has_choices()) {
            let delta = field.delta(text);
            return self.chunk(out, |o| json::write(o, &delta), None);
        }
        let extra = self.pending.take();
        let chunk = &self.chunk;
        let shape = self.text_chunks[field as usize].get_or_insert_with(|| {
            let mut bytes = Vec::new();
            let mut holes = Vec::with_capacity(1);
            chunk.write(&mut bytes, |_, out| {
                SHAPES.text_choices[field as usize].write(out, |_, out| holes.push(out.len()));
            });
            Shape::written(bytes, &holes)
        });
        frame(out, None, |out| {
            shape.write(out, |_, out| json::write(out, text));
            json::add_members(out, |out| top_members(out, extra.as_deref()));
        });
    }
}

/// Room for a chunk's members before its model's name.
const CHUNK_HEAD_CAPACITY: usize = 128;

/// Choice 0 with the delta `delta` writes and `finish`, and what was passed through for it
/// and its delta.
fn write_choice(
    out: &mut Vec<u8>,
    delta: impl Fn(&mut Vec<u8>),
    finish: Option<&'static str>,
    p: Option<&Passthrough>,
) {
    SHAPES.choice.write(out, |hole, out| match hole {
        0 => {
            delta(out);
            if let Some(p) = p {
                json::add_members(out, |out| p.delta.write_after(out));
            }
        }
        _ => json::write(out, &finish),
    });
    if let Some(p) = p {
        json::add_members(out, |out| p.choice.write_after(out));
    }
}

fn top_members(out: &mut Vec<u8>, p: Option<&Passthrough>) {
    if let Some(p) = p {
        p.top.write_after(out);
    }
}

impl SseEncoder for Chunks {
    fn open(&mut self, out: &mut Vec<u8>) {
        self.chunk(out, |o| SHAPES.open_delta.write(o, |_, _| {}), None);
    }

    fn delta(&mut self, text: &str, out: &mut Vec<u8>) {
        self.text(out, TextField::Content, text);
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        self.text(out, TextField::Reasoning, text);
    }

    fn tool_call(&mut self, call: &ToolCallDelta, out: &mut Vec<u8>) {
        let first = !self.tools_started.contains(&call.index);
        if first {
            self.tools_started.push(call.index);
        }
        let piece = ToolCallPiece {
            function: FunctionPiece {
                arguments: &call.arguments,
                name: first.then(|| call.name.as_deref().unwrap_or_default()),
            },
            id: first.then(|| call.id.as_deref().unwrap_or_default()),
            index: call.index,
            kind: first.then_some("function"),
        };
        let delta = Delta {
            tool_calls: Some([piece]),
            ..Delta::default()
        };
        self.chunk(out, |o| json::write(o, &delta), None);
    }

    fn passthrough(&mut self, mut p: Box<Passthrough>, out: &mut Vec<u8>) {
        if let Some(old) = self.pending.take() {
            if old.has_choices() {
                self.passthrough_chunk(out, &old);
            } else if p.top.is_empty() {
                // The chunk's members ride on, unless newer ones came.
                p.top = old.top;
            }
        }
        if p.carries || !p.has_choices() {
            self.pending = Some(p);
        } else {
            self.passthrough_chunk(out, &p);
        }
    }

    fn restart(&mut self, out: &mut Vec<u8>) {
        self.flush_choices(out);
        // OpenAI's stream cannot take text back; a comment marks the point for debugging.
        out.extend_from_slice(b": llmux: the answer restarted on another deployment\n\n");
    }

    fn finish(&mut self, outcome: &ChatOutcome, out: &mut Vec<u8>) {
        self.flush_choices(out);
        for call in unstreamed_calls(outcome, |i| self.tools_started.contains(&i)) {
            self.tool_call(&call, out);
        }
        self.chunk(
            out,
            |o| json::write(o, &Delta::default()),
            Some(outcome_finish(outcome)),
        );
        if self.include_usage {
            let usage = UsageMember {
                usage: usage_json(outcome),
            };
            self.frame(out, |_| {}, |out| json::write_members(out, &usage));
        }
        frame(out, None, |out| out.extend_from_slice(b"[DONE]"));
    }

    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        // What OpenAI's SDKs raise on: a chunk with an `error` object. No [DONE] follows.
        json_frame(out, None, &error.body(Api::OpenAi));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::openai::tests::{answered, passed, timeless};
    use crate::serve::sse::open_with;

    type Step = Box<dyn Fn(&mut Chunks, &mut Vec<u8>)>;

    /// A stream's frames: opened after what was passed through `before`, then `steps`, the
    /// end and an in-band error.
    fn stream(usage: bool, before: Vec<Passthrough>, steps: &[Step], o: &ChatOutcome) -> String {
        let mut chunks = Chunks::new("chatcmpl-7", "m\u{7}\"", usage);
        let mut out = Vec::new();
        open_with(&mut chunks, before, &mut out);
        for step in steps {
            step(&mut chunks, &mut out);
        }
        chunks.finish(o, &mut out);
        chunks.fail(&ApiError::bad_request("bad \"x\""), &mut out);
        timeless(&out)
    }

    fn pass(p: Passthrough) -> Step {
        Box::new(move |c, o| c.passthrough(Box::new(p.clone()), o))
    }

    fn call(index: u32, first: bool, arguments: &str) -> Step {
        let piece = ToolCallDelta {
            index,
            id: first.then(|| "call_1".to_string()),
            name: first.then(|| "f".to_string()),
            arguments: arguments.to_string(),
        };
        Box::new(move |c, o| c.tool_call(&piece, o))
    }

    #[test]
    fn text_and_reasoning_deltas_are_written_byte_for_byte() {
        let steps: [Step; 3] = [
            Box::new(|c, o| c.delta("Hel\"lo", o)),
            Box::new(|c, o| c.reasoning("hm\n", o)),
            Box::new(|c, o| c.delta("", o)),
        ];
        let o = answered("Hello", "hm", false, Some("stop"));
        insta::assert_snapshot!(stream(true, Vec::new(), &steps, &o));
    }

    #[test]
    fn what_was_passed_through_rides_on_the_chunk_it_came_with() {
        let before = vec![
            passed(&[("system_fingerprint", "\"fp\"")], &[], &[], &[], false),
            passed(
                &[],
                &[("logprobs", "null")],
                &[("refusal", "\"no\"")],
                &[],
                true,
            ),
        ];
        let steps = [
            Box::new(|c: &mut Chunks, o: &mut Vec<u8>| c.delta("a", o)) as Step,
            pass(passed(
                &[("system_fingerprint", "\"fp2\"")],
                &[("logprobs", "{\"x\":1}")],
                &[],
                &["{\"index\":1,\"delta\":{\"content\":\"B\"}}"],
                true,
            )),
            Box::new(|c, o| c.delta("b", o)),
            pass(passed(
                &[],
                &[],
                &[],
                &["{\"index\":1,\"delta\":{},\"finish_reason\":\"stop\"}"],
                false,
            )),
            pass(passed(
                &[("service_tier", "\"default\"")],
                &[],
                &[],
                &[],
                false,
            )),
            Box::new(|c, o| c.delta("c", o)),
            pass(passed(&[], &[], &[("annotations", "[1]")], &[], true)),
            Box::new(|c, o| c.delta("d", o)),
            pass(passed(
                &[],
                &[("logprobs", "{}")],
                &[("refusal", "\"r\"")],
                &[],
                false,
            )),
            Box::new(|c, o| c.restart(o)),
            call(0, true, "{\"a\""),
            call(0, false, ":1}"),
            pass(passed(&[("x", "1")], &[], &[], &[], false)),
        ];
        let o = answered("abcd", "", true, Some("tool_calls"));
        insta::assert_snapshot!(stream(false, before, &steps, &o));
    }
}
