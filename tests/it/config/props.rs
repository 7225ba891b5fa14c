//! No input panics the loader, and whatever loads keeps the `Config` invariants.

use std::collections::HashSet;
use std::path::Path;

use llmux::config::{DEMO_CONFIG, Wire, load_str_with_env};
use proptest::prelude::*;

use super::{FIXTURES, env_without};

/// Text that looks like YAML: keys, lists, flow collections, anchors, odd indentation.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("model_list:".to_string()),
        Just("model_name:".to_string()),
        Just("litellm_params:".to_string()),
        Just("model: mock/x".to_string()),
        Just("router_settings:".to_string()),
        Just("fallbacks:".to_string()),
        Just("os.environ/X".to_string()),
        Just("- ".to_string()),
        Just("\n".to_string()),
        Just("\n  ".to_string()),
        Just("\n    ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(", ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: ".to_string()),
        Just("? ".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\t".to_string()),
        Just("---\n".to_string()),
        Just("!tag ".to_string()),
        "[a-z0-9_.:#|>-]{1,8}",
        "\\PC{0,3}",
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

fn check_invariants(text: &str) {
    if let Ok(cfg) = load_str_with_env(text, None, &env_without(&["X"])) {
        assert!(!cfg.deployments.is_empty());
        let ids: HashSet<&str> = cfg.deployments.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids.len(), cfg.deployments.len());
        for d in &cfg.deployments {
            assert!(cfg.groups.contains(&d.group));
            assert_eq!(d.mock.is_some(), d.wire == Wire::Mock);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::faults::fuzz::cases(300), ..ProptestConfig::default() })]

    #[test]
    fn yamlish_text_never_panics(text in yamlish()) {
        check_invariants(&text);
    }

    #[test]
    fn mangled_real_configs_never_panic(
        which in 0usize..4,
        at in any::<prop::sample::Index>(),
        len in 0usize..40,
        insert in "\\PC{0,6}",
    ) {
        let name = ["proxy_docs.yaml", "plain_fallbacks.yaml", "multi_provider.yaml", ""][which];
        let text = if name.is_empty() {
            DEMO_CONFIG.to_string()
        } else {
            std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap()
        };
        let chars: Vec<char> = text.chars().collect();
        let start = at.index(chars.len());
        let end = (start + len).min(chars.len());
        let mangled: String = chars[..start]
            .iter()
            .chain(insert.chars().collect::<Vec<_>>().iter())
            .chain(chars[end..].iter())
            .collect();
        check_invariants(&mangled);
    }
}
