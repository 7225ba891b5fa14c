//! Snapshots: every pane and overlay at both sizes (80x24 and 160x48), on the demo
//! conversation and routing log.

use super::*;

#[tokio::test(start_paused = true)]
async fn snapshot_empty() {
    for (w, hh) in [(80, 24), (160, 48)] {
        let mut h = Harness::new(w, hh);
        insta::assert_snapshot!(format!("empty_{w}x{hh}"), h.screen());
    }
}

#[tokio::test(start_paused = true)]
async fn snapshot_conversation() {
    for (w, hh) in [(80, 24), (160, 48)] {
        let mut h = full(w, hh).await;
        insta::assert_snapshot!(format!("conversation_{w}x{hh}"), h.screen());
        h.press(KeyCode::PageUp);
        insta::assert_snapshot!(format!("conversation_scrolled_{w}x{hh}"), h.screen());
    }
}

#[tokio::test(start_paused = true)]
async fn snapshot_streaming() {
    for (w, hh) in [(80, 24), (160, 48)] {
        let mut h = full(w, hh).await;
        let (tag, _, _) = h.send("Explain lifetimes briefly.");
        h.chat(
            tag,
            5,
            ChatEvent::route(route(
                4,
                "smart",
                Some("smart-slow"),
                1,
                5,
                RouteEventKind::Attempt,
            )),
        )
        .await;
        insta::assert_snapshot!(format!("waiting_{w}x{hh}"), h.screen());
        h.chat(
            tag,
            1800,
            ChatEvent::Delta("A lifetime names how long a reference is valid. ".repeat(6)),
        )
        .await;
        h.chat(tag, 1000, ChatEvent::Delta("The compiler checks".into()))
            .await;
        insta::assert_snapshot!(format!("streaming_{w}x{hh}"), h.screen());
    }
}

#[tokio::test(start_paused = true)]
async fn snapshot_side_panes_at_80x24() {
    for (key, name) in [
        (KeyCode::F(2), "models"),
        (KeyCode::F(3), "metrics"),
        (KeyCode::F(4), "log"),
    ] {
        let mut h = full(80, 24).await;
        h.press(key);
        h.press(KeyCode::BackTab);
        insta::assert_snapshot!(format!("pane_{name}_80x24"), h.screen());
    }
}

#[tokio::test(start_paused = true)]
async fn snapshot_focus_on_each_pane_at_160x48() {
    let mut h = full(160, 48).await;
    h.press(KeyCode::F(2));
    h.press(KeyCode::Tab);
    h.press(KeyCode::Tab);
    assert_eq!(h.app.focus, Focus::Models);
    insta::assert_snapshot!("focus_models_160x48", h.screen());
    h.press(KeyCode::Tab);
    h.press(KeyCode::Tab);
    h.press(KeyCode::Up);
    insta::assert_snapshot!("focus_log_scrolled_160x48", h.screen());
}

#[tokio::test(start_paused = true)]
async fn snapshot_overlays() {
    for (w, hh) in [(80, 24), (160, 48)] {
        let mut h = full(w, hh).await;
        h.ctrl('p');
        insta::assert_snapshot!(format!("picker_{w}x{hh}"), h.screen());
        h.type_text("fl");
        insta::assert_snapshot!(format!("picker_filtered_{w}x{hh}"), h.screen());
        h.press(KeyCode::Esc);
        h.press(KeyCode::F(1));
        insta::assert_snapshot!(format!("help_{w}x{hh}"), h.screen());
        h.press(KeyCode::Esc);
        h.ctrl('o');
        h.act(Action::SessionsListed(Ok(vec![
            llmux::store::session::SessionInfo {
                name: "20231114-221320".into(),
                modified: None,
                bytes: 4300,
                preview: "How does Rust manage memory?".into(),
            },
            llmux::store::session::SessionInfo {
                name: "trip-planning".into(),
                modified: Some(fixed_clock() - Duration::from_secs(86_400 * 3)),
                bytes: 18_200,
                preview: "Plan three days in Lisbon".into(),
            },
        ])));
        h.act(Action::SessionsSummarized(vec![(
            "trip-planning".into(),
            llmux::store::session_summary::SessionSummary {
                models: vec!["smart".into(), "fast".into()],
                messages: 6,
                spent: llmux::money::Usd::from_pico(2_400_000_000),
                unpriced: false,
            },
        )]));
        insta::assert_snapshot!(format!("sessions_{w}x{hh}"), h.screen());
    }
}

#[tokio::test(start_paused = true)]
async fn snapshot_monochrome_still_shows_focus() {
    let mut h = Harness::with_theme(80, 24, Theme::builtin_default(ColorDepth::Mono));
    demo_conversation(&mut h).await;
    h.press(KeyCode::Tab);
    let s = h.screen();
    // The focused pane has a thick border even without colour.
    assert!(s.contains("┏") && s.contains("▸ Conversation"), "{s}");
    insta::assert_snapshot!("mono_focus_conversation_80x24", s);
}
