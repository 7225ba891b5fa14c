//! Chatting: Ctrl+J adds a line (it used to delete the line's start, wiping a one-line draft);
//! Ctrl+U and Ctrl+W edit as in a shell line; no key clears a draft without a way back
//! (Ctrl+Z undoes); Shift+Enter is offered only where the terminal tells it from Enter; a
//! composer holding more lines than it shows says so.

use crossterm::event::{KeyCode, KeyModifiers};
use llmux::tui::action::Effect;

use super::Harness;

#[tokio::test(start_paused = true)]
async fn ctrl_j_adds_a_line_and_does_not_send() {
    let mut h = Harness::new(80, 24);
    h.type_text("first line");
    let fx = h.ctrl('j');
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::StartChat { .. })),
        "{fx:?}"
    );
    h.type_text("second line");
    assert_eq!(h.app.draft(), "first line\nsecond line");
}

#[tokio::test(start_paused = true)]
async fn ctrl_u_and_ctrl_w_edit_as_in_a_shell_line_and_ctrl_z_undoes() {
    let mut h = Harness::new(80, 24);
    h.type_text("keep this");
    h.ctrl('j');
    h.type_text("git commit -m fix.it");
    h.ctrl('w');
    assert_eq!(
        h.app.draft(),
        "keep this\ngit commit -m ",
        "Ctrl+W: back to a space"
    );
    h.ctrl('w');
    assert_eq!(
        h.app.draft(),
        "keep this\ngit commit ",
        "trailing spaces go with the word"
    );
    h.ctrl('u');
    assert_eq!(
        h.app.draft(),
        "keep this\n",
        "Ctrl+U: this line's start only"
    );
    h.ctrl('z');
    assert_eq!(h.app.draft(), "keep this\ngit commit ");
    h.ctrl('z');
    h.ctrl('z');
    assert_eq!(h.app.draft(), "keep this\ngit commit -m fix.it");
}

#[tokio::test(start_paused = true)]
async fn no_key_clears_a_draft_without_a_way_back() {
    const DRAFT: &str = "one two\nthree four";
    let letters = ('a'..='z').collect::<Vec<_>>();
    let keys = letters
        .iter()
        .map(|c| (KeyCode::Char(*c), KeyModifiers::CONTROL))
        .chain(
            letters
                .iter()
                .map(|c| (KeyCode::Char(*c), KeyModifiers::ALT)),
        )
        .chain([
            (KeyCode::Backspace, KeyModifiers::NONE),
            (KeyCode::Backspace, KeyModifiers::ALT),
            (KeyCode::Backspace, KeyModifiers::CONTROL),
            (KeyCode::Delete, KeyModifiers::NONE),
            (KeyCode::Esc, KeyModifiers::NONE),
            (KeyCode::Up, KeyModifiers::NONE),
            (KeyCode::Down, KeyModifiers::NONE),
        ]);
    // (Ctrl+Z itself is the way back: it undoes the last edit, typing included.)
    for (code, mods) in keys.filter(|k| *k != (KeyCode::Char('z'), KeyModifiers::CONTROL)) {
        let mut h = Harness::new(80, 24);
        h.type_text("one two");
        h.ctrl('j');
        h.type_text("three four");
        assert_eq!(h.app.draft(), DRAFT);
        h.key(code, mods);
        // An overlay the key opened is closed again first.
        if h.app.overlay.is_some() {
            h.press(KeyCode::Esc);
        }
        let after = h.app.draft();
        if !after.contains("one two") || !after.contains("three four") {
            h.ctrl('z');
            assert_eq!(
                h.app.draft(),
                DRAFT,
                "{mods:?}+{code:?} left {after:?} and Ctrl+Z did not bring the draft back"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn shift_enter_is_offered_only_where_the_terminal_reports_it() {
    let mut h = Harness::new(160, 48);
    h.press(KeyCode::F(1));
    let s = h.screen();
    let newline_keys = s
        .lines()
        .find(|l| l.contains("new line in the message"))
        .unwrap();
    assert!(!newline_keys.contains("Shift+Enter"), "{s}");
    // The note is at the help's foot: End shows it.
    h.press(KeyCode::End);
    let s = h.screen();
    assert!(s.contains("Alt+Enter or Ctrl+J adds a line"), "{s}");
    h.press(KeyCode::Esc);
    assert!(h.screen().contains("Alt+Enter/Ctrl+J newline"));
    // With the kitty keyboard protocol Shift+Enter arrives as itself and adds a line.
    h.app.shift_enter = true;
    assert!(h.screen().contains("Shift+Enter newline"));
    h.type_text("a");
    let fx = h.key(KeyCode::Enter, KeyModifiers::SHIFT);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::StartChat { .. })),
        "{fx:?}"
    );
    h.type_text("b");
    assert_eq!(h.app.draft(), "a\nb");
    h.press(KeyCode::F(1));
    let s = h.screen();
    let newline_keys = s
        .lines()
        .find(|l| l.contains("new line in the message"))
        .unwrap();
    assert!(newline_keys.contains("Shift+Enter"), "{s}");
    assert!(
        !s.contains("This terminal sends Shift+Enter as Enter"),
        "{s}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_composer_holding_more_lines_than_it_shows_says_so() {
    let mut h = Harness::new(80, 24);
    for i in 1..=10 {
        if i > 1 {
            h.ctrl('j');
        }
        h.type_text(&format!("line {i}"));
    }
    let s = h.screen();
    // Four of ten lines show at 80x24 (the cursor is on the last).
    assert!(s.contains("↑ 6 more"), "{s}");
    assert!(s.contains("line 10") && !s.contains("line 6 "), "{s}");
    for _ in 0..9 {
        h.press(KeyCode::Up);
    }
    let s = h.screen();
    assert!(s.contains("↓ 6 more") && !s.contains("↑"), "{s}");
    insta::assert_snapshot!("composer_hidden_lines_80x24", s);
}
