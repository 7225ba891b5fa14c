//! Traces over OTLP (`callbacks: [otel]`, `[langfuse]`), received by a real OTLP/HTTP
//! collector in the test and decoded with `opentelemetry-proto`: the spans of a success, a
//! retry, a fallback and a mid-stream continuation, with their parents and attributes;
//! Langfuse's endpoint and auth from its keys; a collector that never answers holding up no
//! request; a caller's `traceparent` as the parent; `ask` and `check` as a user runs them.

use std::sync::Arc;
use std::time::Duration;

use llmux::config::Config;
use llmux::router::{ChatOutcome, Origin, RouteError, Router, RouterOptions, Subscriber};
use llmux::telemetry::{Settings, Telemetry, Warnings, langfuse_auth};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use crate::support::{self, deployment};
use crate::upstream::{FakeUpstream, Reply};

mod collector;
mod start;

use collector::{Collector, Silent, int, text, texts};

/// How long a test waits for a flush (never reached when things work).
const FLUSH: Duration = Duration::from_secs(20);

/// `model_list` + the callbacks and variables given, the rest as written in `extra`.
fn config(models: &str, settings: &str, env: &[(&str, &str)], extra: &str) -> Config {
    let mut yaml =
        format!("model_list:\n{models}litellm_settings:\n{settings}environment_variables:\n");
    for (k, v) in env {
        yaml.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    yaml.push_str(extra);
    support::config(&yaml)
}

/// A router whose only subscriber is the exporter (no request log).
fn traced(cfg: Config) -> (Router, Telemetry) {
    let settings = Settings::from_config(&cfg);
    assert!(settings.problems.is_empty(), "{:?}", settings.problems);
    let t = Telemetry::start(&cfg, &settings, Warnings::Silent).unwrap();
    let router = support::router_from(
        cfg,
        RouterOptions {
            subscribers: vec![Arc::new(t.clone()) as Arc<dyn Subscriber>],
            ..RouterOptions::default()
        },
    );
    (router, t)
}

async fn run(router: &Router, model: &str, origin: Origin) -> Result<ChatOutcome, RouteError> {
    let stream = router.chat_from(model, support::ask("hello there"), origin);
    support::finish(stream).await.result
}

/// The request's span (no parent in this trace) and its attempts, in order.
fn split(spans: &[Span]) -> (&Span, Vec<&Span>) {
    let root = spans
        .iter()
        .find(|s| spans.iter().all(|o| o.span_id != s.parent_span_id))
        .expect("a request span");
    let mut attempts: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == root.span_id)
        .collect();
    attempts.sort_by_key(|s| int(&s.attributes, "llmux.attempt"));
    assert_eq!(
        attempts.len() + 1,
        spans.len(),
        "every other span is an attempt"
    );
    for s in spans {
        assert_eq!(s.trace_id, root.trace_id, "one trace per request");
    }
    (root, attempts)
}

fn event_names(span: &Span) -> Vec<&str> {
    span.events.iter().map(|e| e.name.as_str()).collect()
}

fn status(span: &Span) -> StatusCode {
    StatusCode::try_from(span.status.as_ref().map_or(0, |s| s.code)).unwrap()
}

const OTEL: &str = "  callbacks: [otel]\n";

#[tokio::test]
async fn a_success_is_a_request_span_with_one_attempt_and_genai_attributes() {
    let collector = Collector::start().await;
    let up = FakeUpstream::start(vec![Reply::openai_stream(
        &["fine", " thanks"],
        Some((5, 2)),
    )])
    .await;
    let cfg = config(
        &deployment("fast", "a1", &up.url, ""),
        OTEL,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url),
            ("OTEL_SERVICE_NAME", "gateway"),
        ],
        "",
    );
    let (router, t) = traced(cfg);
    run(&router, "fast", Origin::default()).await.unwrap();
    assert!(t.flush(FLUSH).await);

    let exports = collector.exports();
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0].path, "/v1/traces");
    let resource = exports[0].request.resource_spans[0]
        .resource
        .as_ref()
        .unwrap();
    assert_eq!(text(&resource.attributes, "service.name"), Some("gateway"));
    let spans = collector.spans();
    assert_eq!(spans.len(), 2);
    let (root, attempts) = split(&spans);
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.name, "chat fast");
    let a = &root.attributes;
    assert_eq!(text(a, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(text(a, "gen_ai.request.model"), Some("fast"));
    assert_eq!(text(a, "gen_ai.response.model"), Some("gpt-4o-mini"));
    assert_eq!(int(a, "gen_ai.usage.input_tokens"), Some(5));
    assert_eq!(int(a, "gen_ai.usage.output_tokens"), Some(2));
    assert_eq!(texts(a, "gen_ai.response.finish_reasons"), ["stop"]);
    assert_eq!(int(a, "llmux.attempts"), Some(1));
    assert_eq!(text(a, "llmux.deployment"), Some("a1"));
    assert!(
        collector::attr(a, "llmux.cost_usd").is_some(),
        "gpt-4o-mini has a price"
    );
    assert_eq!(status(root), StatusCode::Ok);
    // No content unless asked for.
    assert!(text(a, "gen_ai.input.messages").is_none());
    assert!(text(a, "gen_ai.output.messages").is_none());

    let at = &attempts[0].attributes;
    assert_eq!(attempts[0].name, "chat gpt-4o-mini");
    assert_eq!(text(at, "gen_ai.system"), Some("openai"));
    assert_eq!(text(at, "gen_ai.request.model"), Some("gpt-4o-mini"));
    assert_eq!(text(at, "llmux.group"), Some("fast"));
    assert_eq!(text(at, "llmux.deployment"), Some("a1"));
    assert_eq!(int(at, "llmux.attempt"), Some(1));
    assert_eq!(int(at, "gen_ai.usage.input_tokens"), Some(5));
    assert_eq!(int(at, "gen_ai.usage.output_tokens"), Some(2));
    assert!(event_names(attempts[0]).contains(&"gen_ai.first_token"));
    assert!(root.start_time_unix_nano <= attempts[0].start_time_unix_nano);
    assert!(attempts[0].end_time_unix_nano <= root.end_time_unix_nano);
}

#[tokio::test]
async fn a_retry_is_a_failed_attempt_span_and_a_retry_event() {
    let collector = Collector::start().await;
    let up = FakeUpstream::start(vec![
        Reply::status(503),
        Reply::openai_stream(&["ok"], Some((3, 1))),
    ])
    .await;
    let cfg = config(
        &deployment("fast", "a1", &up.url, ""),
        OTEL,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url)],
        "router_settings:\n  num_retries: 1\n",
    );
    let (router, t) = traced(cfg);
    run(&router, "fast", Origin::default()).await.unwrap();
    assert!(t.flush(FLUSH).await);
    let spans = collector.spans();
    let (root, attempts) = split(&spans);
    assert_eq!(attempts.len(), 2);
    assert_eq!(status(attempts[0]), StatusCode::Error);
    assert_eq!(text(&attempts[0].attributes, "error.type"), Some("server"));
    assert_eq!(
        int(&attempts[0].attributes, "http.response.status_code"),
        Some(503)
    );
    assert_eq!(status(attempts[1]), StatusCode::Ok);
    assert_eq!(int(&attempts[1].attributes, "llmux.attempt"), Some(2));
    assert_eq!(
        event_names(root)
            .iter()
            .filter(|n| **n == "llmux.retry")
            .count(),
        1
    );
    assert_eq!(int(&root.attributes, "llmux.attempts"), Some(2));
    assert_eq!(status(root), StatusCode::Ok);
}

#[tokio::test]
async fn a_fallback_is_an_event_and_the_answering_attempt_names_the_other_group() {
    let collector = Collector::start().await;
    let bad = FakeUpstream::start(vec![Reply::status(500)]).await;
    let good = FakeUpstream::start(vec![Reply::openai_stream(&["saved"], Some((4, 1)))]).await;
    let cfg = config(
        &format!(
            "{}{}",
            deployment("a", "a1", &bad.url, ""),
            deployment("b", "b1", &good.url, "")
        ),
        OTEL,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url)],
        "router_settings:\n  num_retries: 0\n  fallbacks: [{a: [b]}]\n",
    );
    let (router, t) = traced(cfg);
    let outcome = run(&router, "a", Origin::default()).await.unwrap();
    assert_eq!(outcome.group, "b");
    assert!(t.flush(FLUSH).await);
    let spans = collector.spans();
    let (root, attempts) = split(&spans);
    assert_eq!(attempts.len(), 2);
    assert_eq!(text(&attempts[0].attributes, "llmux.group"), Some("a"));
    assert_eq!(text(&attempts[1].attributes, "llmux.group"), Some("b"));
    assert_eq!(
        text(&attempts[1].attributes, "llmux.deployment"),
        Some("b1")
    );
    let fallback = root
        .events
        .iter()
        .find(|e| e.name == "llmux.fallback")
        .expect("a fallback event");
    assert_eq!(text(&fallback.attributes, "llmux.from"), Some("a"));
    assert_eq!(text(&fallback.attributes, "llmux.to"), Some("b"));
    assert_eq!(text(&root.attributes, "gen_ai.request.model"), Some("a"));
    assert_eq!(text(&root.attributes, "llmux.deployment"), Some("b1"));
}

#[tokio::test]
async fn a_mid_stream_continuation_links_the_attempt_that_continues_to_the_broken_one() {
    let collector = Collector::start().await;
    let cut = FakeUpstream::start(vec![
        Reply::openai_stream(&["The answer", " is", " forty"], None).reset_after(4),
    ])
    .await;
    let rescue = FakeUpstream::start(vec![Reply::openai_stream(&["-two."], Some((30, 2)))]).await;
    let cfg = config(
        &format!(
            "{}{}",
            deployment("a", "a1", &cut.url, ""),
            deployment("b", "b1", &rescue.url, "")
        ),
        OTEL,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url)],
        "router_settings:\n  num_retries: 0\n  fallbacks: [{a: [b]}]\nllmux:\n  mid_stream_failover: continue\n",
    );
    let (router, t) = traced(cfg);
    let outcome = run(&router, "a", Origin::default()).await.unwrap();
    assert!(outcome.continued);
    assert!(t.flush(FLUSH).await);
    let spans = collector.spans();
    let (root, attempts) = split(&spans);
    assert_eq!(attempts.len(), 2);
    let broken = attempts[0];
    assert_eq!(status(broken), StatusCode::Error);
    assert!(collector::attr(&broken.attributes, "llmux.after_tokens").is_some());
    let continues = attempts[1];
    assert_eq!(continues.links.len(), 1);
    assert_eq!(continues.links[0].span_id, broken.span_id);
    assert_eq!(continues.links[0].trace_id, root.trace_id);
    let mid = root
        .events
        .iter()
        .find(|e| e.name == "llmux.mid_stream")
        .expect("a mid-stream event");
    assert_eq!(text(&mid.attributes, "llmux.mode"), Some("continue"));
    assert!(event_names(root).contains(&"llmux.fallback"));
}

#[tokio::test]
async fn langfuse_gets_its_endpoint_basic_auth_and_generation_attributes_and_not_the_otlp_headers()
{
    let otel = Collector::start().await;
    let langfuse = Collector::start().await;
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["hi"], Some((7, 3)))]).await;
    let cfg = config(
        &deployment("fast", "a1", &up.url, ""),
        "  success_callback: [langfuse]\n  callbacks: [otel]\n",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &otel.url),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-collector-key=collector-secret",
            ),
            ("LANGFUSE_PUBLIC_KEY", "pk-lf-test"),
            ("LANGFUSE_SECRET_KEY", "sk-lf-secret"),
            ("LANGFUSE_HOST", &langfuse.url),
        ],
        "",
    );
    let (router, t) = traced(cfg);
    run(&router, "fast", Origin::default()).await.unwrap();
    assert!(t.flush(FLUSH).await);

    let lf = langfuse.exports();
    assert_eq!(lf.len(), 1);
    assert_eq!(lf[0].path, "/api/public/otel/v1/traces");
    let auth = lf[0].headers["authorization"].to_str().unwrap();
    assert_eq!(auth, langfuse_auth("pk-lf-test", "sk-lf-secret"));
    assert_eq!(auth, "Basic cGstbGYtdGVzdDpzay1sZi1zZWNyZXQ=");
    assert_eq!(lf[0].headers["x-langfuse-ingestion-version"], "4");
    assert!(
        lf[0].headers.get("x-collector-key").is_none(),
        "the collector's key stays with it"
    );

    let ot = otel.exports();
    assert_eq!(ot[0].headers["x-collector-key"], "collector-secret");
    assert!(
        ot[0].headers.get("authorization").is_none(),
        "Langfuse's keys stay with it"
    );

    let spans = langfuse.spans();
    let (root, attempts) = split(&spans);
    assert_eq!(
        text(&root.attributes, "langfuse.observation.type"),
        Some("span")
    );
    assert_eq!(
        text(&root.attributes, "langfuse.trace.name"),
        Some("llmux fast")
    );
    let a = &attempts[0].attributes;
    assert_eq!(text(a, "langfuse.observation.type"), Some("generation"));
    assert_eq!(
        text(a, "langfuse.observation.model.name"),
        Some("gpt-4o-mini")
    );
    let usage: serde_json::Value =
        serde_json::from_str(text(a, "langfuse.observation.usage_details").unwrap()).unwrap();
    assert_eq!(
        usage,
        serde_json::json!({"input": 7, "output": 3, "total": 10})
    );
    let cost: serde_json::Value =
        serde_json::from_str(text(a, "langfuse.observation.cost_details").unwrap()).unwrap();
    assert!(cost["total"].as_f64().unwrap() > 0.0);
    assert!(text(a, "langfuse.observation.completion_start_time").is_some());
}

#[tokio::test]
async fn success_callback_skips_failed_requests_and_failure_callback_takes_only_them() {
    let ok_side = Collector::start().await;
    let up = FakeUpstream::start_by_body(|body| {
        if body["messages"][0]["content"] == "fail" {
            Reply::status(400)
        } else {
            Reply::openai_stream(&["ok"], Some((1, 1)))
        }
    })
    .await;
    let cfg = config(
        &deployment("fast", "a1", &up.url, ""),
        "  success_callback: [otel]\n",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &ok_side.url)],
        "router_settings:\n  num_retries: 0\n",
    );
    let (router, t) = traced(cfg);
    for prompt in ["fail", "fine", "fail"] {
        support::run(&router, "fast", support::ask(prompt)).await;
    }
    assert!(t.flush(FLUSH).await);
    let spans = ok_side.spans();
    assert_eq!(
        spans.len(),
        2,
        "one answered request: its span and its attempt's"
    );
    assert!(spans.iter().all(|s| status(s) == StatusCode::Ok));

    // failure_callback: the failed ones only, with the class of the last failure.
    let bad_side = Collector::start().await;
    let cfg = config(
        &deployment("fast", "a1", &up.url, ""),
        "  failure_callback: [otel]\n",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &bad_side.url)],
        "router_settings:\n  num_retries: 0\n",
    );
    let (router, t) = traced(cfg);
    for prompt in ["fine", "fail"] {
        support::run(&router, "fast", support::ask(prompt)).await;
    }
    assert!(t.flush(FLUSH).await);
    let spans = bad_side.spans();
    let (root, attempts) = split(&spans);
    assert_eq!(attempts.len(), 1);
    assert_eq!(status(root), StatusCode::Error);
    assert_eq!(text(&root.attributes, "error.type"), Some("bad_request"));
}

#[tokio::test]
async fn message_content_is_captured_only_when_the_convention_says_so() {
    let collector = Collector::start().await;
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["fine"], Some((2, 1)))]).await;
    let cfg = config(
        &deployment("fast", "a1", &up.url, ""),
        OTEL,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url),
            ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
        ],
        "",
    );
    let (router, t) = traced(cfg);
    run(&router, "fast", Origin::default()).await.unwrap();
    assert!(t.flush(FLUSH).await);
    let spans = collector.spans();
    let (root, _) = split(&spans);
    let input: serde_json::Value =
        serde_json::from_str(text(&root.attributes, "gen_ai.input.messages").unwrap()).unwrap();
    assert_eq!(input[0]["role"], "user");
    assert_eq!(input[0]["parts"][0]["content"], "hello there");
    let output: serde_json::Value =
        serde_json::from_str(text(&root.attributes, "gen_ai.output.messages").unwrap()).unwrap();
    assert_eq!(output[0]["parts"][0]["content"], "fine");
}

#[tokio::test]
async fn a_traceparent_becomes_the_parent_and_an_unsampled_one_is_not_traced() {
    let collector = Collector::start().await;
    let cfg = config(
        "  - model_name: m\n    litellm_params: { model: mock/m, mock_response: hi }\n",
        OTEL,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url)],
        "",
    );
    let (router, t) = traced(cfg);
    let origin = |flags: &str| Origin {
        traceparent: Some(format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}"
        )),
        tracestate: Some("vendor=x".to_string()),
    };
    run(&router, "m", origin("01")).await.unwrap();
    run(&router, "m", origin("00")).await.unwrap();
    assert!(t.flush(FLUSH).await);
    let spans = collector.spans();
    assert_eq!(spans.len(), 2, "the unsampled request sent nothing");
    let root = spans
        .iter()
        .find(|s| s.parent_span_id == [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        .expect("the request's span has the caller's span as parent");
    let hex: String = root.trace_id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(root.trace_state, "vendor=x");
}

#[tokio::test]
async fn a_collector_that_never_answers_holds_up_no_request() {
    let silent = Silent::start().await;
    let cfg = config(
        "  - model_name: m\n    litellm_params: { model: mock/m, mock_response: hi }\n",
        OTEL,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &silent.url),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
        ],
        "",
    );
    let (router, t) = traced(cfg);
    for _ in 0..5 {
        run(&router, "m", Origin::default()).await.unwrap();
    }
    // The export goes out and hangs on the silent collector...
    let flushing = tokio::spawn({
        let t = t.clone();
        async move { t.flush(FLUSH).await }
    });
    silent.connected.notified().await;
    // ...while requests go on being answered.
    for _ in 0..20 {
        let outcome = run(&router, "m", Origin::default()).await.unwrap();
        assert_eq!(outcome.text, "hi");
    }
    // The hung export ends at its timeout; the batch is dropped, the exporter goes on.
    assert!(
        flushing.await.unwrap(),
        "the flush returns once the export timed out"
    );
    assert!(t.flush(FLUSH).await);
    assert_eq!(t.dropped(), 0, "the queue never filled");
}

#[tokio::test]
async fn ask_sends_its_trace_before_it_exits_and_check_says_where_without_keys() {
    let collector = Collector::start().await;
    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("config.yaml");
    std::fs::write(
        &config_path,
        "model_list:\n  - model_name: m\n    litellm_params: { model: mock/m, mock_response: hi }\n\
         litellm_settings:\n  callbacks: [otel, langfuse]\n",
    )
    .unwrap();
    let llmux = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_llmux"));
        cmd.arg("--config")
            .arg(&config_path)
            .args(args)
            .env("LLMUX_DATA_DIR", home.path().join("data"))
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url)
            .env("OTEL_EXPORTER_OTLP_HEADERS", "api-key=otlp-secret-123")
            .env("LANGFUSE_PUBLIC_KEY", "pk-lf-1")
            .env("LANGFUSE_SECRET_KEY", "sk-lf-secret-456")
            .env("LANGFUSE_HOST", &collector.url)
            .stdin(std::process::Stdio::null());
        cmd
    };
    let mut check = llmux(&["check"]);
    let out = tokio::task::spawn_blocking(move || check.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains(&format!(
            "telemetry: otel: traces of every request over OTLP http/protobuf to {}/v1/traces, headers api-key",
            collector.url
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "telemetry: langfuse: traces of every request over OTLP http/protobuf to {}/api/public/otel/v1/traces, headers authorization, x-langfuse-ingestion-version",
            collector.url
        )),
        "{stdout}"
    );
    for secret in [
        "otlp-secret-123",
        "sk-lf-secret-456",
        "cGstbGYtMTpzay1sZi1zZWNyZXQtNDU2",
    ] {
        assert!(!stdout.contains(secret), "{secret} printed: {stdout}");
    }

    let mut ask = llmux(&["ask", "-m", "m", "hello"]);
    let out = tokio::task::spawn_blocking(move || ask.output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Sent before exit, to both destinations (they are the same collector here).
    let exports = collector.exports();
    let mut paths: Vec<&str> = exports.iter().map(|e| e.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["/api/public/otel/v1/traces", "/v1/traces"]);
    assert_eq!(collector.spans().len(), 4);
}

#[tokio::test]
async fn a_traceparent_on_a_serve_request_parents_its_trace_on_both_apis() {
    let collector = Collector::start().await;
    let cfg = config(
        "  - model_name: m\n    litellm_params: { model: mock/m, mock_response: hi }\n",
        OTEL,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url)],
        "",
    );
    let (router, t) = traced(cfg);
    let server = llmux::serve::spawn(router, crate::serve::options())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let calls = [
        (
            "/v1/chat/completions",
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        (
            "/v1/messages",
            serde_json::json!({"model": "m", "max_tokens": 10, "stream": true,
                "messages": [{"role": "user", "content": "hi"}]}),
            "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01",
        ),
    ];
    for (path, body, traceparent) in &calls {
        let r = client
            .post(format!("{}{path}", server.url()))
            .header("traceparent", *traceparent)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    assert!(t.flush(FLUSH).await);
    let spans = collector.spans();
    assert_eq!(spans.len(), 4, "two requests, one attempt each");
    for (_, _, traceparent) in &calls {
        let parts: Vec<&str> = traceparent.split('-').collect();
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let root = spans
            .iter()
            .find(|s| hex(&s.parent_span_id) == parts[2])
            .unwrap_or_else(|| panic!("no span under {traceparent}"));
        assert_eq!(hex(&root.trace_id), parts[1]);
        assert_eq!(
            root.kind, 2,
            "a request that came with a parent is a server span"
        );
        assert!(
            spans
                .iter()
                .any(|s| s.parent_span_id == root.span_id && s.trace_id == root.trace_id),
            "its attempt is under it"
        );
    }
    server.shutdown().await.unwrap();
}
