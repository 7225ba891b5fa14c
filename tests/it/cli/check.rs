//! `check` and `models` on configs with deployments that cannot be called: a missing key
//! variable or a provider llmux does not speak is a warning while the group has another
//! deployment, exit 2 when it has none; `llmux.keys` and `llmux.theme` are judged as the TUI
//! judges them.

use super::{llmux, output, text};

/// Two groups that can be called (each with one deployment that cannot), two keys in the
/// section LiteLLM users misplace them in, and the TUI settings with a misspelt action, a bad
/// key and a misspelt theme.
const MIXED: &str = "\
model_list:
  - model_name: fast
    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/LLMUX_TEST_UNSET_KEY}
  - model_name: fast
    litellm_params: {model: mock/fast}
  - model_name: claude
    litellm_params: {model: bedrock/anthropic.claude-v2}
  - model_name: claude
    litellm_params: {model: mock/claude}
litellm_settings:
  master_key: sk-1234
general_settings:
  max_parallel_requests: 10
llmux:
  theme: nrod
  keys:
    nextmodel: ctrl+j
    help: hyper+h
    quit: ctrl+x
";

#[tokio::test]
async fn deployments_that_cannot_be_called_beside_others_are_warnings() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("config.yaml");
    std::fs::write(&path, MIXED).unwrap();
    let mut cmd = llmux(home.path());
    cmd.env_remove("LLMUX_TEST_UNSET_KEY")
        .args(["check", "--config", path.to_str().unwrap()]);
    let out = output(cmd).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let p = path.display();
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(": warning: "))
        .collect();
    assert_eq!(
        warnings,
        [
            format!(
                "{p}:3:58: warning: environment variable LLMUX_TEST_UNSET_KEY is not set \
                 (model_list[0] 'fast', openai/gpt-4o-mini); the deployment is unavailable"
            ),
            format!(
                "{p}:7:29: warning: llmux does not speak LiteLLM's bedrock provider \
                 (model_list[2] 'claude', bedrock/anthropic.claude-v2); the deployment is \
                 unavailable, the rest of the config works (call it through a LiteLLM proxy \
                 with litellm_proxy/, or an OpenAI-compatible endpoint with openai/ and api_base)"
            ),
            format!(
                "{p}:11:3: warning: litellm_settings.master_key is ignored: did you mean \
                 general_settings.master_key?"
            ),
            format!(
                "{p}:13:3: warning: general_settings.max_parallel_requests is ignored: llmux \
                 serve limits requests in flight with --max-in-flight N"
            ),
            format!(
                "{p}:15:10: warning: llmux.theme: unknown theme \"nrod\"; using default (did \
                 you mean nord? themes: default, high-contrast, light, nord)"
            ),
            format!(
                "{p}:17:5: warning: llmux.keys: unknown action \"nextmodel\" (did you mean \
                 next_model?)"
            ),
            format!("{p}:18:11: warning: llmux.keys.help: \"hyper+h\": unknown modifier \"hyper\""),
        ]
    );
    assert!(
        stdout.contains("    ✗ llmux does not speak LiteLLM's bedrock provider"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("ok: 2 groups, 4 deployments (2 unavailable)\n"),
        "{stdout}"
    );

    let mut models = llmux(home.path());
    models
        .env_remove("LLMUX_TEST_UNSET_KEY")
        .args(["models", "--config", path.to_str().unwrap()]);
    let out = output(models).await;
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no row for {id}: {table}"))
            .to_string()
    };
    assert!(table.lines().next().unwrap().ends_with("STATUS"), "{table}");
    assert!(
        row("bedrock/anthropic.claude-v2")
            .ends_with("unavailable: llmux does not speak LiteLLM's bedrock provider (model_list[2] 'claude', bedrock/anthropic.claude-v2)"),
        "{table}"
    );
    assert!(
        row("openai/gpt-4o-mini")
            .contains("unavailable: environment variable LLMUX_TEST_UNSET_KEY is not set"),
        "{table}"
    );
    assert!(!row("mock/fast").contains("unavailable"), "{table}");
}

#[tokio::test]
async fn a_group_with_no_deployment_to_call_fails_the_check() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("config.yaml");
    std::fs::write(
        &path,
        "\
model_list:
  - model_name: fast
    litellm_params: {model: mock/fast}
  - model_name: claude
    litellm_params: {model: vertex_ai/claude-sonnet-4-5, vertex_project: p}
  - model_name: gpt
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/LLMUX_TEST_UNSET_KEY}
",
    )
    .unwrap();
    let mut cmd = llmux(home.path());
    cmd.env_remove("LLMUX_TEST_UNSET_KEY")
        .args(["check", "--config", path.to_str().unwrap()]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: group claude has no deployment llmux can call: vertex_ai/claude-sonnet-4-5 \
         (llmux does not speak LiteLLM's vertex_ai provider (model_list[1] 'claude', \
         vertex_ai/claude-sonnet-4-5))\n\
         error: group gpt has no deployment llmux can call: openai/gpt-4o (environment \
         variable LLMUX_TEST_UNSET_KEY is not set (model_list[2] 'gpt', openai/gpt-4o))\n"
    );
    assert!(!text(&out.stdout).contains("\nok:"));
}
