//! The context meter in the composer's title: the next request's size against the current
//! group's smallest context window, a warning near it, and the deployments it no longer fits.

use crossterm::event::KeyCode;
use llmux::tui::action::Action;

use super::Harness;

/// The composer's title line (the one with `Message →`, or `Edit →` while editing).
fn title(h: &mut Harness) -> String {
    let s = h.screen();
    s.lines()
        .find(|l| l.contains("Message →") || l.contains("Edit →"))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(start_paused = true)]
async fn the_meter_follows_the_group_s_smallest_window() {
    let mut h = Harness::new(160, 48);
    assert!(!title(&mut h).contains(" / "), "nothing to measure yet");
    h.type_text("hello there");
    assert!(title(&mut h).contains("~7 / 128k"), "{}", title(&mut h));
    // local's window is 32k.
    h.ctrl('n');
    h.ctrl('n');
    assert!(title(&mut h).contains("Message → local") && title(&mut h).contains("/ 32k"));
    // The conversation counts too: after a question and its answer the meter grows. While
    // the answer streams it shows the request in flight and holds still (a title redrawn per
    // token is bytes over SSH for a figure nobody can act on before the answer ends).
    h.app.set_composer_text("");
    let (tag, _, _) = h.send("what is a monad?");
    let asked = title(&mut h);
    assert!(asked.contains("~8 / 32k"), "{asked}");
    for piece in ["a monoid in the category ", "of endofunctors"] {
        h.chat(tag, 50, llmux::router::ChatEvent::Delta(piece.into()))
            .await;
        assert_eq!(title(&mut h), asked);
    }
    let o = super::outcome(
        "a monoid in the category of endofunctors",
        "local",
        "mock/local-small",
        50,
        100,
        10,
        None,
    );
    h.chat(tag, 1, llmux::router::ChatEvent::finished(Ok(o)))
        .await;
    assert!(title(&mut h).contains("~22 / 32k"), "{}", title(&mut h));
}

#[tokio::test(start_paused = true)]
async fn near_and_over_the_limit_it_warns_and_names_who_no_longer_fits() {
    let mut h = Harness::with_yaml(
        160,
        48,
        r#"
model_list:
  - model_name: g
    litellm_params: { model: mock/small }
    model_info: { max_input_tokens: 100 }
  - model_name: g
    litellm_params: { model: mock/large }
    model_info: { max_input_tokens: 1000 }
"#,
    );
    h.act(Action::Paste("x".repeat(340)));
    let t = title(&mut h);
    assert!(t.contains("~89 / 100 · near the limit"), "{t}");
    h.act(Action::Paste("x".repeat(100)));
    let t = title(&mut h);
    assert!(t.contains("/ 100 · too long for mock/small"), "{t}");
    h.act(Action::Paste("x".repeat(4000)));
    let t = title(&mut h);
    assert!(t.contains("too long for every deployment of g"), "{t}");
    // Cleared, the warning goes.
    h.app.set_composer_text("");
    h.press(KeyCode::Char('a'));
    assert!(title(&mut h).contains("~5 / 100 "), "{}", title(&mut h));
}

#[tokio::test(start_paused = true)]
async fn the_system_prompt_counts() {
    let mut h = Harness::new(160, 48);
    h.type_text("/system you are a very thorough and careful reviewer of code");
    h.press(KeyCode::Enter);
    assert!(title(&mut h).contains("~17 / 128k"), "{}", title(&mut h));
}

#[tokio::test(start_paused = true)]
async fn an_edit_is_measured_in_place_of_the_message_it_replaces() {
    let question = "a question of some length to measure";
    // What the edit sends: no history before it, the question as the draft.
    let mut fresh = Harness::new(160, 48);
    fresh.type_text(question);
    let alone = meter(&title(&mut fresh));

    let mut h = Harness::new(160, 48);
    let (tag, _, _) = h.send(question);
    let o = super::outcome("An answer.", "fast", "mock/fast-steady", 50, 100, 3, None);
    h.chat(tag, 1, llmux::router::ChatEvent::finished(Ok(o)))
        .await;
    let after = meter(&title(&mut h));
    assert!(after > alone, "{after} > {alone}");
    // e on the question: the meter counts the edit in its place, not the conversation plus it.
    while h.app.focus != llmux::tui::app::Focus::Conversation {
        h.press(KeyCode::Tab);
    }
    h.press(KeyCode::Up);
    h.press(KeyCode::Up);
    h.type_text("e");
    assert_eq!(h.app.draft(), question);
    assert_eq!(meter(&title(&mut h)), alone);
}

/// The meter's first figure: `~25 / 128k` is 25.
fn meter(title: &str) -> u64 {
    let at = title.find('~').expect("a meter") + 1;
    let digits: String = title[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}
