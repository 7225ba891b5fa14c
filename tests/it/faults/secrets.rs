//! API keys and the master key never show: not in `Debug` output, not in error messages
//! (upstreams that echo the key, in a 401 body or in-band after a 200, on every wire), not in
//! route events, the request log, session records, the TUI's screen, `ask --json`, `check`
//! or `models`. And a config file that holds literal keys and is readable by others gets a
//! warning from the loader.

use std::os::unix::fs::PermissionsExt;

use llmux::config::{load_file, load_str_with_env};
use llmux::router::{ChatEvent, RouteEvent, RouterOptions};
use llmux::store::RequestLog;
use llmux::tui::action::Effect;
use serde_json::json;

use crate::hostile::Screen;
use crate::support;
use crate::upstream::{FakeUpstream, Reply};

const OPENAI_KEY: &str = "sk-proj-SECRET-openai-0123456789abcdef";
const ANTHROPIC_KEY: &str = "sk-ant-SECRET-anthropic-0123456789abcdef";
const GEMINI_KEY: &str = "AIzaSECRET-gemini-0123456789abcdef";
const OLLAMA_KEY: &str = "ollama-SECRET-0123456789abcdef";
const MASTER_KEY: &str = "sk-master-SECRET-0123456789abcdef";
const REDIS_PASSWORD: &str = "redis-SECRET-0123456789abcdef";
const ENV_KEY: &str = "sk-from-env-SECRET-0123456789abcdef";
const KEYS: [&str; 7] = [
    OPENAI_KEY,
    ANTHROPIC_KEY,
    GEMINI_KEY,
    OLLAMA_KEY,
    MASTER_KEY,
    REDIS_PASSWORD,
    ENV_KEY,
];

/// Fails naming the first key found in `text`.
fn assert_no_key(what: &str, text: &str) {
    for key in KEYS {
        assert!(!text.contains(key), "{what} shows a key:\n{text}");
        // Half a key is still a leak worth knowing about.
        assert!(
            !text.contains(&key[..key.len() / 2 + 4]),
            "{what} shows part of a key:\n{text}"
        );
    }
}

/// A 401 whose body quotes the key, in each provider's error shape.
fn echo_401(wire: &str, key: &str) -> Reply {
    let body = match wire {
        "anthropic" => json!({"type": "error", "error": {"type": "authentication_error",
            "message": format!("invalid x-api-key: {key}")}}),
        "gemini" => json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
            "message": format!("API key not valid: {key}")}}),
        "ollama" => json!({"error": format!("unauthorized: {key}")}),
        _ => json!({"error": {"message": format!("Incorrect API key provided: {key}"),
            "type": "invalid_request_error", "code": "invalid_api_key"}}),
    };
    Reply::raw(401, "application/json", vec![body.to_string()])
}

/// A 200 whose stream carries an in-band error quoting the key.
fn echo_inband(wire: &str, key: &str) -> Reply {
    match wire {
        "anthropic" => Reply::sse(vec![format!(
            "event: error\ndata: {}\n\n",
            json!({"type": "error", "error": {"type": "authentication_error",
                "message": format!("key {key} revoked")}})
        )]),
        "gemini" => Reply::sse(vec![format!(
            "data: {}\n\n",
            json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
                "message": format!("key {key} revoked")}})
        )]),
        "ollama" => Reply::ndjson(vec![format!(
            "{}\n",
            json!({"error": format!("key {key} revoked")})
        )]),
        _ => Reply::sse(vec![format!(
            "data: {}\n\n",
            json!({"error": {"message": format!("key {key} revoked"), "code": 401}})
        )]),
    }
}

const WIRES: [(&str, &str, &str); 4] = [
    ("openai", "openai/gpt-4o-mini", OPENAI_KEY),
    (
        "anthropic",
        "anthropic/claude-3-5-haiku-latest",
        ANTHROPIC_KEY,
    ),
    ("gemini", "gemini/gemini-2.0-flash", GEMINI_KEY),
    ("ollama", "ollama_chat/llama3.2", OLLAMA_KEY),
];

/// A config with a literal key per wire (each at its own echoing upstream), a literal master
/// key and Redis password. Deployments are never cooled, so every request gets a call.
fn leaky_yaml(urls: &[String]) -> String {
    leaky_yaml_with(urls, "")
}

/// [`leaky_yaml`] with more `model_list` entries.
fn leaky_yaml_with(urls: &[String], more: &str) -> String {
    let mut yaml = String::from("model_list:\n");
    for ((wire, model, key), url) in WIRES.iter().zip(urls) {
        yaml.push_str(&format!(
            "  - model_name: {wire}\n    litellm_params: {{ model: {model}, api_base: '{url}', api_key: {key}, cooldown_time: 0 }}\n"
        ));
    }
    yaml.push_str(more);
    yaml.push_str(&format!(
        "router_settings:\n  num_retries: 0\n  redis_host: localhost\n  redis_password: {REDIS_PASSWORD}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"
    ));
    yaml
}

async fn echoing_upstreams() -> (Vec<FakeUpstream>, Vec<String>) {
    let mut ups = Vec::new();
    for (wire, _, key) in WIRES {
        ups.push(FakeUpstream::start(vec![echo_401(wire, key), echo_inband(wire, key)]).await);
    }
    let urls = ups.iter().map(|u| u.url.clone()).collect();
    (ups, urls)
}

#[tokio::test]
async fn debug_output_of_config_deployments_and_router_holds_no_key() {
    let yaml = leaky_yaml_with(
        &vec!["http://127.0.0.1:9".to_string(); WIRES.len()],
        "  - model_name: env\n    litellm_params: { model: openai/x, api_base: 'http://127.0.0.1:9', api_key: os.environ/LEAK_TEST_KEY }\n",
    );
    let cfg = load_str_with_env(&yaml, None, &|v| {
        (v == "LEAK_TEST_KEY").then(|| ENV_KEY.to_string())
    })
    .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(cfg.deployments.len(), WIRES.len() + 1);
    assert!(cfg.master_key.is_some());
    assert_no_key("Config", &format!("{cfg:?}"));
    assert_no_key("Config (pretty)", &format!("{cfg:#?}"));
    for d in &cfg.deployments {
        assert_no_key("Deployment", &format!("{d:?}"));
        assert!(d.api_key.is_some(), "{} has its key", d.id);
    }
    let router = support::router_from(cfg, RouterOptions::default());
    assert_no_key("Router", &format!("{router:?}"));
    assert_no_key("DeploymentStatus", &format!("{:?}", router.deployments()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_keys_never_reach_errors_events_the_request_log_or_the_screen() {
    let (_ups, urls) = echoing_upstreams().await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("requests.jsonl");
    let log = RequestLog::open(&log_path).unwrap();
    let router = support::router_with(
        &leaky_yaml(&urls),
        RouterOptions {
            request_log: Some(std::sync::Arc::new(log.clone())),
            ..RouterOptions::default()
        },
    );
    let mut seen = String::new();
    for (wire, _, _) in WIRES {
        // First the 401, then the in-band error after a 200.
        for _ in 0..2 {
            // Every event, not only the route events and the outcome, is looked at for a key.
            let mut stream = router.chat(wire, support::ask("hi"));
            let mut events: Vec<RouteEvent> = Vec::new();
            while let Some(ev) = stream.next_event().await {
                match ev {
                    ChatEvent::Route(e) => events.push(RouteEvent::clone(&e)),
                    ChatEvent::Finished(r) => {
                        let err = r.expect_err("every call fails");
                        assert!(
                            err.message.contains("SECRET") || err.message.contains("[redacted]"),
                            "{wire}: the error still says what happened: {}",
                            err.message
                        );
                        seen.push_str(&format!("{err}\n{err:?}\n"));
                        seen.push_str(&serde_json::to_string(&err.attempts).unwrap());
                    }
                    other => seen.push_str(&format!("{other:?}\n")),
                }
            }
            for e in &events {
                seen.push_str(&format!(
                    "{e:?}\n{}\n{}\n",
                    e.describe(),
                    serde_json::to_string(e).unwrap()
                ));
            }
        }
    }
    assert!(
        seen.contains("[redacted]"),
        "the echoed keys were replaced:\n{seen}"
    );
    assert_no_key("errors and route events", &seen);
    log.sync();
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(logged.lines().count() >= WIRES.len() * 2 * 3, "{logged}");
    assert_no_key("the request log", &logged);

    // The TUI: the same failures on screen (every pane at 160x48), in the session records.
    let mut screen = Screen::new(router.config(), 160, 48);
    let mut records = String::new();
    for (wire, _, _) in WIRES {
        for effect in screen.ask(&router, wire, "hello").await {
            if let Effect::Persist(r) = effect {
                records.push_str(&serde_json::to_string(&r).unwrap());
                records.push('\n');
            }
        }
    }
    assert!(records.contains("redacted"), "{records}");
    assert_no_key("session records", &records);
    let text = screen.text();
    assert_no_key("the TUI", &text);
    assert!(text.contains("[redacted]"), "{text}");
}

/// Runs the binary with `args`; returns stdout and stderr.
async fn llmux(args: Vec<String>, data: String) -> (String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_llmux"))
            .args(&args)
            .env("LLMUX_DATA_DIR", &data)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_json_check_and_models_never_print_a_key() {
    let (_ups, urls) = echoing_upstreams().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, leaky_yaml(&urls)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = config.to_str().unwrap().to_string();
    let data = dir.path().join("data").to_str().unwrap().to_string();
    let mut all = String::new();
    for (wire, _, _) in WIRES {
        for json in [true, false] {
            let mut args: Vec<String> =
                vec!["--config".into(), config.clone(), "ask".into(), "-v".into()];
            if json {
                args.push("--json".into());
            }
            args.extend(["-m".into(), wire.into(), "hi".into()]);
            let (out, err) = llmux(args, data.clone()).await;
            if json {
                let v: serde_json::Value = serde_json::from_str(out.trim())
                    .unwrap_or_else(|e| panic!("{wire}: --json is one object ({e}): {out}"));
                assert!(
                    v["error"]
                        .as_str()
                        .is_some_and(|m| m.contains("[redacted]")),
                    "{v}"
                );
            }
            all.push_str(&out);
            all.push_str(&err);
        }
    }
    for cmd in ["check", "models"] {
        let (out, err) = llmux(
            vec!["--config".into(), config.clone(), cmd.into()],
            data.clone(),
        )
        .await;
        all.push_str(&out);
        all.push_str(&err);
    }
    assert_no_key("ask --json, ask -v, check, models", &all);
    let logged = std::fs::read_to_string(dir.path().join("data").join("requests.jsonl")).unwrap();
    assert_no_key("the request log of ask", &logged);
}

// ---- a config file readable by others ----

fn config_file(dir: &std::path::Path, key: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join(format!("config-{mode:o}.yaml"));
    std::fs::write(
        &path,
        format!("model_list:\n  - model_name: a\n    litellm_params: {{ model: openai/x, api_key: {key} }}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn readable_warnings(path: &std::path::Path) -> Vec<String> {
    load_file(path)
        .unwrap()
        .warnings
        .into_iter()
        .map(|w| w.message)
        .filter(|m| m.contains("readable by other users"))
        .collect()
}

#[test]
fn a_config_with_literal_keys_readable_by_others_gets_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o644, 0o640, 0o604] {
        let path = config_file(dir.path(), OPENAI_KEY, mode);
        let w = readable_warnings(&path);
        assert_eq!(w.len(), 1, "mode {mode:o}: {w:?}");
        assert!(
            w[0].contains(&path.display().to_string()) && w[0].contains("chmod 600"),
            "{}",
            w[0]
        );
        assert_no_key("the warning", &w[0]);
    }
    // Private files, and keys that only name a variable, are fine.
    assert!(readable_warnings(&config_file(dir.path(), OPENAI_KEY, 0o600)).is_empty());
    assert!(readable_warnings(&config_file(dir.path(), OPENAI_KEY, 0o400)).is_empty());
    assert!(readable_warnings(&config_file(dir.path(), "os.environ/SOME_KEY", 0o644)).is_empty());
    // A master key counts too; a key in `environment_variables:` is a literal in the file.
    let path = dir.path().join("master.yaml");
    std::fs::write(
        &path,
        format!("model_list:\n  - model_name: a\n    litellm_params: {{ model: mock/x }}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(readable_warnings(&path).len(), 1);
    let path = dir.path().join("overlay.yaml");
    std::fs::write(
        &path,
        format!("environment_variables:\n  MY_KEY: {OPENAI_KEY}\nmodel_list:\n  - model_name: a\n    litellm_params: {{ model: openai/x, api_key: os.environ/MY_KEY }}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(readable_warnings(&path).len(), 1);
}
