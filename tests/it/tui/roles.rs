//! Roles from files (`<config dir>/llmux/roles/NAME.md`): `/role NAME` reads one (in a temp
//! dir here), and its prompt, model and parameters become the conversation's; a missing role
//! or bad front matter says what and where.

use crossterm::event::KeyCode;
use llmux::provider::Role;
use llmux::store::session::Record;
use llmux::tui::action::{Action, Effect};
use llmux::tui::chatio;

use super::Harness;

fn roles_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("reviewer.md"),
        "---\nmodel: smart\ntemperature: 0.1\nmax_tokens: 400\n---\nYou review Rust code.\nPoint at the line.\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("plain.md"), "Answer in one sentence.\n").unwrap();
    std::fs::write(
        dir.path().join("broken.md"),
        "---\nmodel: smart\ntemperature: warm\n---\nhi\n",
    )
    .unwrap();
    dir
}

#[tokio::test(start_paused = true)]
async fn a_role_file_sets_prompt_model_and_parameters() {
    let dir = roles_dir();
    let mut h = Harness::new(120, 30);
    h.app.slash.roles = llmux::roles::list(dir.path());
    assert_eq!(h.app.slash.roles, ["broken", "plain", "reviewer"]);
    // Tab completes role names.
    h.type_text("/role re");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/role reviewer");
    let fx = h.press(KeyCode::Enter);
    assert_eq!(fx, vec![Effect::LoadRole("reviewer".into())]);
    let fx = h.act(chatio::load_role(Some(dir.path()), "reviewer"));
    let s = &h.app.settings;
    assert_eq!(s.role.as_deref(), Some("reviewer"));
    assert_eq!(
        s.system.as_deref(),
        Some("You review Rust code.\nPoint at the line.")
    );
    assert_eq!((s.temperature, s.max_tokens), (Some(0.1), Some(400)));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Persist(Record::Settings(_)))),
        "{fx:?}"
    );
    assert_eq!(h.app.current_group(), "smart");
    let screen = h.screen();
    assert!(
        screen.contains("⚙ role reviewer · temperature 0.1 · max_tokens 400 │ You review Rust"),
        "{screen}"
    );
    let (_, group, messages) = h.send("fn main() {}");
    assert_eq!(group, "smart");
    assert_eq!(messages[0].role, Role::System);
    assert!(messages[0].content.starts_with("You review Rust code."));
    // A role without front matter is all prompt, and keeps the model.
    h.act(chatio::load_role(Some(dir.path()), "plain"));
    assert_eq!(
        h.app.settings.system.as_deref(),
        Some("Answer in one sentence.")
    );
    assert_eq!(h.app.settings.temperature, None);
    assert_eq!(h.app.current_group(), "smart");
}

#[tokio::test(start_paused = true)]
async fn missing_roles_and_bad_front_matter_say_what_and_where() {
    let dir = roles_dir();
    let mut h = Harness::new(120, 30);
    h.act(chatio::load_role(Some(dir.path()), "poet"));
    let t = h.app.toast.clone().unwrap();
    assert!(t.error);
    assert!(
        t.text.contains("no role \"poet\"") && t.text.contains("broken, plain, reviewer"),
        "{}",
        t.text
    );
    h.act(chatio::load_role(Some(dir.path()), "broken"));
    let t = h.app.toast.clone().unwrap();
    assert!(
        t.text.contains("broken.md:3: front matter: temperature"),
        "{}",
        t.text
    );
    assert!(h.app.settings.is_empty(), "nothing changed");
    match chatio::load_role(Some(dir.path()), "../etc/passwd") {
        Action::RoleLoaded(Err(e)) => assert!(e.contains("a role name is"), "{e}"),
        other => panic!("{other:?}"),
    }
    // An empty dir: says where roles go.
    let empty = tempfile::tempdir().unwrap();
    match chatio::load_role(Some(empty.path()), "x") {
        Action::RoleLoaded(Err(e)) => {
            assert!(e.contains("none yet") && e.contains("NAME.md"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_role_whose_model_is_unknown_keeps_the_group_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.md"), "---\nmodel: gpt-9\n---\nhi\n").unwrap();
    let mut h = Harness::new(120, 30);
    h.act(chatio::load_role(Some(dir.path()), "x"));
    assert_eq!(h.app.current_group(), "fast");
    let t = h.app.toast.clone().unwrap();
    assert!(t.error && t.text.contains("gpt-9"), "{}", t.text);
    assert_eq!(h.app.settings.system.as_deref(), Some("hi"));
}
