//! The official OpenAI and Anthropic Python SDKs, unchanged, against a server in front of a
//! fake upstream (`tests/sdk/official_clients.py`): plain and streamed answers with usage,
//! the model list, and the errors (404 unknown group, 401 wrong key) each SDK turns into its
//! own exception. `scripts/test.sh` installs the two packages from PyPI when they are missing.

use serde_json::Value;

use super::{KEY, deployment, start};
use crate::upstream::{FakeUpstream, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_and_anthropic_sdks_work_unchanged() {
    let up = FakeUpstream::start_by_body(|body: &Value| {
        if body["stream"] == true {
            Reply::openai_stream(&["Hello", " world"], Some((12, 2)))
        } else {
            Reply::openai_json("Hello world", Some((12, 2)))
        }
    })
    .await;
    let yaml = format!(
        "model_list:\n{}general_settings:\n  master_key: {KEY}\n",
        deployment("fast", "dep-a", &up.url, "")
    );
    let server = start(&yaml).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/official_clients.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(server.url())
        .arg(KEY)
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the SDKs are not installed: python3 -m pip install openai anthropic (scripts/test.sh does)\n{stderr}"
    );
    assert!(
        out.status.success() && stdout.contains("all ok"),
        "{stdout}\n{stderr}"
    );
    server.shutdown().await.unwrap();
}
