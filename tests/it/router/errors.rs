//! A router that cannot be built says which part failed (a typed [`RouterError`]) and where
//! the setting at fault is written; a request log that cannot be opened names its file.

use llmux::config::load_str;
use llmux::router::{Router, RouterError, RouterOptions};
use llmux::store::{RequestLog, RequestLogError};

const MOCK: &str = "model_list:\n  - model_name: m\n    litellm_params: { model: mock/m }\n";

fn build(yaml: &str, dir: &std::path::Path) -> Result<Router, RouterError> {
    let config = load_str(yaml, Some(&dir.join("config.yaml"))).unwrap();
    Router::new(config, RouterOptions::default())
}

#[test]
fn a_pricing_file_that_is_not_there_is_named_with_its_setting() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("{MOCK}llmux:\n  pricing_file: missing-prices.json\n");
    let err = build(&yaml, dir.path()).unwrap_err();
    assert!(matches!(err, RouterError::PricingFile(_)), "{err:?}");
    let path = dir.path().join("missing-prices.json");
    let expected = format!(
        "llmux.pricing_file: {}: cannot read price file: ",
        path.display()
    );
    assert!(err.to_string().starts_with(&expected), "{err}");
}

#[tokio::test]
async fn shared_state_redis_that_can_never_connect_names_router_settings() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("{MOCK}router_settings:\n  redis_url: 'not a url with s3cret-pass'\n");
    let err = build(&yaml, dir.path()).unwrap_err();
    assert!(matches!(err, RouterError::SharedState(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("router_settings.redis_url: "),
        "{message}"
    );
    assert!(
        message.ends_with(" (expected redis://[:password@]host[:port][/db])"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn a_cache_redis_that_can_never_connect_names_cache_params() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{MOCK}litellm_settings:\n  cache: true\n  cache_params: {{ type: redis, url: 'not a url with s3cret-pass' }}\n"
    );
    let err = build(&yaml, dir.path()).unwrap_err();
    assert!(matches!(err, RouterError::Cache(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("litellm_settings.cache_params: the Redis URL is not usable: "),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

#[test]
fn a_request_log_under_a_file_names_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("data");
    std::fs::write(&not_a_dir, "a file where the data dir should be").unwrap();
    let path = not_a_dir.join("requests.jsonl");
    let err: RequestLogError = RequestLog::open(&path).unwrap_err();
    assert_eq!(err.path, path);
    assert!(
        err.to_string()
            .starts_with(&format!("cannot open the request log {}: ", path.display())),
        "{err}"
    );
}
