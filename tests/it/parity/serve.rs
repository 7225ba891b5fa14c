//! The parity table's rows that a LiteLLM proxy user meets through `llmux serve`, over real
//! HTTP: what a client sees, not only what the router decides.

use std::time::Duration;

use crate::serve::{chat, post, start};
use crate::upstream::{FakeUpstream, Reply};

/// The row "unset key + good x10, 3 s apart, cooldown_time 2" through serve: llmux used to
/// pick the deployment without its key, answer 502, cool it, and pick it again (another 502)
/// each time the cooldown ended. Now it is never picked while its sibling can answer.
#[tokio::test(start_paused = true)]
async fn serve_never_fails_a_request_on_a_deployment_without_its_key() {
    let up = FakeUpstream::start(vec![Reply::openai_json("from good", None)]).await;
    // Where the deployment without its key points: a call to it would show here.
    let refusing = FakeUpstream::start(vec![Reply::status(401)]).await;
    let deployment = |id: &str, url: &str, key: &str| {
        format!(
            "  - model_name: g\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {url}\n      api_key: {key}\n    model_info: {{ id: {id} }}\n"
        )
    };
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 2\n  cooldown_time: 2\n",
        deployment(
            "nokey",
            &refusing.url,
            "os.environ/LLMUX_PARITY_SURELY_UNSET"
        ),
        deployment("good", &up.url, "sk-parity-0123456789"),
    );
    let server = start(&yaml).await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        if i > 0 {
            // Past any cooldown a failure could have started.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let r = post(&server, "/v1/chat/completions", &chat("g", "hi"), None).await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200; 10]);
    assert_eq!(
        up.calls(),
        10,
        "every request answered by the deployment with its key"
    );
    assert_eq!(
        refusing.calls(),
        0,
        "the deployment without its key is never called"
    );
    server.shutdown().await.unwrap();
}
