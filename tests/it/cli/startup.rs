//! What a command says when a part of the router cannot be set up at start: a request log
//! that cannot be opened is a warning that names it and what to do (the command still
//! answers); a setting the router cannot work with is an error naming it, exit 2.

use super::{llmux, output, text};

#[tokio::test]
async fn a_request_log_that_cannot_be_opened_is_a_warning_and_the_answer_still_comes() {
    let home = tempfile::tempdir().unwrap();
    // The data dir is a file: nothing can be created under it (even as root).
    std::fs::write(home.path().join("data"), "not a directory").unwrap();
    let mut cmd = llmux(home.path());
    cmd.args(["ask", "-m", "local", "hello"]);
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(!out.stdout.is_empty(), "the answer is printed");
    let log = home.path().join("data").join("requests.jsonl");
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("llmux: warning: cannot open the request log "))
        .unwrap_or_else(|| panic!("no warning in {stderr}"));
    assert!(warning.contains(&log.display().to_string()), "{warning}");
    assert!(
        warning.ends_with(
            "; this run's requests are not logged (make that directory writable, or point \
             LLMUX_DATA_DIR at one that is)"
        ),
        "{warning}"
    );
}

#[tokio::test]
async fn a_pricing_file_that_is_not_there_is_a_usage_error_naming_it() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.yaml");
    std::fs::write(
        &config,
        "model_list:\n  - model_name: m\n    litellm_params: { model: mock/m }\nllmux:\n  pricing_file: gone.json\n",
    )
    .unwrap();
    let mut cmd = llmux(home.path());
    cmd.args(["ask", "--config", config.to_str().unwrap(), "-m", "m", "hi"]);
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let prices = home.path().join("gone.json");
    assert!(
        stderr.starts_with(&format!(
            "llmux: llmux.pricing_file: {}: cannot read price file: ",
            prices.display()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
