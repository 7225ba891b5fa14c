//! The official OpenAI and Anthropic Python SDKs, unchanged, against a server in front of a
//! fake upstream (`tests/sdk/official_clients.py`): plain and streamed answers with usage,
//! the model list, and the errors (404 unknown group, 401 wrong key) each SDK turns into its
//! own exception; and the rows of issue 15 (`tests/sdk/parity_rows.py`): every choice of `n`,
//! `logprobs`, embeddings, `models.retrieve`, legacy completions, token counting.
//! `scripts/test.sh` installs the two packages from PyPI when they are missing.

use serde_json::{Value, json};

use super::passthrough::{two_choice_answer, two_choice_stream};
use super::{KEY, deployment, keyed, start};
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
    let yaml = keyed(&[deployment("fast", "dep-a", &up.url, "")], "");
    let server = start(&yaml).await;
    run_script("official_clients.py", &server.url()).await;
    server.shutdown().await.unwrap();
}

/// Runs `tests/sdk/{script}` against `url`; it must print "all ok".
async fn run_script(script: &str, url: &str) {
    let path = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new("python3")
        .arg(path)
        .arg(url)
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
        "{script}:\n{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdks_get_every_choice_logprobs_embeddings_and_one_model() {
    let up = FakeUpstream::start_by_body(|body: &Value| {
        if let Some(input) = body["input"].as_array() {
            let data: Vec<Value> = (0..input.len())
                .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.5, -0.5]}))
                .collect();
            Reply::json(json!({"object": "list", "data": data, "model": "e",
                "usage": {"prompt_tokens": 3, "total_tokens": 3}}))
        } else if body["stream"] == true {
            two_choice_stream()
        } else {
            Reply::json(two_choice_answer("stop"))
        }
    })
    .await;
    let yaml = format!(
        "model_list:\n{}{}  - model_name: emb-mock\n    litellm_params: {{ model: mock/embed, mock_ttft_ms: 0 }}\n    model_info: {{ mode: embedding }}\ngeneral_settings:\n  master_key: {KEY}\n",
        deployment("fast", "dep-a", &up.url, ""),
        deployment("emb", "emb-a", &up.url, "")
    );
    let server = start(&yaml).await;
    run_script("parity_rows.py", &server.url()).await;
    server.shutdown().await.unwrap();
}
