//! Keys LiteLLM users write in the wrong section get a warning that says where they belong.

use llmux::config::*;

use super::{env_without, warnings};

#[test]
fn misplaced_keys_say_where_they_belong() {
    let yaml = "\
model_list:
  - model_name: a
    api_key: os.environ/OPENAI_API_KEY
    litellm_params: {model: openai/gpt-4o}
litellm_settings:
  master_key: sk-1234
  routing_strategy: least-busy
  success_callback: [langfuse]
router_settings:
  request_timeout: 30
general_settings:
  max_parallel_requests: 100
  master_key: sk-1234
";
    let cfg = load_str_with_env(yaml, None, &env_without(&[])).unwrap();
    assert_eq!(
        warnings(&cfg),
        [
            "3:5: model_list[0].api_key is ignored: did you mean litellm_params.api_key?",
            "6:3: litellm_settings.master_key is ignored: did you mean general_settings.master_key?",
            "7:3: litellm_settings.routing_strategy is ignored: did you mean \
             router_settings.routing_strategy?",
            "10:3: router_settings.request_timeout is ignored: did you mean router_settings.timeout?",
            "12:3: general_settings.max_parallel_requests is ignored: llmux serve limits requests \
             in flight with --max-in-flight N",
        ]
    );
    // The misplaced key is not read: the one in its right place is.
    assert!(cfg.master_key.is_some());
}
