//! The rows of the fault matrix: each upstream fault, how it is served, and the outcome
//! expected of the router — (class, retried, cooled, fell back), the final answer, and an
//! extra check where a number matters (a Retry-After wait, a cooldown's length, a limit's
//! message). `matrix` runs them.

use std::time::Duration;

use llmux::provider::ErrorClass;
use llmux::router::{ChatOutcome, RouteError, RouteEvent, RouteEventKind};
use serde_json::json;

use super::raw::Raw;
use crate::upstream::{Reply, ResetGate};

/// The key every deployment of the matrix carries.
pub(super) const KEY: &str = "sk-fault-matrix-key-0123456789";
/// One byte per this interval in the drip rows.
pub(super) const DRIP: Duration = Duration::from_millis(20);
/// Fifty megabytes of answer.
pub(super) const FIFTY_MB: usize = 50 * 1000 * 1000;
/// A ten-megabyte SSE line.
pub(super) const TEN_MB: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Outcome {
    pub(super) class: Option<ErrorClass>,
    pub(super) retried: bool,
    pub(super) cooled: bool,
    pub(super) fell_back: bool,
}

pub(super) const fn out(
    class: Option<ErrorClass>,
    retried: bool,
    cooled: bool,
    fell_back: bool,
) -> Outcome {
    Outcome {
        class,
        retried,
        cooled,
        fell_back,
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Wire {
    OpenAi,
    Anthropic,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Topology {
    Solo,
    Pair,
}

pub(super) enum Fault {
    /// The first reply of a [`FakeUpstream`] (the second is a proper answer).
    Fake(Reply),
    /// The first script of a [`RawUpstream`] (the second is a proper answer).
    Raw(Raw),
    /// Nothing listens.
    Refused,
}

/// What a row saw, for its extra check.
pub(super) struct Observed {
    pub(super) result: Result<ChatOutcome, RouteError>,
    pub(super) events: Vec<RouteEvent>,
    /// Requests the faulty upstream received (`None` when nothing listens).
    pub(super) calls: Option<usize>,
    /// Body bytes the raw upstream managed to write.
    pub(super) written: Option<u64>,
}

impl Observed {
    pub(super) fn failure_message(&self) -> String {
        self.events
            .iter()
            .find_map(|e| match &e.kind {
                RouteEventKind::Failure { message, .. } => Some(message.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    pub(super) fn retry_delays(&self) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                RouteEventKind::Retry { delay_ms } => Some(delay_ms),
                _ => None,
            })
            .collect()
    }

    pub(super) fn cooldown_secs(&self) -> Vec<f64> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                RouteEventKind::Cooldown { secs, .. } => Some(secs),
                _ => None,
            })
            .collect()
    }
}

pub(super) type Check = fn(&Observed) -> Result<(), String>;

pub(super) struct Row {
    pub(super) name: &'static str,
    pub(super) wire: Wire,
    pub(super) topology: Topology,
    /// Ask for a stream (else a whole JSON answer).
    pub(super) stream: bool,
    /// More `litellm_params` lines for `a`'s deployments.
    pub(super) extra: &'static str,
    pub(super) fault: Fault,
    pub(super) expect: Outcome,
    /// The final answer.
    pub(super) answer: &'static str,
    pub(super) check: Option<Check>,
}

impl Row {
    pub(super) fn new(
        name: &'static str,
        fault: Fault,
        expect: Outcome,
        answer: &'static str,
    ) -> Row {
        Row {
            name,
            wire: Wire::OpenAi,
            topology: Topology::Solo,
            stream: true,
            extra: "",
            fault,
            expect,
            answer,
            check: None,
        }
    }
    pub(super) fn extra(mut self, extra: &'static str) -> Row {
        self.extra = extra;
        self
    }
    pub(super) fn pair(mut self) -> Row {
        self.topology = Topology::Pair;
        self
    }
    pub(super) fn whole(mut self) -> Row {
        self.stream = false;
        self
    }
    pub(super) fn anthropic(mut self) -> Row {
        self.wire = Wire::Anthropic;
        self
    }
    pub(super) fn check(mut self, check: Check) -> Row {
        self.check = Some(check);
        self
    }
}

use ErrorClass::{Auth, Network, NotFound, Protocol, RateLimit, Server, Timeout};

pub(super) const FROM_A: &str = "from a";
pub(super) const FROM_B: &str = "from b";

/// The proper answer a faulty upstream gives the second time, as a fake reply.
pub(super) fn ok_reply(wire: Wire, stream: bool) -> Reply {
    match (wire, stream) {
        (Wire::OpenAi, true) => Reply::openai_stream(&[FROM_A], Some((3, 2))),
        (Wire::OpenAi, false) => Reply::openai_json(FROM_A, Some((3, 2))),
        (Wire::Anthropic, true) => Reply::anthropic_stream(&[FROM_A], Some((3, 2))),
        (Wire::Anthropic, false) => Reply::anthropic_json(FROM_A, Some((3, 2))),
    }
}

/// The same answer for the raw upstream.
pub(super) fn ok_raw(wire: Wire, stream: bool) -> Raw {
    let pieces = ok_reply(wire, stream).chunks();
    if stream {
        Raw::sse(pieces)
    } else {
        Raw::json(&String::from_utf8(pieces.concat()).unwrap())
    }
}

/// An SSE body written one byte per piece after `whole_first` pieces written whole.
pub(super) fn drip(whole_first: &[&str], rest: &str) -> Reply {
    let mut pieces: Vec<String> = whole_first.iter().map(|s| s.to_string()).collect();
    pieces.extend(rest.chars().map(String::from));
    Reply::sse(pieces).delay_each(DRIP)
}

pub(super) fn openai_chunk(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"content": text}}]})
    )
}

/// `Retry-After` as an HTTP date this far ahead.
pub(super) fn date_in(secs: u64) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(secs))
}

pub(super) fn rows() -> Vec<Row> {
    let status = |s| Fault::Fake(Reply::status(s));
    let overloaded =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let anthropic_inband = {
        let mut r = Reply::anthropic_stream(&[], None).chunks();
        r.truncate(1);
        let mut pieces: Vec<String> = r
            .into_iter()
            .map(|c| String::from_utf8(c).unwrap())
            .collect();
        pieces.push(format!("event: error\ndata: {overloaded}\n\n"));
        Reply::sse(pieces)
    };
    let fifty_mb = |content_length| {
        Fault::Raw(Raw::Big {
            content_type: "application/json",
            prefix: br#"{"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":""#.to_vec(),
            fill: FIFTY_MB,
            suffix: br#""}}]}"#.to_vec(),
            content_length,
        })
    };
    let drip_wire = format!("{}data: [DONE]\n\n", openai_chunk("drip"));
    let split_utf8 = Fault::Raw(Raw::sse(vec![
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"caf\xC3".to_vec(),
        b"\xA9 \xE6\x97".to_vec(),
        b"\xFF ok\"}}]}\n\ndata: [DONE]\n\n".to_vec(),
    ]));
    vec![
        Row::new(
            "connection refused",
            Fault::Refused,
            out(Some(Network), true, false, true),
            FROM_B,
        ),
        Row::new(
            "reset before headers",
            Fault::Raw(Raw::ResetBeforeHeaders),
            out(Some(Network), true, false, false),
            FROM_A,
        ),
        Row::new(
            "reset mid-stream",
            Fault::Fake(
                Reply::openai_stream(&["partial", " answer"], None)
                    .reset_after_shown(3, ResetGate::new("partial answer")),
            ),
            out(Some(Network), true, false, false),
            "partial answerfrom a",
        )
        .check(|o| match &o.result {
            Ok(r) if r.continued => Ok(()),
            _ => Err("the answer was not continued".into()),
        }),
        Row::new(
            "401",
            status(401),
            out(Some(Auth), false, true, true),
            FROM_B,
        ),
        Row::new(
            "404",
            status(404),
            out(Some(NotFound), false, true, true),
            FROM_B,
        ),
        // A timeout, the upstream's or ours, is retried and cools no deployment alone: its
        // status (408) is one LiteLLM's should_retry allows.
        Row::new(
            "408",
            status(408),
            out(Some(Timeout), true, false, false),
            FROM_A,
        ),
        Row::new(
            "429, no Retry-After",
            status(429),
            out(Some(RateLimit), true, false, false),
            FROM_A,
        ),
        Row::new(
            "429, Retry-After: 1",
            Fault::Fake(Reply::status(429).retry_after("1")),
            out(Some(RateLimit), true, false, false),
            FROM_A,
        )
        .check(|o| match o.retry_delays()[..] {
            [d] if d >= 1000 => Ok(()),
            ref d => Err(format!("the retry did not wait out Retry-After: {d:?}")),
        }),
        Row::new(
            "429, Retry-After: HTTP date",
            Fault::Fake(Reply::status(429).retry_after(&date_in(3))),
            out(Some(RateLimit), true, false, false),
            FROM_A,
        )
        // A date has whole seconds and the row was built a moment before it runs: the wait
        // is up to 3 s, and longer than any first backoff (at most 500 ms).
        .check(|o| match o.retry_delays()[..] {
            [d] if (600..=3000).contains(&d) => Ok(()),
            ref d => Err(format!("the retry did not wait for the date: {d:?}")),
        }),
        Row::new(
            "429, Retry-After: 120 (over the 60 s wait)",
            Fault::Fake(Reply::status(429).retry_after("120")),
            out(Some(RateLimit), false, false, true),
            FROM_B,
        )
        .check(|o| match o.retry_delays()[..] {
            [] => Ok(()),
            ref d => Err(format!(
                "a 120 s Retry-After was waited out in-request: {d:?}"
            )),
        }),
        Row::new(
            "429, Retry-After: 3 (pair)",
            Fault::Fake(Reply::status(429).retry_after("3")),
            out(Some(RateLimit), true, true, false),
            FROM_A,
        )
        .pair()
        .check(|o| match o.cooldown_secs()[..] {
            [3.0] => Ok(()),
            ref s => Err(format!("the cooldown is not Retry-After: {s:?}")),
        }),
        Row::new(
            "429, Retry-After: date (pair)",
            Fault::Fake(Reply::status(429).retry_after(&date_in(30))),
            out(Some(RateLimit), true, true, false),
            FROM_A,
        )
        .pair()
        .check(|o| match o.cooldown_secs()[..] {
            [s] if (28.0..=30.0).contains(&s) => Ok(()),
            ref s => Err(format!("the cooldown is not the date: {s:?}")),
        }),
        Row::new(
            "500",
            status(500),
            out(Some(Server), true, false, false),
            FROM_A,
        ),
        Row::new(
            "502",
            status(502),
            out(Some(Server), true, false, false),
            FROM_A,
        ),
        Row::new(
            "503",
            status(503),
            out(Some(Server), true, false, false),
            FROM_A,
        ),
        Row::new(
            "529 overloaded (anthropic)",
            Fault::Fake(Reply::raw(
                529,
                "application/json",
                vec![overloaded.to_string()],
            )),
            out(Some(Server), true, false, false),
            FROM_A,
        )
        .anthropic(),
        Row::new(
            "overloaded_error in-band (anthropic)",
            Fault::Fake(anthropic_inband),
            out(Some(Server), true, false, false),
            FROM_A,
        )
        .anthropic(),
        Row::new(
            "stall, no bytes",
            Fault::Fake(
                Reply::openai_stream(&["late"], None).first_byte_after(Duration::from_secs(30)),
            ),
            out(Some(Timeout), true, false, false),
            FROM_A,
        )
        // Long enough for the retry's answer to start under load, short beside the stall.
        .extra("      stream_timeout: 1\n"),
        Row::new(
            "drip 1 B/20 ms, finishes",
            Fault::Fake(drip(&[], &drip_wire)),
            out(None, false, false, false),
            "drip",
        )
        .extra("      stream_timeout: 10\n"),
        Row::new(
            "drip 1 B/20 ms, > stream_timeout",
            Fault::Fake(drip(&[], &drip_wire)),
            out(Some(Timeout), true, false, false),
            FROM_A,
        )
        .extra("      stream_timeout: 0.6\n"),
        Row::new(
            "drip after 1st token, > timeout",
            Fault::Fake(drip(&[&openai_chunk("early")], &drip_wire)),
            out(Some(Timeout), true, false, false),
            "earlyfrom a",
        )
        .extra("      timeout: 0.8\n"),
        Row::new(
            "malformed JSON",
            Fault::Fake(Reply::sse(vec!["data: {not json\n\n".into()])),
            out(Some(Protocol), true, false, false),
            FROM_A,
        ),
        Row::new(
            "truncated SSE",
            Fault::Fake(Reply::sse(vec![
                "data: {\"choices\":[{\"delta\":{\"content\":\"cu".into(),
            ])),
            out(Some(Protocol), true, false, false),
            FROM_A,
        ),
        Row::new(
            "50 MB JSON, content-length",
            fifty_mb(true),
            out(Some(Protocol), true, false, false),
            FROM_A,
        )
        .whole()
        .check(|o| {
            let m = o.failure_message();
            let sent = o.written.unwrap_or(0);
            if !m.contains("over 16 MiB") {
                Err(format!("message: {m}"))
            } else if sent >= 16 << 20 {
                Err(format!("{sent} bytes were sent before the refusal"))
            } else {
                Ok(())
            }
        }),
        Row::new(
            "50 MB JSON, until EOF",
            fifty_mb(false),
            out(Some(Protocol), true, false, false),
            FROM_A,
        )
        .whole()
        .check(|o| {
            let m = o.failure_message();
            m.contains("over 16 MiB")
                .then_some(())
                .ok_or(format!("message: {m}"))
        }),
        Row::new(
            "10 MB SSE line",
            Fault::Raw(Raw::Big {
                content_type: "text/event-stream",
                prefix: b"data: ".to_vec(),
                fill: TEN_MB,
                suffix: b"\n\n".to_vec(),
                content_length: false,
            }),
            out(Some(Protocol), true, false, false),
            FROM_A,
        )
        .check(|o| {
            let m = o.failure_message();
            m.contains("SSE line longer than")
                .then_some(())
                .ok_or(format!("message: {m}"))
        }),
        Row::new(
            "invalid UTF-8 split across chunks",
            split_utf8,
            out(None, false, false, false),
            "café \u{FFFD}\u{FFFD} ok",
        ),
    ]
}
