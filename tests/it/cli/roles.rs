//! `llmux ask --role NAME`: the role file under the config dir gives the system prompt, the
//! model and the parameters that go over the wire; flags win over it; a missing role is a
//! usage error that says where roles live.

use crate::upstream::{FakeUpstream, Reply};

use super::{llmux, output, text};

#[tokio::test]
async fn ask_role_sends_the_roles_prompt_model_and_parameters() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["ok"], Some((3, 1)))]).await;
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "model_list:\n  - model_name: other\n    litellm_params: {{ model: mock/x, mock_response: no }}\n  - model_name: g\n    litellm_params: {{ model: openai/gpt-4o-mini, api_base: '{}', api_key: sk-test }}\n",
            up.url
        ),
    )
    .unwrap();
    let roles = home.path().join("config/llmux/roles");
    std::fs::create_dir_all(&roles).unwrap();
    std::fs::write(
        roles.join("terse.md"),
        "---\nmodel: g\ntemperature: 0.3\ntop_p: 0.5\n---\nOne word answers.\n",
    )
    .unwrap();
    let mut cmd = llmux(home.path());
    cmd.arg("--config")
        .arg(&cfg)
        .args(["ask", "--role", "terse", "hi"]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ok");
    let body = &up.bodies()[0];
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], "One word answers.");
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["top_p"], 0.5);

    let mut cmd = llmux(home.path());
    cmd.arg("--config")
        .arg(&cfg)
        .args(["ask", "--role", "poet", "hi"]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no role \"poet\"") && err.contains("terse") && err.contains("llmux/roles"),
        "{err}"
    );
}
