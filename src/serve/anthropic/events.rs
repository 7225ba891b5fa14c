//! Anthropic's stream events, written by serde from the structs below: `message_start`, per
//! content block `content_block_start` / `content_block_delta` / `content_block_stop`,
//! `message_delta`, `message_stop`. A delta's shape is serialized once ([`Shapes`]), so a
//! token costs the copies around its index and text. Members of the events that were once
//! written from `serde_json` maps are in alphabetical order, as those maps printed them.

use std::sync::LazyLock;

use serde::Serialize;

use super::outcome_stop;
use crate::provider::ToolCallDelta;
use crate::router::ChatOutcome;
use crate::serve::error::{Api, ApiError};
use crate::serve::json::{self, Probe, Shape};
use crate::serve::sse::{SseEncoder, frame, json_frame, unstreamed_calls};

const MESSAGE_START: &str = "message_start";
const BLOCK_START: &str = "content_block_start";
const BLOCK_DELTA: &str = "content_block_delta";
const BLOCK_STOP: &str = "content_block_stop";
const MESSAGE_DELTA: &str = "message_delta";
const MESSAGE_STOP: &str = "message_stop";

/// `message_start`: the message as it starts, no content yet.
#[derive(Serialize)]
struct MessageStart<'a> {
    message: StartedMessage<'a>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct StartedMessage<'a> {
    content: [(); 0],
    id: &'a str,
    model: &'a str,
    role: &'static str,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    #[serde(rename = "type")]
    kind: &'static str,
    usage: Usage,
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
}

/// `content_block_start`.
#[derive(Serialize)]
struct BlockStart<'a> {
    content_block: StartBlock<'a>,
    index: usize,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A content block as it starts: empty.
#[derive(Serialize)]
#[serde(untagged)]
enum StartBlock<'a> {
    Text {
        text: &'static str,
        #[serde(rename = "type")]
        kind: &'static str,
    },
    Thinking {
        thinking: &'static str,
        #[serde(rename = "type")]
        kind: &'static str,
    },
    ToolUse {
        id: &'a str,
        input: Empty,
        name: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

/// `content_block_delta`.
#[derive(Serialize)]
struct BlockDelta<H> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: H,
    delta: DeltaJson<H>,
}

/// A piece of a block: `{"type":"text_delta","text":…}` and the like.
#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaJson<T> {
    #[serde(rename = "text_delta")]
    Text { text: T },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: T },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: T },
}

/// `content_block_stop`.
#[derive(Serialize)]
struct BlockStop {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
}

/// `message_delta`: the stop reason and the usage.
#[derive(Serialize)]
struct MessageDelta {
    delta: Stop,
    #[serde(rename = "type")]
    kind: &'static str,
    usage: Usage,
}

#[derive(Serialize)]
struct Stop {
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
}

/// `message_stop`.
#[derive(Serialize)]
struct MessageStop {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// Which content block is open in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// Tool call number `n` of the answer.
    Tool(u32),
}

impl Block {
    /// Where its [`Shapes::deltas`] is.
    fn delta_shape(self) -> usize {
        match self {
            Block::Text => 0,
            Block::Thinking => 1,
            Block::Tool(_) => 2,
        }
    }
}

/// `content_block_delta` of each kind of block, its holes the index and the piece of text,
/// serialized once (see [`json`]).
struct Shapes {
    deltas: [Shape; 3],
}

static SHAPES: LazyLock<Shapes> = LazyLock::new(|| {
    let p = Probe::default();
    let delta = |delta: DeltaJson<_>| {
        Shape::of(
            &BlockDelta {
                kind: BLOCK_DELTA,
                index: p.hole(),
                delta,
            },
            &p,
        )
    };
    Shapes {
        deltas: [
            delta(DeltaJson::Text { text: p.hole() }),
            delta(DeltaJson::Thinking { thinking: p.hole() }),
            delta(DeltaJson::InputJson {
                partial_json: p.hole(),
            }),
        ],
    }
});

/// Anthropic's stream events.
pub struct Events {
    id: String,
    model: String,
    prompt_tokens: u64,
    /// The open block and its index.
    open: Option<(Block, usize)>,
    next_index: usize,
    /// Each tool call started so far and the block index it got.
    tools: Vec<(u32, usize)>,
}

impl Events {
    pub(in crate::serve) fn new(id: String, model: &str, prompt_tokens: u64) -> Events {
        Events {
            id,
            model: model.to_string(),
            prompt_tokens,
            open: None,
            next_index: 0,
            tools: Vec::new(),
        }
    }

    /// Starts the block `content_block` with the next index and makes it `kind`, the open
    /// one; returns its index.
    fn start(&mut self, kind: Block, content_block: StartBlock, out: &mut Vec<u8>) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        let start = BlockStart {
            content_block,
            index,
            kind: BLOCK_START,
        };
        json_frame(out, Some(BLOCK_START), &start);
        self.open = Some((kind, index));
        index
    }

    /// Makes `kind` the open block, closing another one first.
    fn ensure(&mut self, kind: Block, out: &mut Vec<u8>) -> usize {
        match self.open {
            Some((k, i)) if k == kind => return i,
            Some(_) => self.close(out),
            None => {}
        }
        let block = match kind {
            Block::Text => StartBlock::Text {
                text: "",
                kind: "text",
            },
            Block::Thinking => StartBlock::Thinking {
                thinking: "",
                kind: "thinking",
            },
            // Tool blocks are started by `tool_call`, which knows the id and name.
            Block::Tool(_) => StartBlock::ToolUse {
                id: "",
                input: Empty {},
                name: "",
                kind: "tool_use",
            },
        };
        self.start(kind, block, out)
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            let stop = BlockStop {
                kind: BLOCK_STOP,
                index,
            };
            json_frame(out, Some(BLOCK_STOP), &stop);
        }
    }

    /// A piece of the text of the block at `index`, a block of `kind`.
    fn block_delta(kind: Block, index: usize, text: &str, out: &mut Vec<u8>) {
        frame(out, Some(BLOCK_DELTA), |out| {
            SHAPES.deltas[kind.delta_shape()].write(out, |hole, out| match hole {
                0 => json::write(out, &index),
                _ => json::write(out, text),
            });
        });
    }

    fn text(&mut self, kind: Block, text: &str, out: &mut Vec<u8>) {
        let index = self.ensure(kind, out);
        Events::block_delta(kind, index, text, out);
    }
}

impl SseEncoder for Events {
    fn open(&mut self, out: &mut Vec<u8>) {
        let start = MessageStart {
            message: StartedMessage {
                content: [],
                id: &self.id,
                model: &self.model,
                role: "assistant",
                stop_reason: None,
                stop_sequence: None,
                kind: "message",
                usage: Usage {
                    input_tokens: self.prompt_tokens,
                    output_tokens: 0,
                },
            },
            kind: MESSAGE_START,
        };
        json_frame(out, Some(MESSAGE_START), &start);
    }

    fn delta(&mut self, text: &str, out: &mut Vec<u8>) {
        self.text(Block::Text, text, out);
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        self.text(Block::Thinking, text, out);
    }

    fn tool_call(&mut self, call: &ToolCallDelta, out: &mut Vec<u8>) {
        let index = match self.tools.iter().find(|(n, _)| *n == call.index) {
            Some((_, index)) => *index,
            None => {
                self.close(out);
                let block = StartBlock::ToolUse {
                    id: call.id.as_deref().unwrap_or_default(),
                    input: Empty {},
                    name: call.name.as_deref().unwrap_or_default(),
                    kind: "tool_use",
                };
                let index = self.start(Block::Tool(call.index), block, out);
                self.tools.push((call.index, index));
                index
            }
        };
        if call.arguments.is_empty() {
            return;
        }
        // A piece of a call that is no longer the open block still names its own index.
        Events::block_delta(Block::Tool(call.index), index, &call.arguments, out);
    }

    fn restart(&mut self, out: &mut Vec<u8>) {
        // Blocks already sent cannot be taken back; the new answer gets blocks of its own.
        self.close(out);
        self.tools.clear();
    }

    fn finish(&mut self, outcome: &ChatOutcome, out: &mut Vec<u8>) {
        for call in unstreamed_calls(outcome, |i| self.tools.iter().any(|(n, _)| *n == i)) {
            self.tool_call(&call, out);
        }
        if self.next_index == 0 {
            // No text at all: an empty text block, as Anthropic sends.
            self.ensure(Block::Text, out);
        }
        self.close(out);
        let delta = MessageDelta {
            delta: Stop {
                stop_reason: outcome_stop(outcome),
                stop_sequence: None,
            },
            kind: MESSAGE_DELTA,
            usage: Usage {
                input_tokens: outcome.usage.input,
                output_tokens: outcome.usage.output,
            },
        };
        json_frame(out, Some(MESSAGE_DELTA), &delta);
        json_frame(out, Some(MESSAGE_STOP), &MessageStop { kind: MESSAGE_STOP });
    }

    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        json_frame(out, Some("error"), &error.body(Api::Anthropic));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::{AttemptOutcome, AttemptRecord};
    use crate::serve::openai::tests::answered;

    fn call(index: u32, id: Option<&str>, arguments: &str) -> ToolCallDelta {
        ToolCallDelta {
            index,
            id: id.map(Into::into),
            name: id.map(|i| format!("f{i}")),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn a_stream_s_events_are_written_byte_for_byte() {
        let mut e = Events::new("msg_7".into(), "m\u{7}\"", 12);
        let mut out = Vec::new();
        e.open(&mut out);
        e.reasoning("hm\n", &mut out);
        e.delta("Hel\"lo", &mut out);
        e.delta(" there", &mut out);
        e.tool_call(&call(0, Some("call_1"), "{\"a\""), &mut out);
        e.tool_call(&call(1, Some("call_2"), ""), &mut out);
        e.tool_call(&call(0, None, ":1}"), &mut out);
        e.restart(&mut out);
        e.delta("again", &mut out);
        e.finish(&answered("again", "hm", true, Some("tool_calls")), &mut out);
        let mut failed = ApiError::overloaded("busy", 3);
        failed.attempts = vec![
            AttemptRecord {
                deployment: "d\"1".into(),
                group: "g".into(),
                outcome: AttemptOutcome::Failed,
                class: Some(crate::provider::ErrorClass::RateLimit),
                status: Some(429),
                error: Some("slow \"down\"".into()),
                ms: 12,
            },
            AttemptRecord {
                deployment: "d2".into(),
                group: "g".into(),
                outcome: AttemptOutcome::Cancelled,
                class: None,
                status: None,
                error: None,
                ms: 3,
            },
        ];
        e.fail(&failed, &mut out);
        insta::assert_snapshot!(String::from_utf8(out).unwrap());
    }

    #[test]
    fn an_answer_without_text_still_has_a_text_block() {
        let mut e = Events::new("msg_8".into(), "m", 0);
        let mut out = Vec::new();
        e.open(&mut out);
        e.finish(&answered("", "", false, Some("length")), &mut out);
        insta::assert_snapshot!(String::from_utf8(out).unwrap());
    }
}
