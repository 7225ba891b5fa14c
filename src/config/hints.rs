//! Hints for keys and names written in the wrong place or spelt wrong: what a warning or
//! error adds after "did you mean".
//!
//! [`misplaced`] answers for a config path (`litellm_settings.master_key`) that llmux reads
//! past, from a table of the places LiteLLM users most often confuse (LiteLLM's proxy reads
//! each key from one section only, and silently ignores it elsewhere). [`closest`] finds the
//! known word nearest to a misspelt one.

/// Keys that belong in another section (or are another thing in llmux), by where they were
/// written, and what to write instead. `*` stands for any one path segment.
const MISPLACED: &[(&str, &str)] = &[
    // The proxy's key is read from general_settings only.
    (
        "litellm_settings.master_key",
        "did you mean general_settings.master_key?",
    ),
    (
        "router_settings.master_key",
        "did you mean general_settings.master_key?",
    ),
    ("master_key", "did you mean general_settings.master_key?"),
    // The proxy's global limit on requests in flight.
    (
        "general_settings.max_parallel_requests",
        "llmux serve limits requests in flight with --max-in-flight N",
    ),
    (
        "general_settings.global_max_parallel_requests",
        "llmux serve limits requests in flight with --max-in-flight N",
    ),
    (
        "litellm_settings.max_parallel_requests",
        "llmux serve limits requests in flight with --max-in-flight N; per deployment, \
         use litellm_params.rpm",
    ),
    (
        "router_settings.max_parallel_requests",
        "llmux serve limits requests in flight with --max-in-flight N; per deployment, \
         use litellm_params.rpm",
    ),
    // Router arguments read from router_settings only.
    (
        "litellm_settings.routing_strategy",
        "did you mean router_settings.routing_strategy?",
    ),
    (
        "litellm_settings.model_group_alias",
        "did you mean router_settings.model_group_alias?",
    ),
    (
        "litellm_settings.retry_policy",
        "did you mean router_settings.retry_policy?",
    ),
    (
        "litellm_settings.redis_host",
        "did you mean router_settings.redis_host?",
    ),
    (
        "litellm_settings.redis_port",
        "did you mean router_settings.redis_port?",
    ),
    (
        "litellm_settings.redis_password",
        "did you mean router_settings.redis_password?",
    ),
    (
        "litellm_settings.redis_url",
        "did you mean router_settings.redis_url?",
    ),
    (
        "litellm_settings.stream_timeout",
        "did you mean router_settings.stream_timeout?",
    ),
    (
        "litellm_settings.max_fallbacks",
        "did you mean router_settings.max_fallbacks?",
    ),
    (
        "litellm_settings.enable_pre_call_checks",
        "did you mean router_settings.enable_pre_call_checks?",
    ),
    (
        "litellm_settings.provider_budget_config",
        "did you mean router_settings.provider_budget_config?",
    ),
    // The two sections name the whole-request deadline differently.
    (
        "litellm_settings.timeout",
        "did you mean litellm_settings.request_timeout?",
    ),
    (
        "router_settings.request_timeout",
        "did you mean router_settings.timeout?",
    ),
    // litellm_settings only.
    (
        "router_settings.drop_params",
        "did you mean litellm_settings.drop_params?",
    ),
    (
        "router_settings.cache",
        "did you mean litellm_settings.cache (or router_settings.cache_responses)?",
    ),
    (
        "router_settings.cache_params",
        "did you mean litellm_settings.cache_params?",
    ),
    (
        "general_settings.drop_params",
        "did you mean litellm_settings.drop_params?",
    ),
    (
        "general_settings.cache",
        "did you mean litellm_settings.cache?",
    ),
    // Routing settings written in general_settings.
    (
        "general_settings.num_retries",
        "did you mean router_settings.num_retries?",
    ),
    (
        "general_settings.fallbacks",
        "did you mean router_settings.fallbacks?",
    ),
    (
        "general_settings.routing_strategy",
        "did you mean router_settings.routing_strategy?",
    ),
    (
        "general_settings.allowed_fails",
        "did you mean router_settings.allowed_fails?",
    ),
    (
        "general_settings.cooldown_time",
        "did you mean router_settings.cooldown_time?",
    ),
    (
        "general_settings.timeout",
        "did you mean router_settings.timeout?",
    ),
    (
        "general_settings.request_timeout",
        "did you mean litellm_settings.request_timeout?",
    ),
    // Top-level keys that belong in a section.
    ("num_retries", "did you mean router_settings.num_retries?"),
    ("fallbacks", "did you mean router_settings.fallbacks?"),
    (
        "routing_strategy",
        "did you mean router_settings.routing_strategy?",
    ),
    ("drop_params", "did you mean litellm_settings.drop_params?"),
    ("models", "did you mean model_list?"),
    ("model_info", "model_info belongs inside a model_list entry"),
    (
        "litellm_params",
        "litellm_params belongs inside a model_list entry",
    ),
    // A deployment's own settings written beside litellm_params instead of inside it.
    ("model_list[*].model", "did you mean litellm_params.model?"),
    (
        "model_list[*].api_key",
        "did you mean litellm_params.api_key?",
    ),
    (
        "model_list[*].api_base",
        "did you mean litellm_params.api_base?",
    ),
    (
        "model_list[*].api_version",
        "did you mean litellm_params.api_version?",
    ),
    ("model_list[*].rpm", "did you mean litellm_params.rpm?"),
    ("model_list[*].tpm", "did you mean litellm_params.tpm?"),
    (
        "model_list[*].timeout",
        "did you mean litellm_params.timeout?",
    ),
    ("model_list[*].order", "did you mean litellm_params.order?"),
    (
        "model_list[*].weight",
        "did you mean litellm_params.weight?",
    ),
    ("model_list[*].tags", "did you mean litellm_params.tags?"),
    ("model_list[*].id", "did you mean model_info.id?"),
    (
        "model_list[*].max_input_tokens",
        "did you mean model_info.max_input_tokens?",
    ),
    (
        "model_list[*].base_model",
        "did you mean model_info.base_model?",
    ),
];

/// What to write instead of the key at `path`, when it is a known misplacement.
pub fn misplaced(path: &str) -> Option<&'static str> {
    let general = general_form(path);
    MISPLACED
        .iter()
        .find(|(p, _)| *p == path || *p == general)
        .map(|(_, hint)| *hint)
}

/// `path` with its list indexes written as `[*]` (`model_list[3].rpm` → `model_list[*].rpm`).
fn general_form(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[*]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// The most edits a misspelling is taken to have: one for short words, two for longer.
fn max_edits(word: &str) -> usize {
    if word.chars().count() <= 4 { 1 } else { 2 }
}

/// The candidate nearest to `word` in edits (insert, delete, substitute, swap two letters
/// side by side), when it is close enough to be a misspelling of it; the first of equals.
/// `word` itself is never suggested.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = max_edits(word);
    candidates
        .filter(|c| *c != word)
        .map(|c| (edits(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The optimal-string-alignment distance between `a` and `b` (by characters).
fn edits(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the table: two back (for swaps), one back, this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            row[j] = best;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_count_inserts_deletes_substitutions_and_swaps() {
        assert_eq!(edits("openai", "openai"), 0);
        assert_eq!(edits("opnai", "openai"), 1);
        assert_eq!(edits("opeani", "openai"), 1);
        assert_eq!(edits("gorq", "groq"), 1);
        assert_eq!(edits("", "abc"), 3);
        assert_eq!(edits("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_suggests_near_words_only() {
        let known = ["openai", "anthropic", "groq", "gemini"];
        assert_eq!(closest("opnai", known.into_iter()), Some("openai"));
        assert_eq!(closest("anthropc", known.into_iter()), Some("anthropic"));
        assert_eq!(closest("gorq", known.into_iter()), Some("groq"));
        assert_eq!(closest("bedrock", known.into_iter()), None);
        assert_eq!(closest("openai", known.into_iter()), None);
    }

    #[test]
    fn misplaced_keys_match_with_any_list_index() {
        assert_eq!(
            misplaced("litellm_settings.master_key"),
            Some("did you mean general_settings.master_key?")
        );
        assert_eq!(
            misplaced("model_list[12].api_key"),
            Some("did you mean litellm_params.api_key?")
        );
        assert!(
            misplaced("general_settings.max_parallel_requests")
                .is_some_and(|h| h.contains("--max-in-flight"))
        );
        assert_eq!(misplaced("general_settings.database_url"), None);
        assert_eq!(general_form("a[1].b[23].c"), "a[*].b[*].c");
    }
}
