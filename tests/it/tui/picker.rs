//! Switching models: the Ctrl+P picker ranks an exact group or alias name first, then names
//! that start with the filter, then fuzzy matches (a deployment id's partial match never
//! beats a group's name); once the filter has text, digits are text, not favorites; one
//! cursor marker, and Enter takes the row under it. A reopened conversation comes back on the
//! group it last used.

use crossterm::event::KeyCode;
use llmux::store::session::{Record, SessionStore};

use super::Harness;

/// Groups whose names share prefixes, an alias, a deployment id that partly matches the
/// alias, and four favorites (so `4` is one).
const CONFIG: &str = r#"
model_list:
  - model_name: gpt-4o-mini
    litellm_params: { model: mock/gpt-4o-mini }
  - model_name: gpt-4o
    litellm_params: { model: mock/gpt-4o-2024-08-06 }
  - model_name: claude
    litellm_params: { model: mock/claude-omni-preview }
  - model_name: local
    litellm_params: { model: mock/local-small }
router_settings:
  model_group_alias: { omni: gpt-4o }
llmux:
  default_model: local
  favorites: [claude, local, gpt-4o, gpt-4o-mini]
"#;

fn harness() -> Harness {
    Harness::with_yaml(100, 30, CONFIG)
}

fn pick(filter: &str) -> String {
    let mut h = harness();
    h.ctrl('p');
    h.type_text(filter);
    h.press(KeyCode::Enter);
    assert!(h.app.overlay.is_none(), "Enter closes the picker");
    h.app.current_group().to_string()
}

#[tokio::test(start_paused = true)]
async fn an_exact_group_name_wins_and_digits_in_a_filter_are_text() {
    // `4` is favorite 4 (gpt-4o-mini) only while the filter is empty.
    assert_eq!(pick("gpt-4o"), "gpt-4o");
    assert_eq!(pick("GPT-4O"), "gpt-4o", "case does not matter");
    assert_eq!(pick("gpt-4o-m"), "gpt-4o-mini");
    // With an empty filter a digit still picks its favorite.
    assert_eq!(pick("4"), "gpt-4o-mini");
}

#[tokio::test(start_paused = true)]
async fn an_alias_ranks_as_its_group_and_beats_a_partial_deployment_match() {
    // `mock/claude-omni-preview` contains "omni"; the alias `omni` names gpt-4o exactly.
    assert_eq!(pick("omni"), "gpt-4o");
    // A prefix beats a fuzzy match: "cl" starts `claude`, and fuzzily matches `local`'s
    // `mock/local-small`... the group name's prefix wins.
    assert_eq!(pick("cl"), "claude");
    // Fuzzy still finds what nothing else does.
    assert_eq!(pick("lcl"), "local");
}

#[tokio::test(start_paused = true)]
async fn one_cursor_marker_and_enter_takes_the_cursor() {
    let mut h = harness();
    h.ctrl('p');
    h.type_text("gpt");
    // The best match is first; move the cursor to the next group row and take it.
    let s = h.screen();
    assert_eq!(s.matches('▶').count(), 1, "one cursor:\n{s}");
    let cursor_line = s.lines().find(|l| l.contains('▶')).unwrap();
    assert!(cursor_line.contains("gpt-4o-mini"), "{s}");
    h.press(KeyCode::Down);
    h.press(KeyCode::Down);
    let s = h.screen();
    assert_eq!(s.matches('▶').count(), 1, "{s}");
    let cursor_line = s.lines().find(|l| l.contains('▶')).unwrap();
    assert!(
        cursor_line.contains("gpt-4o ") || cursor_line.ends_with("gpt-4o"),
        "{s}"
    );
    // The current group (local, the default) is marked, but not as a cursor.
    h.press(KeyCode::Backspace);
    h.press(KeyCode::Backspace);
    h.press(KeyCode::Backspace);
    let s = h.screen();
    let local = s
        .lines()
        .find(|l| l.contains(" local") && l.contains('✓'))
        .unwrap_or_else(|| panic!("the current group is marked:\n{s}"));
    assert!(!local.contains('▶'), "{s}");
    h.type_text("gpt");
    h.press(KeyCode::Down);
    h.press(KeyCode::Down);
    h.press(KeyCode::Enter);
    assert_eq!(h.app.current_group(), "gpt-4o");
}

#[tokio::test(start_paused = true)]
async fn a_reopened_conversation_comes_back_on_its_last_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    let mut w = store.writer("talk");
    for (id, group) in [(1, "gpt-4o-mini"), (2, "claude")] {
        w.append(&Record::User {
            id,
            text: format!("question {id}"),
            group: group.to_string(),
            at_unix_ms: 1_700_000_000_000,
            images: Vec::new(),
        })
        .unwrap();
    }
    let mut h = harness();
    assert_eq!(h.app.current_group(), "local", "default_model");
    h.app.load_session(store.load("talk").unwrap());
    assert_eq!(h.app.current_group(), "claude");
    assert!(h.screen().contains(" claude "), "the status line says so");
}
