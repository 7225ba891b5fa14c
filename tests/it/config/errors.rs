//! Bad input: every error names what is wrong and where, as `path:line:col: message`.

use std::path::Path;

use llmux::config::*;

use super::{FIXTURES, err};

#[test]
fn bad_input_is_an_error_at_path_line_col() {
    let e = |s: &str| err(s);
    let ml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: ";
    let cases: &[(String, &str)] = &[
        (
            "".into(),
            "bad.yaml:1:1: the config is empty; it needs at least a model_list",
        ),
        (
            "# only comments\n".into(),
            "bad.yaml:1:1: the config is empty; it needs at least a model_list",
        ),
        (
            "- a\n- b\n".into(),
            "bad.yaml:1:1: the config must be a mapping of sections",
        ),
        (
            "model_list:\n  - model_name: a\n   litellm_params: x\n".into(),
            "bad.yaml:3:4: invalid YAML: did not find expected '-' indicator",
        ),
        (
            "model_list: [\n".into(),
            "bad.yaml:2:1: invalid YAML: did not find expected node content",
        ),
        (
            "a: 1\nb: 2\na: 3\n".into(),
            "bad.yaml:3:1: invalid YAML: duplicate entry with key \"a\"",
        ),
        (
            "a: 1\n---\nb: 2\n".into(),
            "bad.yaml:2:1: invalid YAML: deserializing from YAML containing more than one document",
        ),
        (
            "router_settings: {num_retries: 2}\n".into(),
            "bad.yaml:1:1: the config has no model_list; it needs at least one model",
        ),
        (
            "model_list: []\n".into(),
            "bad.yaml:1:13: model_list is empty; it needs at least one model",
        ),
        (
            "model_list:\n".into(),
            "bad.yaml:1:11: model_list is empty; it needs at least one model",
        ),
        (
            "model_list: {a: 1}\n".into(),
            "bad.yaml:1:13: model_list must be a list of entries",
        ),
        (
            "model_list:\n  - just-a-name\n".into(),
            "bad.yaml:2:5: model_list[0] must be a mapping with model_name and litellm_params",
        ),
        (
            "model_list:\n  - litellm_params: {model: openai/x}\n".into(),
            "bad.yaml:2:5: model_list[0] has no model_name",
        ),
        (
            "model_list:\n  - model_name: a\n".into(),
            "bad.yaml:2:5: model_list[0] 'a' has no litellm_params.model",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params:\n      api_key: x\n".into(),
            "bad.yaml:4:7: model_list[0] 'a' has no litellm_params.model",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: openai/gpt-4o\n".into(),
            "bad.yaml:3:21: model_list[0].litellm_params must be a mapping of keys to values, not a string",
        ),
        (
            format!("{ml}vertexai/gemini-pro\n"),
            "bad.yaml:4:14: model_list[0].litellm_params.model: unknown provider prefix 'vertexai/' in 'vertexai/gemini-pro' (did you mean 'vertex_ai/'?); known prefixes: openai/, azure/",
        ),
        (
            "model_list:\n  - model_name: a\n    model: openai/gpt-4o\n".into(),
            "bad.yaml:2:5: model_list[0] 'a' has no litellm_params.model (its model: is written beside litellm_params; move it inside)",
        ),
        (
            format!("{ml}llama3\n"),
            "bad.yaml:4:14: model_list[0].litellm_params.model: 'llama3' has no provider prefix and is not a well-known model name; write it as <provider>/llama3 with one of: openai/,",
        ),
        (
            format!("{ml}azure/gpt-4o\n"),
            "bad.yaml:4:14: model_list[0] 'a' (azure/gpt-4o) needs litellm_params.api_base: azure has no default base URL",
        ),
        (
            format!("{ml}azure/gpt-4o\n      api_base:\n"),
            "bad.yaml:4:14: model_list[0] 'a' (azure/gpt-4o) needs litellm_params.api_base",
        ),
        (
            format!("{ml}hosted_vllm/x\n"),
            "bad.yaml:4:14: model_list[0] 'a' (hosted_vllm/x) needs litellm_params.api_base",
        ),
        (
            format!("{ml}openai/x\n      rpm: lots\n"),
            "bad.yaml:5:12: model_list[0].litellm_params.rpm must be a number, not \"lots\"",
        ),
        (
            format!("{ml}openai/x\n      rpm: -1\n"),
            "bad.yaml:5:12: model_list[0].litellm_params.rpm must be a whole number from 0 to 4294967295, not -1",
        ),
        (
            format!("{ml}openai/x\n      tpm: 1.5\n"),
            "bad.yaml:5:12: model_list[0].litellm_params.tpm must be a whole number",
        ),
        (
            format!("{ml}openai/x\n      timeout: [1]\n"),
            "bad.yaml:5:16: model_list[0].litellm_params.timeout must be a number, not a list",
        ),
        (
            format!("{ml}openai/x\n      stream_timeout: -2\n"),
            "bad.yaml:5:23: model_list[0].litellm_params.stream_timeout must not be negative, not -2",
        ),
        (
            format!("{ml}openai/x\n      api_key: {{a: 1}}\n"),
            "bad.yaml:5:16: model_list[0].litellm_params.api_key must be a string, not a mapping",
        ),
        (
            format!("{ml}openai/x\n    model_info: {{max_input_tokens: big}}\n"),
            "bad.yaml:5:36: model_list[0].model_info.max_input_tokens must be a number, not \"big\"",
        ),
        (
            format!("{ml}mock/x\n      mock_error_rate: 1.5\n"),
            "bad.yaml:5:24: model_list[0].litellm_params.mock_error_rate must be between 0 and 1, not 1.5",
        ),
        (
            format!("{ml}mock/x\n      mock_error: 42\n"),
            "bad.yaml:5:19: model_list[0].litellm_params.mock_error must be an HTTP status from 100 to 599",
        ),
        (
            format!("{ml}openai/x\nrouter_settings:\n  routing_strategy: fastest\n"),
            "bad.yaml:6:21: router_settings.routing_strategy: unknown strategy 'fastest'; valid ones: simple-shuffle, least-busy, usage-based-routing, usage-based-routing-v2, latency-based-routing, cost-based-routing",
        ),
        (
            format!("{ml}openai/x\nrouter_settings:\n  num_retries: many\n"),
            "bad.yaml:6:16: router_settings.num_retries must be a number, not \"many\"",
        ),
        (
            format!("{ml}openai/x\nlitellm_settings:\n  drop_params: maybe\n"),
            "bad.yaml:6:16: litellm_settings.drop_params must be true or false, not \"maybe\"",
        ),
        (
            format!("{ml}openai/x\nrouter_settings:\n  fallbacks: [{{a: [nope]}}]\n"),
            "bad.yaml:6:20: router_settings.fallbacks[0].a: 'nope' is not a model group or deployment id in model_list",
        ),
        (
            format!("{ml}openai/x\nrouter_settings:\n  fallbacks: [{{nope: [a]}}]\n"),
            "bad.yaml:6:16: router_settings.fallbacks: 'nope' is not a model group in model_list",
        ),
        (
            format!("{ml}openai/x\nrouter_settings:\n  fallbacks: [a, nope]\n"),
            "bad.yaml:6:18: router_settings.fallbacks[1]: 'nope' is not a model group or deployment id in model_list",
        ),
        (
            format!("{ml}openai/x\nlitellm_settings:\n  default_fallbacks: [nope]\n"),
            "bad.yaml:6:23: litellm_settings.default_fallbacks: 'nope' is not a model group or deployment id in model_list",
        ),
        (
            format!("{ml}openai/x\nrouter_settings:\n  fallbacks: 7\n"),
            "bad.yaml:6:14: router_settings.fallbacks must be a list like [{group: [fallback, ...]}], not 7",
        ),
        (
            format!("{ml}openai/x\nrouter_settings:\n  model_group_alias: {{gpt-4: nope}}\n"),
            "bad.yaml:6:30: router_settings.model_group_alias.gpt-4: 'nope' is not a model group in model_list",
        ),
        (
            format!(
                "{ml}openai/x\nrouter_settings:\n  model_group_alias: {{b: {{model: nope}}}}\n"
            ),
            "bad.yaml:6:34: router_settings.model_group_alias.b: 'nope' is not a model group in model_list",
        ),
        (
            format!("{ml}openai/x\nllmux:\n  default_model: nope\n"),
            "bad.yaml:6:18: llmux.default_model: 'nope' is not a model group in model_list",
        ),
        (
            format!("{ml}openai/x\nllmux:\n  mid_stream_failover: resume\n"),
            "bad.yaml:6:24: llmux.mid_stream_failover: unknown value 'resume'; valid ones: continue, restart, off",
        ),
        (
            format!("{ml}openai/x\ngeneral_settings: [a]\n"),
            "bad.yaml:5:19: general_settings must be a mapping of keys to values, not a list",
        ),
    ];
    for (text, want) in cases {
        let got = e(text);
        assert!(
            got.starts_with(want),
            "for {text:?}\n got: {got}\nwant: {want}"
        );
    }
}

#[test]
fn a_non_number_in_an_env_variable_is_not_quoted() {
    let text = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, rpm: os.environ/RPM}\n";
    let got = load_str_with_env(text, None, &|_| Some("sk-looks-like-a-key".into()))
        .unwrap_err()
        .to_string();
    assert_eq!(
        got,
        "<config>:3:44: model_list[0].litellm_params.rpm must be a number, and os.environ/RPM does not hold one"
    );
}

#[test]
fn load_file_names_the_file() {
    let path = Path::new(FIXTURES).join("bad_provider_prefix.yaml");
    let got = load_file(&path).unwrap_err().to_string();
    assert!(
        got.starts_with(&format!(
            "{}:6:14: model_list[1].litellm_params.model: unknown provider prefix 'antropic/' \
             in 'antropic/claude-sonnet-4-5' (did you mean 'anthropic/'?); known prefixes: openai/",
            path.display()
        )),
        "{got}"
    );
    let missing = Path::new(FIXTURES).join("does-not-exist.yaml");
    let got = load_file(&missing).unwrap_err().to_string();
    assert!(
        got.starts_with(&format!("{}: cannot read the config: ", missing.display())),
        "{got}"
    );
}

#[test]
fn deep_nesting_and_alias_bombs_are_errors_not_crashes() {
    let deep = format!(
        "model_list: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    // Where exactly depends on how far the parser looked ahead; the line is certain.
    let got = err(&deep);
    assert!(got.starts_with("bad.yaml:1:"), "{got}");
    assert!(
        got.ends_with(": invalid YAML: nested more than 64 levels deep"),
        "{got}"
    );
    let dashes = format!("model_list:\n  {}x\n", "- ".repeat(10_000));
    assert_eq!(
        err(&dashes),
        "bad.yaml:2:131: invalid YAML: nested more than 64 levels deep"
    );
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9 {
        let prev = if i == 0 {
            "a".to_string()
        } else {
            format!("b{}", i - 1)
        };
        bomb.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let got = err(&bomb);
    assert!(got.starts_with("bad.yaml:"), "{got}");
}

#[test]
fn every_error_of_a_config_is_reported_at_once_in_file_order() {
    let text = "\
model_list:
  - model_name: fast
    litellm_params:
      model: openai/gpt-4o-mini
      rpm: lots
  - model_name: smart
    litellm_params:
      model: openai/gpt-4o
router_settings:
  routing_strategy: fastest
  num_retries: 2
  fallbacks: [{ fast: [smart, nowhere] }]
llmux:
  mid_stream_failover: sometimes
  default_model: smart
";
    let report = err(text);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 4, "{report}");
    assert!(
        lines[0].starts_with("bad.yaml:5:12: model_list[0].litellm_params.rpm"),
        "{report}"
    );
    assert!(
        lines[1].starts_with(
            "bad.yaml:10:21: router_settings.routing_strategy: unknown strategy 'fastest'"
        ),
        "{report}"
    );
    assert!(
        lines[2].starts_with("bad.yaml:12:31: router_settings.fallbacks[0].fast: 'nowhere'"),
        "{report}"
    );
    assert!(
        lines[3]
            .starts_with("bad.yaml:14:24: llmux.mid_stream_failover: unknown value 'sometimes'"),
        "{report}"
    );
    let e = load_str(text, None).unwrap_err();
    assert_eq!(e.all().count(), 4);
}

#[test]
fn a_group_whose_entry_failed_is_not_reported_again_where_it_is_named() {
    // `fast` cannot be read, but it is written: a fallback to it or a default on it is not
    // a second error ("not a model group").
    let text = "\
model_list:
  - model_name: fast
    litellm_params:
      model: openai/gpt-4o-mini
      timeout: soon
  - model_name: smart
    litellm_params:
      model: openai/gpt-4o
router_settings:
  fallbacks: [{ smart: [fast] }]
llmux:
  default_model: fast
";
    assert_eq!(
        err(text),
        "bad.yaml:5:16: model_list[0].litellm_params.timeout must be a number, not \"soon\""
    );
    // When every entry fails, their errors are the report (no "no usable model" besides).
    let all_bad = "\
model_list:
  - model_name: a
    litellm_params: {model: openai/x, rpm: many}
  - model_name: b
    litellm_params: {model: openai/y, tpm: lots}
";
    let report = err(all_bad);
    assert_eq!(report.lines().count(), 2, "{report}");
    assert!(!report.contains("no usable model"), "{report}");
}

#[test]
fn every_bad_field_of_one_entry_is_reported() {
    let text = "\
model_list:
  - model_name: a
    litellm_params:
      model: openai/gpt-4o
      rpm: many
      timeout: soon
      weight: -2
";
    let report = err(text);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 3, "{report}");
    assert!(
        lines[0].starts_with("bad.yaml:5:12: model_list[0].litellm_params.rpm"),
        "{report}"
    );
    assert!(
        lines[1].starts_with("bad.yaml:6:16: model_list[0].litellm_params.timeout"),
        "{report}"
    );
    assert!(
        lines[2].starts_with("bad.yaml:7:15: model_list[0].litellm_params.weight"),
        "{report}"
    );
}

#[test]
fn a_bad_alias_or_section_hides_no_other_error_and_adds_no_false_one() {
    let text = "\
model_list:
  - model_name: fast
    litellm_params: {model: openai/gpt-4o-mini}
litellm_settings: 5
router_settings:
  model_group_alias: {quick: nowhere, cheap: fast}
  num_retries: abc
  fallbacks: [{ fast: [quick] }]
llmux:
  default_model: cheap
environment_variables:
  A: [1]
  B: {x: 1}
";
    let report = err(text);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 5, "{report}");
    assert!(
        lines[0].starts_with("bad.yaml:4:19: litellm_settings"),
        "{report}"
    );
    assert!(
        lines[1].contains("model_group_alias.quick: 'nowhere' is not a model group"),
        "{report}"
    );
    assert!(
        lines[2].starts_with("bad.yaml:7:16: router_settings.num_retries"),
        "{report}"
    );
    assert!(
        lines[3].starts_with("bad.yaml:12:6: environment_variables.A"),
        "{report}"
    );
    assert!(
        lines[4].starts_with("bad.yaml:13:6: environment_variables.B"),
        "{report}"
    );
}

#[test]
fn a_failed_entry_still_answers_for_its_id_and_its_numeric_name() {
    let text = "\
model_list:
  - model_name: 7
    litellm_params: {model: openai/a, rpm: many}
    model_info: {id: dep-seven}
  - model_name: fast
    litellm_params: {model: openai/b, tpm: lots}
  - model_name: ok
    litellm_params: {model: openai/c}
router_settings:
  fallbacks: [{ ok: [\"7\", dep-seven, openai/b] }]
";
    let report = err(text);
    assert_eq!(report.lines().count(), 2, "{report}");
    assert!(!report.contains("not a model group"), "{report}");
}
