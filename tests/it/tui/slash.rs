//! `/` commands in the composer and the command palette: what each command does (as state
//! and effects), that an unknown `/word` is never sent and `//` sends a slash, Tab
//! completion of names and arguments, and the palette (Ctrl+X, rebindable).

use crossterm::event::KeyCode;
use llmux::provider::Role;
use llmux::store::session::{Record, SessionStore, Settings};
use llmux::tui::action::{Action, Command, Effect};
use llmux::tui::app::Overlay;
use llmux::tui::theme::{ColorDepth, Theme};

use super::Harness;

fn started(fx: &[Effect]) -> Option<&llmux::provider::ChatRequest> {
    fx.iter().find_map(|e| match e {
        Effect::StartChat { request, .. } => Some(request),
        _ => None,
    })
}

/// Types `text` and presses Enter.
fn enter(h: &mut Harness, text: &str) -> Vec<Effect> {
    h.type_text(text);
    h.press(KeyCode::Enter)
}

fn toast(h: &Harness) -> String {
    h.app
        .toast
        .as_ref()
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn an_unknown_command_is_not_sent_and_says_which_exist() {
    let mut h = Harness::new(120, 30);
    let fx = enter(&mut h, "/claude hello");
    assert!(started(&fx).is_none(), "{fx:?}");
    assert!(h.app.entries.is_empty());
    let t = toast(&h);
    assert!(t.contains("no command /claude"), "{t}");
    assert!(t.contains("/model") && t.contains("/help"), "{t}");
    assert!(h.app.toast.as_ref().unwrap().error);
    // The text stays to be fixed.
    assert_eq!(h.app.draft(), "/claude hello");
}

#[tokio::test(start_paused = true)]
async fn a_double_slash_sends_a_literal_slash() {
    let mut h = Harness::new(120, 30);
    let fx = enter(&mut h, "//etc/hosts holds names");
    let req = started(&fx).expect("sent");
    assert_eq!(
        req.messages.last().unwrap().content,
        "/etc/hosts holds names"
    );
    assert_eq!(h.app.draft(), "");
}

#[tokio::test(start_paused = true)]
async fn model_switches_by_name_alias_or_unique_prefix() {
    let mut h = Harness::new(120, 30);
    assert_eq!(h.app.current_group(), "fast");
    let fx = enter(&mut h, "/model smart");
    assert!(started(&fx).is_none());
    assert_eq!(h.app.current_group(), "smart");
    assert_eq!(
        h.app.draft(),
        "",
        "a command that ran leaves the composer empty"
    );
    enter(&mut h, "/model lo");
    assert_eq!(h.app.current_group(), "local");
    enter(&mut h, "/model claude");
    assert_eq!(h.app.current_group(), "local");
    let t = toast(&h);
    assert!(
        t.contains("no model group \"claude\"") && t.contains("fast, smart, local"),
        "{t}"
    );
    assert_eq!(h.app.draft(), "/model claude");
    // The next message goes to the group chosen.
    h.app.set_composer_text("");
    let (_, group, _) = h.send("hi");
    assert_eq!(group, "local");
}

#[tokio::test(start_paused = true)]
async fn tab_completes_command_names_then_group_names_and_cycles() {
    let mut h = Harness::new(120, 30);
    h.type_text("/mo");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/model ");
    // The popup lists the groups.
    let s = h.screen();
    assert!(s.contains("Tab completes") && s.contains("smart"), "{s}");
    h.type_text("sm");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/model smart");
    // Several candidates: Tab cycles through them.
    h.app.set_composer_text("/model ");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/model fast");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/model smart");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/model local");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/model fast");
    // A common start completes first: /s → /s (sessions, set, system) then cycles.
    h.app.set_composer_text("/se");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/set ");
    h.app.set_composer_text("/ses");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/sessions");
    // /set completes parameter names.
    h.app.set_composer_text("/set te");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/set temperature");
    // /theme completes theme names.
    h.app.set_composer_text("/theme n");
    h.press(KeyCode::Tab);
    assert_eq!(h.app.draft(), "/theme nord");
    // Not a command: Tab moves the focus as ever.
    h.app.set_composer_text("hello");
    h.press(KeyCode::Tab);
    assert_ne!(h.app.focus, llmux::tui::app::Focus::Composer);
}

#[tokio::test(start_paused = true)]
async fn system_prompt_and_parameters_go_with_each_request_and_are_saved() {
    let mut h = Harness::new(120, 30);
    let fx = enter(&mut h, "/system You answer in French.");
    assert!(
        fx.contains(&Effect::Persist(Record::Settings(Settings {
            system: Some("You answer in French.".into()),
            ..Settings::default()
        }))),
        "{fx:?}"
    );
    for (cmd, ok) in [
        ("/set temperature 0.2", true),
        ("/set top_p 0.9", true),
        ("/set max_tokens 300", true),
        ("/set temperature 9", false),
        ("/set seed 3", false),
    ] {
        h.app.set_composer_text("");
        enter(&mut h, cmd);
        assert_eq!(
            h.app.toast.as_ref().unwrap().error,
            !ok,
            "{cmd}: {}",
            toast(&h)
        );
    }
    h.app.set_composer_text("");
    // Shown on top of the conversation.
    let s = h.screen();
    assert!(
        s.contains("⚙ system · temperature 0.2 · top_p 0.9 · max_tokens 300 │ You answer"),
        "{s}"
    );
    let (_, _, _) = h.send("bonjour");
    let req = h
        .effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::StartChat { request, .. } => Some(request.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(req.messages[0].role, Role::System);
    assert_eq!(req.messages[0].content, "You answer in French.");
    assert_eq!(req.messages[1].content, "bonjour");
    assert_eq!(req.temperature, Some(0.2));
    assert_eq!(req.max_tokens, Some(300));
    assert_eq!(req.extra.get("top_p"), Some(&serde_json::json!(0.9)));
    // `/system` alone brings the prompt back to be edited; `/system -` clears it.
    h.app.set_composer_text("");
    enter(&mut h, "/system");
    assert_eq!(h.app.draft(), "/system You answer in French.");
    h.app.set_composer_text("");
    enter(&mut h, "/system -");
    assert_eq!(h.app.settings.system, None);
    assert_eq!(h.app.settings.temperature, Some(0.2));
}

#[tokio::test(start_paused = true)]
async fn settings_are_saved_and_come_back_with_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    let mut h = Harness::new(120, 30);
    enter(&mut h, "/system Be brief.");
    h.app.set_composer_text("");
    enter(&mut h, "/set temperature 0.5");
    let mut w = store.writer("s");
    for e in &h.effects {
        if let Effect::Persist(r) = e {
            w.append(r).unwrap();
        }
    }
    let loaded = store.load("s").unwrap();
    assert_eq!(loaded.settings.system.as_deref(), Some("Be brief."));
    assert_eq!(loaded.settings.temperature, Some(0.5));
    let mut h2 = Harness::new(120, 30);
    h2.app.load_session(loaded);
    assert_eq!(h2.app.settings, h.app.settings);
    // A new conversation starts without them.
    h2.ctrl('l');
    assert!(h2.app.settings.is_empty());
}

#[tokio::test(start_paused = true)]
async fn session_commands_ask_the_runner() {
    let mut h = Harness::new(120, 30);
    let fx = enter(&mut h, "/new");
    assert!(
        fx.iter().any(|e| matches!(e, Effect::SwitchSession(_))),
        "{fx:?}"
    );
    let fx = enter(&mut h, "/sessions");
    assert!(fx.contains(&Effect::ListSessions));
    assert!(matches!(h.app.overlay, Some(Overlay::Sessions { .. })));
    h.press(KeyCode::Esc);
    let name = h.app.session.clone();
    let fx = enter(&mut h, "/rename my trip");
    assert_eq!(
        fx,
        vec![Effect::RenameSession {
            from: name.clone(),
            to: "my_trip".into()
        }]
    );
    h.act(Action::SessionRenamed {
        from: name.clone(),
        result: Ok("my_trip".into()),
    });
    assert_eq!(h.app.session, "my_trip");
    let fx = enter(&mut h, "/delete");
    assert!(
        fx.contains(&Effect::DeleteSession("my_trip".into())),
        "{fx:?}"
    );
    let switched = fx.iter().find_map(|e| match e {
        Effect::SwitchSession(n) => Some(n.clone()),
        _ => None,
    });
    assert!(switched.is_some_and(|n| n != "my_trip"), "{fx:?}");
    // Nothing is written to the deleted file after it goes.
    let delete_at = fx
        .iter()
        .position(|e| matches!(e, Effect::DeleteSession(_)))
        .unwrap();
    assert!(
        !fx[delete_at..]
            .iter()
            .take_while(|e| !matches!(e, Effect::SwitchSession(_)))
            .any(|e| matches!(e, Effect::Persist(_))),
        "{fx:?}"
    );
    let fx = enter(&mut h, "/help");
    assert!(fx.is_empty());
    assert!(matches!(h.app.overlay, Some(Overlay::Help { .. })));
}

#[tokio::test(start_paused = true)]
async fn theme_and_copy_commands() {
    let mut h = Harness::new(120, 30);
    let fx = enter(&mut h, "/theme nord");
    assert_eq!(fx, vec![Effect::LoadTheme("nord".into())]);
    let dir = tempfile::tempdir().unwrap();
    let loaded = llmux::tui::chatio::load_theme(Some(dir.path()), "nord", ColorDepth::TrueColor);
    h.act(loaded);
    assert_eq!(
        h.app.theme.name,
        Theme::load(Some("nord"), None, ColorDepth::TrueColor)
            .0
            .name
    );
    assert!(toast(&h).starts_with("theme "));
    match llmux::tui::chatio::load_theme(Some(dir.path()), "neon", ColorDepth::TrueColor) {
        Action::ThemeLoaded(Err(e)) => {
            assert!(e.contains("no theme \"neon\"") && e.contains("nord"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let fx = enter(&mut h, "/copy");
    assert!(fx.is_empty() && toast(&h).contains("no answer"), "{fx:?}");
    h.app.set_composer_text("");
    enter(&mut h, "/copy x");
    assert!(toast(&h).contains("not a code block number"));
}

#[test]
fn rename_and_delete_move_and_remove_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    store
        .writer("a")
        .append(&Record::Draft { text: "x".into() })
        .unwrap();
    store
        .writer("b")
        .append(&Record::Draft { text: "y".into() })
        .unwrap();
    match llmux::tui::chatio::rename(Some(&store), "a", "b") {
        Action::SessionRenamed { result: Err(e), .. } => assert!(e.contains("exists"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.rename("a", "c d").unwrap(), "c_d");
    assert_eq!(store.load("c_d").unwrap().draft, "x");
    assert!(!store.path_of("a").exists());
    // Never written: only the name changes.
    assert_eq!(store.rename("new", "named").unwrap(), "named");
    store.delete("b").unwrap();
    assert!(!store.path_of("b").exists());
    store.delete("b").unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_palette_filters_and_runs_commands_and_actions() {
    let mut h = Harness::new(120, 30);
    h.ctrl('x');
    assert!(matches!(h.app.overlay, Some(Overlay::Palette(_))));
    h.type_text("next model");
    h.press(KeyCode::Enter);
    assert!(h.app.overlay.is_none());
    assert_eq!(h.app.current_group(), "smart");
    // A command with an argument goes into the composer for it.
    h.ctrl('x');
    h.type_text("/model");
    h.press(KeyCode::Enter);
    assert_eq!(h.app.draft(), "/model ");
    // A name match comes before a description match (/sessions' help says "rename").
    h.app.set_composer_text("");
    h.ctrl('x');
    h.type_text("rena");
    h.press(KeyCode::Enter);
    assert_eq!(h.app.draft(), "/rename ");
    // One without runs at once.
    h.app.set_composer_text("");
    h.ctrl('x');
    h.type_text("sessions");
    let fx = h.press(KeyCode::Enter);
    assert!(fx.contains(&Effect::ListSessions), "{fx:?}");
    // Ctrl+X again closes it; Esc too.
    h.press(KeyCode::Esc);
    h.ctrl('x');
    h.ctrl('x');
    assert!(h.app.overlay.is_none());
    // Down then Enter takes the second row.
    h.ctrl('x');
    h.press(KeyCode::Down);
    h.press(KeyCode::Enter);
    assert_eq!(h.app.draft(), "/system ");
}

#[tokio::test(start_paused = true)]
async fn the_palette_key_is_rebindable() {
    let mut cfg = llmux::config::demo().unwrap();
    cfg.app.keys.insert("palette".into(), "f9".into());
    let mut h = Harness::with_config(120, 30, &cfg, Theme::builtin_default(ColorDepth::TrueColor));
    h.press(KeyCode::F(9));
    assert!(matches!(h.app.overlay, Some(Overlay::Palette(_))));
    h.press(KeyCode::Esc);
    h.ctrl('x');
    assert!(h.app.overlay.is_none());
    assert_eq!(h.app.keymap.label(Command::Palette), "F9");
}

#[tokio::test(start_paused = true)]
async fn snapshot_palette() {
    for (w, hh) in [(80, 24), (160, 48)] {
        let mut h = super::full(w, hh).await;
        h.ctrl('x');
        insta::assert_snapshot!(format!("palette_{w}x{hh}"), h.screen());
        h.type_text("model");
        insta::assert_snapshot!(format!("palette_filtered_{w}x{hh}"), h.screen());
        h.press(KeyCode::Esc);
        h.type_text("/");
        insta::assert_snapshot!(format!("slash_completions_{w}x{hh}"), h.screen());
    }
}
