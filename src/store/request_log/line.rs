//! One request-log line, written without serde for the four events every request has.
//!
//! A request through `llmux serve` logs `request`, `attempt`, `first_token` and `done`, and
//! serde_json spent ~12,000 instructions on their ~35 members (a tenth of the request),
//! most of it on escaping member names it could have written as they are. Those four are
//! written here member by member (the names as they are, the texts by serde), byte for byte
//! what serde_json writes (a property test holds them to it); every other event, rare by
//! nature, goes through serde.

use crate::router::{RouteEvent, RouteEventKind};

/// Appends `event` and a newline to `out`.
pub(super) fn write(out: &mut Vec<u8>, event: &RouteEvent) {
    let hot = matches!(
        event.kind,
        RouteEventKind::Request { .. }
            | RouteEventKind::Attempt
            | RouteEventKind::FirstToken { .. }
            | RouteEventKind::Done { .. }
    );
    if !hot {
        // Serializing plain data into memory does not fail.
        let _ = serde_json::to_writer(&mut *out, event);
        out.push(b'\n');
        return;
    }
    out.extend_from_slice(b"{\"request_id\":");
    number(out, event.request_id);
    out.extend_from_slice(b",\"group\":");
    text(out, &event.group);
    if let Some(deployment) = &event.deployment {
        out.extend_from_slice(b",\"deployment\":");
        text(out, deployment);
    }
    out.extend_from_slice(b",\"attempt\":");
    number(out, u64::from(event.attempt));
    out.extend_from_slice(b",\"at_unix_ms\":");
    number(out, event.at_unix_ms);
    out.extend_from_slice(b",\"elapsed_ms\":");
    number(out, event.elapsed_ms);
    match &event.kind {
        RouteEventKind::Request {
            requested,
            prompt_tokens,
            tags,
        } => {
            out.extend_from_slice(b",\"event\":\"request\",\"requested\":");
            text(out, requested);
            out.extend_from_slice(b",\"prompt_tokens\":");
            number(out, *prompt_tokens);
            if !tags.is_empty() {
                out.extend_from_slice(b",\"tags\":[");
                for (i, tag) in tags.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    text(out, tag);
                }
                out.push(b']');
            }
        }
        RouteEventKind::Attempt => out.extend_from_slice(b",\"event\":\"attempt\""),
        RouteEventKind::FirstToken { ttft_ms } => {
            out.extend_from_slice(b",\"event\":\"first_token\",\"ttft_ms\":");
            number(out, *ttft_ms);
        }
        RouteEventKind::Done {
            usage,
            cost_usd,
            ttft_ms,
            total_ms,
            finish_reason,
            cached,
        } => {
            out.extend_from_slice(b",\"event\":\"done\",\"usage\":{\"input\":");
            number(out, usage.input);
            out.extend_from_slice(b",\"output\":");
            number(out, usage.output);
            out.extend_from_slice(b",\"cached_input\":");
            number(out, usage.cached_input);
            out.extend_from_slice(b",\"cache_write\":");
            number(out, usage.cache_write);
            out.extend_from_slice(b",\"reasoning\":");
            number(out, usage.reasoning);
            out.extend_from_slice(if usage.estimated {
                b",\"estimated\":true}"
            } else {
                b",\"estimated\":false}"
            });
            if let Some(cost) = cost_usd {
                out.extend_from_slice(b",\"cost_usd\":");
                // A float, as `Usd` serializes itself.
                let _ = serde_json::to_writer(&mut *out, cost);
            }
            if let Some(ttft) = ttft_ms {
                out.extend_from_slice(b",\"ttft_ms\":");
                number(out, *ttft);
            }
            out.extend_from_slice(b",\"total_ms\":");
            number(out, *total_ms);
            if let Some(reason) = finish_reason {
                out.extend_from_slice(b",\"finish_reason\":");
                text(out, reason);
            }
            if *cached {
                out.extend_from_slice(b",\"cached\":true");
            }
        }
        _ => {}
    }
    out.extend_from_slice(b"}\n");
}

/// A text as a JSON string, by serde (writing into memory does not fail).
fn text(out: &mut Vec<u8>, text: &str) {
    let _ = serde_json::to_writer(&mut *out, text);
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::write;
    use crate::metrics::Usd;
    use crate::provider::{ErrorClass, Usage};
    use crate::router::{RouteEvent, RouteEventKind};

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z0-9/_.-]{0,16}", any::<String>()]
    }

    fn kind() -> impl Strategy<Value = RouteEventKind> {
        let usage = (any::<[u64; 5]>(), any::<bool>()).prop_map(|(n, estimated)| Usage {
            input: n[0],
            output: n[1],
            cached_input: n[2],
            cache_write: n[3],
            reasoning: n[4],
            estimated,
        });
        let done = (
            usage,
            prop::option::of((0u64..10_000_000_000_000).prop_map(Usd::from_pico)),
            prop::option::of(any::<u64>()),
            any::<u64>(),
            prop::option::of(any_text()),
            any::<bool>(),
        )
            .prop_map(
                |(usage, cost_usd, ttft_ms, total_ms, finish_reason, cached)| {
                    RouteEventKind::Done {
                        usage,
                        cost_usd,
                        ttft_ms,
                        total_ms,
                        finish_reason,
                        cached,
                    }
                },
            );
        prop_oneof![
            (
                any_text(),
                any::<u64>(),
                prop::collection::vec(any_text(), 0..3)
            )
                .prop_map(|(requested, prompt_tokens, tags)| RouteEventKind::Request {
                    requested,
                    prompt_tokens,
                    tags,
                }),
            Just(RouteEventKind::Attempt),
            any::<u64>().prop_map(|ttft_ms| RouteEventKind::FirstToken { ttft_ms }),
            done,
            // Through serde: the line is serde's whatever the event.
            any_text().prop_map(|message| RouteEventKind::Failure {
                class: ErrorClass::Server,
                status: Some(503),
                message,
                after_tokens: false,
            }),
            Just(RouteEventKind::Cancelled),
        ]
    }

    fn event() -> impl Strategy<Value = RouteEvent> {
        (
            any::<u64>(),
            any_text(),
            prop::option::of(any_text()),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            kind(),
        )
            .prop_map(
                |(request_id, group, deployment, attempt, at_unix_ms, elapsed_ms, kind)| {
                    RouteEvent {
                        request_id,
                        group,
                        deployment,
                        attempt,
                        at_unix_ms,
                        elapsed_ms,
                        kind,
                    }
                },
            )
    }

    proptest! {
        /// The line is serde_json's, byte for byte, and reads back as the same event.
        #[test]
        fn lines_are_what_serde_writes(event in event()) {
            let mut line = Vec::new();
            write(&mut line, &event);
            let mut expected = serde_json::to_vec(&event).unwrap_or_default();
            expected.push(b'\n');
            prop_assert_eq!(String::from_utf8_lossy(&line), String::from_utf8_lossy(&expected));
        }
    }
}
