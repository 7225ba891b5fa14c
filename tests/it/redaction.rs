//! Keys an upstream echoes back encoded: a fake upstream on real HTTP answers every request
//! with an error that quotes the key it received, in one encoding per path (plain,
//! URL-encoded, JSON-escaped, base64 standard and URL-safe with and without padding, inside a
//! longer base64 string such as `Basic base64(user:key)`, base64 then URL-encoded, and an
//! in-band error after a 200). None of it may come out of `ask -v`, `ask --json`, the request
//! log, serve's error answers or `/health?ping`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
};
use llmux::router::RouterOptions;
use llmux::secret::REDACTED;
use llmux::store::RequestLog;
use serde_json::{Value, json};

use crate::serve::{KEY as MASTER_KEY, get, options, post};
use crate::support;

/// The upstream key. Its `+`, `/` and `=` are escaped by URL encoders, and its base64 holds
/// `+` and `/` (standard) or `-` and `_` (URL-safe), so each encoding differs from the others.
const SECRET: &str = "sk-live+abc/def=~~~key???tail0123";

/// What the fake upstream echoes, by the first segment of the request's path.
const ENCODINGS: &[&str] = &[
    "plain",
    "url",
    "url-every-byte",
    "json-escaped",
    "b64",
    "b64-nopad",
    "b64url",
    "b64url-nopad",
    "basic-user",
    "b64-bearer",
    "b64url-aligned",
    "b64-then-url",
    "b64-json-slash",
    "in-band",
];

/// `key` as the upstream at `/<encoding>/…` quotes it, as JSON-string text (escapes kept).
fn encode(encoding: &str, key: &str) -> String {
    let percent = |s: &str, every: bool| -> String {
        s.bytes()
            .map(|b| {
                if !every && (b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    match encoding {
        "plain" | "in-band" => key.to_string(),
        "url" => percent(key, false),
        "url-every-byte" => percent(key, true),
        "json-escaped" => key.bytes().map(|b| format!("\\u{b:04x}")).collect(),
        "b64" => STANDARD.encode(key),
        "b64-nopad" => STANDARD_NO_PAD.encode(key),
        "b64url" => URL_SAFE.encode(key),
        "b64url-nopad" => URL_SAFE_NO_PAD.encode(key),
        // The key at each of the three alignments inside a longer encoded string.
        "basic-user" => format!("Basic {}", STANDARD.encode(format!("user:{key}"))),
        "b64-bearer" => STANDARD.encode(format!("Bearer {key}")),
        "b64url-aligned" => URL_SAFE_NO_PAD.encode(format!("ab:{key} and more")),
        "b64-then-url" => percent(&STANDARD.encode(key), false),
        "b64-json-slash" => STANDARD.encode(key).replace('/', "\\/"),
        other => panic!("no encoding {other}"),
    }
}

/// The fake upstream: every request fails with its key quoted in the path's encoding.
async fn echo(State(_): State<Arc<()>>, request: Request) -> Response {
    let encoding = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let key = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("no key came")
        .to_string();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let streamed = serde_json::from_slice::<Value>(&body).is_ok_and(|v| v["stream"] == true);
    let quoted = encode(&encoding, &key);
    let error = format!(r#"{{"error":{{"message":"Incorrect API key provided: {quoted}"}}}}"#);
    // In band: after a 200 and a first token, where the request streams (else a 401).
    let (status, content_type, body) = if encoding == "in-band" && streamed {
        let opening = json!({"choices":[{"index":0,"delta":{"content":"x"}}]});
        (
            StatusCode::OK,
            "text/event-stream",
            format!("data: {opening}\n\ndata: {error}\n\n"),
        )
    } else {
        (StatusCode::UNAUTHORIZED, "application/json", error)
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap()
}

/// Starts the echoing upstream; returns its `http://127.0.0.1:PORT`.
async fn start_upstream() -> String {
    let app = Router::new().fallback(echo).with_state(Arc::new(()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// One group per encoding (`g-<encoding>`), each one deployment at `<upstream>/<encoding>`.
fn config(upstream: &str, extra: &str) -> String {
    let mut yaml = String::from("model_list:\n");
    for e in ENCODINGS {
        yaml.push_str(&format!(
            "  - model_name: g-{e}\n    litellm_params: {{ model: openai/gpt-4o-mini, api_base: '{upstream}/{e}', api_key: '{SECRET}' }}\n    model_info: {{ id: d-{e} }}\n"
        ));
    }
    // No cooldowns: each group is called more than once.
    yaml.push_str("router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n");
    yaml.push_str(extra);
    yaml
}

/// Where `text` shows the key, plainly or in any of the encodings, or holds base64 that
/// decodes to the heart of the key; `None` when it is clean.
fn leak(text: &str) -> Option<String> {
    if text.contains(SECRET) {
        return Some("the key itself".into());
    }
    for e in ENCODINGS {
        let form = encode(e, SECRET);
        if text.contains(&form) {
            return Some(format!("{e}: {form}"));
        }
    }
    // The key's middle, whatever the alignment and padding of the base64 around it.
    let heart = &SECRET[3..SECRET.len() - 3];
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let engines = [
        GeneralPurpose::new(&alphabet::STANDARD, config),
        GeneralPurpose::new(&alphabet::URL_SAFE, config),
    ];
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || "+/-_".contains(c);
    for token in text.split(|c: char| !is_b64(c)).filter(|t| t.len() >= 8) {
        for start in 0..4 {
            let rest = &token[start..];
            let whole = &rest[..rest.len() - rest.len() % 4];
            for engine in &engines {
                if let Ok(bytes) = engine.decode(whole)
                    && String::from_utf8_lossy(&bytes).contains(heart)
                {
                    return Some(format!("base64 {token}"));
                }
            }
        }
    }
    None
}

fn assert_clean(what: &str, text: &str) {
    if let Some(found) = leak(text) {
        panic!("{what} shows the key ({found}):\n{text}");
    }
}

/// The binary with a private config and data dir.
fn llmux(home: &Path, cfg: &Path) -> Command {
    let mut cmd = crate::support::llmux(home);
    cmd.arg("--config").arg(cfg);
    cmd
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[test]
fn the_leak_finder_finds_every_encoding() {
    for e in ENCODINGS {
        let form = encode(e, SECRET);
        assert!(leak(&format!("error: {form}.")).is_some(), "{e}: {form}");
    }
    // And base64 of the key inside text it was not told about.
    let blob = URL_SAFE.encode(format!("xy{SECRET}zz"));
    assert!(leak(&format!("({blob})")).is_some(), "{blob}");
    assert_eq!(leak("Incorrect API key provided: [redacted]"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_verbose_json_and_the_request_log_show_no_encoding_of_the_key() {
    let upstream = start_upstream().await;
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("config.yaml");
    std::fs::write(&cfg, config(&upstream, "")).unwrap();
    // Private, as a file with literal keys should be (else check warns on every run).
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    for e in ENCODINGS {
        let group = format!("g-{e}");
        let mut verbose = llmux(home.path(), &cfg);
        verbose.args(["ask", "-v", "-m", &group, "hi"]);
        let out = output(verbose).await;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(1), "{e}: {stdout}{stderr}");
        assert!(
            stderr.contains("Incorrect API key provided") && stderr.contains(REDACTED),
            "{e}: the upstream's message is shown, the key in it redacted: {stderr}"
        );
        assert_clean(&format!("ask -v ({e}) stdout"), &stdout);
        assert_clean(&format!("ask -v ({e}) stderr"), &stderr);

        let mut json = llmux(home.path(), &cfg);
        json.args(["ask", "--json", "-m", &group, "hi"]);
        let out = output(json).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|err| panic!("{e}: not one JSON object ({err}): {stdout}"));
        assert!(v["error"].as_str().unwrap().contains(REDACTED), "{e}: {v}");
        assert_clean(&format!("ask --json ({e}) stdout"), &stdout);
        assert_clean(
            &format!("ask --json ({e}) stderr"),
            &String::from_utf8_lossy(&out.stderr),
        );
    }
    let log = std::fs::read_to_string(home.path().join("data/requests.jsonl")).unwrap();
    for e in ENCODINGS {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("d-{e}")) && l.contains(REDACTED)),
            "{e}: the failure is logged, redacted:\n{log}"
        );
    }
    assert_clean("the request log", &log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_errors_its_request_log_and_health_ping_show_no_encoding_of_the_key() {
    let upstream = start_upstream().await;
    let data = tempfile::tempdir().unwrap();
    let log_path = data.path().join("requests.jsonl");
    let yaml = config(
        &upstream,
        &format!("general_settings:\n  master_key: {MASTER_KEY}\n"),
    );
    let router = support::router_with(
        &yaml,
        RouterOptions {
            request_log: Some(std::sync::Arc::new(RequestLog::open(&log_path).unwrap())),
            ..RouterOptions::default()
        },
    );
    let server = llmux::serve::spawn(router.clone(), options())
        .await
        .unwrap();

    for e in ENCODINGS {
        for stream in [false, true] {
            let body = json!({
                "model": format!("g-{e}"),
                "messages": [{"role": "user", "content": "hi"}],
                "stream": stream,
            });
            let response = post(&server, "/v1/chat/completions", &body, Some(MASTER_KEY)).await;
            let text = response.text().await.unwrap();
            assert!(
                text.contains(REDACTED),
                "{e} (stream {stream}): the upstream's error is passed on, redacted: {text}"
            );
            assert_clean(&format!("serve's answer ({e}, stream {stream})"), &text);
        }
    }

    let health = get(&server, "/health?ping=true&timeout=5", Some(MASTER_KEY)).await;
    assert_eq!(health.status(), 200);
    let text = health.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    // The in-band deployment answers its ping (the error comes after the first token).
    let unhealthy = v["unhealthy_endpoints"].as_array().unwrap();
    for e in ENCODINGS.iter().filter(|e| **e != "in-band") {
        let endpoint = unhealthy
            .iter()
            .find(|u| u["id"] == format!("d-{e}"))
            .unwrap_or_else(|| panic!("{e} is unhealthy: {text}"));
        assert!(
            endpoint["error"].as_str().unwrap().contains(REDACTED),
            "{e}: {endpoint}"
        );
    }
    assert_clean("/health?ping", &text);

    router.sync_request_log();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains(REDACTED), "{log}");
    assert_clean("serve's request log", &log);
    server.shutdown().await.unwrap();
}
