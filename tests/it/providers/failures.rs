//! Failures every provider shares (statuses, Retry-After, refused and reset connections,
//! malformed and truncated streams, estimated usage, dropped streams) and the `mock/`
//! provider in paused time.

use std::time::Duration;

use futures::StreamExt;
use llmux::config::{Deployment, MockParams, Wire};
use llmux::provider::{self, ErrorClass, StreamEvent, estimate_prompt_tokens, estimate_tokens};
use serde_json::json;

use super::{KEY, deployment, drain, non_streaming, openai, request, run, run_releasing, sse};
use crate::faults::raw::{Raw, RawUpstream};
use crate::support;
use crate::upstream::{FakeUpstream, Net, Reply, ResetGate, net_test};

net_test!(rate_limits_carry_retry_after_in_seconds_or_as_a_date);
async fn rate_limits_carry_retry_after_in_seconds_or_as_a_date(net: Net) {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
    let up = FakeUpstream::start_on(
        net,
        vec![
            Reply::status(429).retry_after("1"),
            Reply::status(429).retry_after(&date),
            Reply::status(429).header("retry-after-ms", "1500"),
        ],
    )
    .await;
    let d = openai(&up);
    let e = run(net, &d, &request()).await.error.unwrap();
    assert_eq!((e.class, e.status), (ErrorClass::RateLimit, Some(429)));
    assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
    let e = run(net, &d, &request()).await.error.unwrap();
    let wait = e.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );
    let e = run(net, &d, &request()).await.error.unwrap();
    assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
}

net_test!(error_statuses_map_to_classes_and_never_echo_the_key);
async fn error_statuses_map_to_classes_and_never_echo_the_key(net: Net) {
    let echo = json!({"error": {"message": format!("Incorrect API key provided: {KEY}")}});
    let up = FakeUpstream::start_on(
        net,
        vec![
            Reply::status(500),
            Reply::status(503),
            Reply::raw(401, "application/json", vec![echo.to_string()]),
            Reply::status(404),
            Reply::raw(
                400,
                "application/json",
                vec![
                    json!({"error": {"message":
            "This model's maximum context length is 8192 tokens"}})
                    .to_string(),
                ],
            ),
        ],
    )
    .await;
    let d = openai(&up);
    let expect = [
        (ErrorClass::Server, 500),
        (ErrorClass::Server, 503),
        (ErrorClass::Auth, 401),
        (ErrorClass::NotFound, 404),
        (ErrorClass::ContextWindow, 400),
    ];
    for (class, status) in expect {
        let e = run(net, &d, &request()).await.error.unwrap();
        assert_eq!((e.class, e.status), (class, Some(status)), "{e}");
        assert!(!e.message.contains(KEY) && !e.to_string().contains(KEY));
    }
}

net_test!(connection_refused_is_a_network_error);
async fn connection_refused_is_a_network_error(net: Net) {
    let url = support::refused_url(net);
    let d = deployment(Wire::OpenAi, "openai", "gpt-4o", &format!("{url}/v1"));
    let e = run(net, &d, &request()).await.error.unwrap();
    assert_eq!(e.class, ErrorClass::Network);
    assert!(e.message.contains("connection refused"), "{e}");
}

// An upstream that read the request may have acted on it (a generation, and its cost):
// whether it then closes a new connection or a kept-alive one, the request is sent once and
// the failure is reported, never retried on another connection by the client.
net_test!(an_upstream_that_reads_the_request_then_closes_gets_it_exactly_once);
async fn an_upstream_that_reads_the_request_then_closes_gets_it_exactly_once(net: Net) {
    let up = RawUpstream::start_on(net, vec![Raw::CloseAfterRequest]).await;
    let d = deployment(Wire::OpenAi, "openai", "gpt-4o", &up.url);
    let e = run(net, &d, &non_streaming()).await.error.unwrap();
    assert_eq!(e.class, ErrorClass::Network, "{e}");
    assert!(e.message.contains("closed by the upstream"), "{e}");
    assert_eq!((up.calls(), up.requests()), (1, 1), "new connection");

    let answer = json!({"choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "first"}}]})
    .to_string();
    let answer: &'static str = answer.leak();
    let up = RawUpstream::start_on(net, vec![Raw::AnswerThenCloseAfterNext(answer)]).await;
    let d = deployment(Wire::OpenAi, "openai", "gpt-4o", &up.url);
    let client = net.client();
    let first = drain(provider::open(&client, &d, &non_streaming()).await.unwrap()).await;
    assert_eq!(first.text(), "first");
    let e = match provider::open(&client, &d, &non_streaming()).await {
        Ok(stream) => drain(stream).await.error.unwrap(),
        Err(e) => e,
    };
    assert_eq!(e.class, ErrorClass::Network, "{e}");
    assert_eq!(
        (up.calls(), up.requests()),
        (1, 2),
        "the second request went out once, on the kept-alive connection"
    );
}

net_test!(a_reset_mid_stream_is_a_network_error_after_the_text_so_far);
async fn a_reset_mid_stream_is_a_network_error_after_the_text_so_far(net: Net) {
    // Chunks: role, "Hel", "lo", ... — cut after "Hel".
    let gate = ResetGate::new("Hel");
    let reply =
        Reply::openai_stream(&["Hel", "lo", "!"], Some((5, 3))).reset_after_shown(2, gate.clone());
    let up = FakeUpstream::start_on(net, vec![reply]).await;
    let out = run_releasing(net, &openai(&up), &request(), Some(&gate)).await;
    assert_eq!(out.text(), "Hel");
    assert_eq!(out.err().class, ErrorClass::Network);
    assert!(out.err().message.contains("mid-stream"), "{}", out.err());
}

net_test!(malformed_and_truncated_streams_are_protocol_errors);
async fn malformed_and_truncated_streams_are_protocol_errors(net: Net) {
    let malformed = vec!["data: {\"choices\": [{\"delta\": {\"content\": \"x\"}\n\n".to_string()];
    let no_end = sse(&[json!({"choices": [{"index": 0, "delta": {"content": "Hel"}}]})]);
    let cut_in_event = vec![
        "data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"Hel\"}}]}\n\n".to_string(),
        "data: {\"choices\": [{\"index\": 0, \"delta\":".to_string(),
    ];
    let up = FakeUpstream::start_on(
        net,
        vec![
            Reply::sse(malformed),
            Reply::sse(no_end),
            Reply::sse(cut_in_event),
            Reply::raw(200, "application/json", vec!["{not json".into()]),
        ],
    )
    .await;
    let d = openai(&up);
    for (what, req) in [
        ("malformed", request()),
        ("truncated", request()),
        ("truncated", request()),
        ("malformed", non_streaming()),
    ] {
        let out = run(net, &d, &req).await;
        assert_eq!(out.err().class, ErrorClass::Protocol, "{what}");
        assert!(out.err().message.contains(what), "{what}: {}", out.err());
    }
}

net_test!(a_finish_reason_without_done_still_completes);
async fn a_finish_reason_without_done_still_completes(net: Net) {
    let chunks = sse(&[
        json!({"choices": [{"index": 0, "delta": {"content": "All"}}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
    ]);
    let up = FakeUpstream::start_on(net, vec![Reply::sse(chunks)]).await;
    let out = run(net, &openai(&up), &request()).await;
    assert_eq!(out.text(), "All");
    assert_eq!(out.finish, Some(Some("length".into())));
}

net_test!(usage_is_estimated_and_marked_when_the_provider_sends_none);
async fn usage_is_estimated_and_marked_when_the_provider_sends_none(net: Net) {
    let up =
        FakeUpstream::start_on(net, vec![Reply::openai_stream(&["Hello", " there"], None)]).await;
    let req = request();
    let u = run(net, &openai(&up), &req).await.usage();
    assert!(u.estimated);
    assert_eq!(u.input, estimate_prompt_tokens(&req.messages));
    assert_eq!(u.output, estimate_tokens("Hello there"));
}

net_test!(dropping_a_stream_closes_the_upstream_connection);
async fn dropping_a_stream_closes_the_upstream_connection(net: Net) {
    let texts: Vec<String> = (0..200).map(|i| format!(" w{i}")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let reply = Reply::openai_stream(&texts, None).delay_each(Duration::from_millis(5));
    let up = FakeUpstream::start_on(net, vec![reply]).await;
    let client = net.client();
    let mut stream = provider::open(&client, &openai(&up), &request())
        .await
        .unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::Delta(" w0".into())
    );
    drop(stream);
    tokio::time::timeout(Duration::from_secs(20), up.wait_disconnect())
        .await
        .expect("the upstream should see the client go away");
    assert_eq!(up.disconnects(), 1);
}

fn mock(params: MockParams) -> Deployment {
    let mut d = deployment(Wire::Mock, "mock", "demo", "");
    d.api_key = None;
    d.mock = Some(params);
    d
}

#[tokio::test(start_paused = true)]
async fn mock_answers_its_response_a_word_at_a_time_after_ttft() {
    let d = mock(MockParams {
        response: Some("Hello mock world".into()),
        ttft: Duration::from_millis(800),
        tokens_per_s: 10.0,
        ..MockParams::default()
    });
    let req = request();
    let started = tokio::time::Instant::now();
    let client = Net::HTTP.client();
    let mut stream = provider::open(&client, &d, &req).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first, StreamEvent::Delta("Hello".into()));
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "ttft is waited"
    );
    let out = drain(stream).await;
    assert_eq!(out.deltas, [" mock", " world"]);
    let u = out.usage();
    assert_eq!(
        (u.input, u.output, u.estimated),
        (estimate_prompt_tokens(&req.messages), 3, false)
    );
    assert_eq!(out.finish, Some(Some("stop".into())));
}

#[tokio::test(start_paused = true)]
async fn mock_generates_the_asked_number_of_tokens() {
    let d = mock(MockParams {
        tokens: 40,
        ..MockParams::default()
    });
    let out = run(Net::HTTP, &d, &request()).await;
    assert_eq!(out.deltas.len(), 40);
    assert_eq!(out.usage().output, 40);
    assert!(out.text().starts_with("## "), "{}", out.text());
}

#[tokio::test(start_paused = true)]
async fn mock_error_rate_one_always_fails_before_any_token() {
    let d = mock(MockParams {
        error: Some(503),
        error_rate: 1.0,
        ..MockParams::default()
    });
    let e = run(Net::HTTP, &d, &request()).await.error.unwrap();
    assert_eq!((e.class, e.status), (ErrorClass::Server, Some(503)));
    assert!(e.message.contains("mock_error_rate"));
    let d = mock(MockParams {
        error_rate: 1.0,
        ..MockParams::default()
    });
    assert_eq!(
        run(Net::HTTP, &d, &request()).await.error.unwrap().status,
        Some(500)
    );
}
