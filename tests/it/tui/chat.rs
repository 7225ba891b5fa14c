//! The chat itself: a message streams and finishes with the history sent each time, Esc
//! cancels and keeps the partial answer, one key switches the model, regenerate, badges,
//! help, escaped model output, the session file's flushes, round trips and torn lines, and
//! the demo config answering through a real router.

use super::*;

#[tokio::test(start_paused = true)]
async fn send_streams_and_finishes_with_history_sent_each_time() {
    let mut h = Harness::new(80, 24);
    let (tag, group, messages) = h.send("hello");
    assert_eq!(group, "fast");
    assert_eq!(messages.len(), 1);
    assert!(
        h.effects
            .iter()
            .any(|e| matches!(e, Effect::Persist(Record::User { text, .. }) if text == "hello"))
    );
    h.chat(
        tag,
        5,
        ChatEvent::route(route(
            1,
            "fast",
            Some("fast-steady"),
            1,
            5,
            RouteEventKind::Attempt,
        )),
    )
    .await;
    let s = h.screen();
    assert!(s.contains("waiting for fast-steady · attempt 1"), "{s}");
    h.chat(tag, 250, ChatEvent::Delta("Hello ".into())).await;
    h.chat(tag, 500, ChatEvent::Delta("**there**".into())).await;
    let s = h.screen();
    assert!(s.contains("tok/s"), "{s}");
    h.chat(
        tag,
        100,
        ChatEvent::finished(Ok(outcome(
            "Hello **there**",
            "fast",
            "fast-steady",
            250,
            855,
            3,
            Some(2_000_000),
        ))),
    )
    .await;
    let s = h.screen();
    assert!(
        s.contains("◆ fast-steady · fast  ttft 250 ms · 3 tok · 855 ms · $0.000002"),
        "{s}"
    );
    assert!(s.contains("Hello there"), "{s}");
    assert!(h.app.inflight.is_none());
    // An unchanged status right after the answer must not cancel the pending redraw.
    h.act(Action::Status(demo_status()));
    assert!(h.app.dirty);
    // The next request carries the whole history.
    let (_, _, messages) = h.send("and again");
    let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
    assert_eq!(messages[1].content, "Hello **there**");
}

#[tokio::test(start_paused = true)]
async fn esc_cancels_keeps_the_partial_answer_and_drops_late_events() {
    let mut h = Harness::new(80, 24);
    let (tag, _, _) = h.send("write a poem");
    h.chat(tag, 100, ChatEvent::Delta("Roses are red,".into()))
        .await;
    let fx = h.press(KeyCode::Esc);
    assert!(fx.contains(&Effect::Cancel(tag)), "{fx:?}");
    assert!(fx.iter().any(|e| matches!(e, Effect::Persist(Record::Answer(a)) if a.state == AnswerState::Cancelled && a.text == "Roses are red,")));
    let fx = h.chat(tag, 10, ChatEvent::Delta(" violets".into())).await;
    assert!(fx.is_empty());
    let s = h.screen();
    assert!(
        s.contains("Roses are red,") && !s.contains("violets"),
        "{s}"
    );
    assert!(s.contains(" cancelled "), "{s}");
    // Esc with nothing in flight does not quit.
    let fx = h.press(KeyCode::Esc);
    assert!(!fx.contains(&Effect::Quit));
}

#[tokio::test(start_paused = true)]
async fn one_keystroke_switches_the_model_for_the_next_message() {
    let mut h = Harness::new(80, 24);
    h.ctrl('n');
    assert!(h.screen().contains(" smart "));
    let (_, group, _) = h.send("hi");
    assert_eq!(group, "smart");
    h.press(KeyCode::Esc);
    h.ctrl('b');
    h.ctrl('b');
    assert_eq!(h.app.current_group(), "local");
}

#[tokio::test(start_paused = true)]
async fn regenerate_asks_the_last_question_on_the_current_model() {
    let mut h = Harness::new(80, 24);
    let (tag, _, _) = h.send("which is larger, 9.11 or 9.9?");
    h.chat(
        tag,
        300,
        ChatEvent::finished(Ok(outcome(
            "9.11",
            "fast",
            "fast-steady",
            250,
            300,
            2,
            Some(1),
        ))),
    )
    .await;
    h.ctrl('n');
    let fx = h.ctrl('r');
    let (group, messages) = fx
        .into_iter()
        .find_map(|e| match e {
            Effect::StartChat { group, request, .. } => Some((group, request.messages)),
            _ => None,
        })
        .unwrap();
    assert_eq!(group, "smart");
    assert_eq!(messages.len(), 1, "the earlier answer is not sent back");
    // Both answers stay visible for comparison.
    let answers = h
        .app
        .entries
        .iter()
        .filter(|e| matches!(e, Entry::Answer(_)))
        .count();
    assert_eq!(answers, 2);
}

#[tokio::test(start_paused = true)]
async fn picker_filters_as_you_type_and_favorites_pick() {
    let mut h = Harness::new(80, 24);
    h.ctrl('p');
    h.type_text("loc");
    let s = h.screen();
    assert!(s.contains("filter: loc"), "{s}");
    assert!(
        s.contains("local-small") && !s.contains("smart-slow"),
        "{s}"
    );
    h.press(KeyCode::Enter);
    assert_eq!(h.app.current_group(), "local");
    assert!(h.app.overlay.is_none());
    h.ctrl('p');
    h.press(KeyCode::Char('2'));
    assert_eq!(h.app.current_group(), "smart");
}

#[tokio::test(start_paused = true)]
async fn fallback_and_retry_badges_show_on_the_answer() {
    let mut h = Harness::new(160, 48);
    demo_conversation(&mut h).await;
    let s = h.screen();
    assert!(s.contains(" retried ") && s.contains(" fell back "), "{s}");
    assert!(s.contains("fast → local"), "{s}");
    assert!(s.contains(" failed "), "{s}");
}

#[tokio::test(start_paused = true)]
async fn a_cached_answer_is_marked_cached_with_no_cost() {
    let mut h = Harness::new(80, 24);
    let (tag, group, _) = h.send("hi");
    h.chat(tag, 1, ChatEvent::Delta("Hello from the cache".into()))
        .await;
    let mut o = outcome(
        "Hello from the cache",
        &group,
        "mock/fast-steady",
        1,
        2,
        5,
        Some(0),
    );
    o.attempts.clear();
    o.cached = true;
    h.chat(tag, 1, ChatEvent::finished(Ok(o))).await;
    let s = h.screen();
    assert!(s.contains(" cached "), "{s}");
    insta::assert_snapshot!("cached_answer_80x24", s);
}

#[tokio::test(start_paused = true)]
async fn help_overlay_lists_every_action_and_closes() {
    let mut h = Harness::new(160, 48);
    h.press(KeyCode::F(1));
    let s = h.screen();
    for c in Command::ALL {
        assert!(s.contains(c.name()), "{} missing:\n{s}", c.name());
    }
    assert!(
        s.contains("Ctrl+N") && s.contains("next model group"),
        "{s}"
    );
    h.press(KeyCode::Esc);
    assert!(h.app.overlay.is_none());
}

#[tokio::test(start_paused = true)]
async fn help_scrolls_to_its_end_and_back_without_overshooting() {
    let mut h = Harness::new(120, 30);
    h.press(KeyCode::F(1));
    let top = h.screen();
    assert!(top.contains("send the message"), "{top}");
    h.press(KeyCode::End);
    let end = h.screen();
    assert!(end.contains("Rebind under llmux.keys"), "{end}");
    assert!(!end.contains("send the message"), "{end}");
    // Down past the end stays at the end: one Up then moves at once.
    for _ in 0..50 {
        h.press(KeyCode::Down);
    }
    assert_eq!(h.screen(), end);
    h.press(KeyCode::Up);
    assert_ne!(
        h.screen(),
        end,
        "Up after a run of Down at the end did not move"
    );
    h.press(KeyCode::Home);
    assert_eq!(h.screen(), top);
}

#[tokio::test(start_paused = true)]
async fn model_output_control_sequences_are_shown_escaped() {
    let mut h = Harness::new(80, 24);
    let (tag, _, _) = h.send("hi");
    h.chat(
        tag,
        100,
        ChatEvent::Delta("ok \x1b[2J\x1b]52;c;aGk=\x07 done".into()),
    )
    .await;
    let s = h.screen();
    assert!(s.contains("\\x1b[2J"), "{s}");
    assert!(!s.contains('\x1b'));
}

#[tokio::test(start_paused = true)]
async fn streaming_text_is_flushed_at_least_twice_a_second() {
    let mut h = Harness::new(80, 24);
    let (tag, _, _) = h.send("count");
    let mut chunks = 0;
    for i in 0..10 {
        let fx = h.chat(tag, 100, ChatEvent::Delta(format!("{i} "))).await;
        chunks += fx
            .iter()
            .filter(|e| matches!(e, Effect::Persist(Record::Chunk { .. })))
            .count();
    }
    assert!(chunks >= 2, "{chunks} flushes in a second");
    // A stall still gets its text out on the next tick.
    h.chat(tag, 50, ChatEvent::Delta("late".into())).await;
    let fx = h.tick(250).await;
    assert!(
        fx.iter().any(
            |e| matches!(e, Effect::Persist(Record::Chunk { text, .. }) if text.ends_with("late"))
        ),
        "{fx:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn up_recalls_sent_messages_and_quit_saves_the_draft() {
    let mut h = Harness::new(80, 24);
    let (tag, _, _) = h.send("first question");
    h.press(KeyCode::Esc);
    let _ = tag;
    h.press(KeyCode::Up);
    assert_eq!(h.app.draft(), "first question");
    h.press(KeyCode::Down);
    assert_eq!(h.app.draft(), "");
    h.type_text("unsent");
    h.key(KeyCode::Enter, KeyModifiers::ALT);
    h.type_text("draft");
    let fx = h.ctrl('q');
    assert!(
        fx.contains(&Effect::Persist(Record::Draft {
            text: "unsent\ndraft".into()
        })),
        "{fx:?}"
    );
    assert_eq!(fx.last(), Some(&Effect::Quit));
}

#[tokio::test(start_paused = true)]
async fn tab_moves_focus_and_side_panes_fold_and_toggle() {
    let mut h = Harness::new(80, 24);
    assert_eq!(h.app.focusable(), [Focus::Composer, Focus::Conversation]);
    h.press(KeyCode::Tab);
    assert_eq!(h.app.focus, Focus::Conversation);
    h.press(KeyCode::F(3));
    assert!(h.screen().contains("Metrics"));
    h.key(KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(h.app.focus, Focus::Composer);
    // At 160x48 the models column would squeeze the conversation: it folds (F2 brings it).
    let mut w = Harness::new(160, 48);
    assert_eq!(w.app.focusable().len(), 4);
    assert!(!w.screen().contains("Models"));
    let mut w = Harness::new(200, 50);
    assert_eq!(w.app.focusable().len(), 5);
    let s = w.screen();
    assert!(
        s.contains("Models")
            && s.contains("Metrics")
            && s.contains("Routing log")
            && s.contains("Live"),
        "{s}"
    );
}

#[tokio::test(start_paused = true)]
async fn session_file_round_trips_and_survives_a_torn_line() {
    let dir = std::env::temp_dir().join(format!("llmux-tui-sessions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SessionStore::new(&dir);
    let mut h = Harness::new(80, 24);
    demo_conversation(&mut h).await;
    h.type_text("half-written thought");
    h.ctrl('q');
    let loaded = h.saved(&store, &h.app.session);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.entries, h.app.entries);
    assert_eq!(loaded.draft, "half-written thought");
    assert_eq!(
        store.list().unwrap()[0].preview,
        "How does Rust manage memory?"
    );

    // A crash mid-write leaves half a line: it is skipped with a warning, the rest loads.
    let path = store.path_of(&h.app.session);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"type\":\"chunk\",\"id\":99,\"te");
    std::fs::write(&path, text).unwrap();
    let torn = store.load(&h.app.session).unwrap();
    assert_eq!(torn.entries, h.app.entries);
    assert_eq!(torn.warnings.len(), 1);
    assert!(torn.warnings[0].contains("torn"), "{:?}", torn.warnings);

    // Reopening shows the same conversation.
    let mut again = Harness::new(80, 24);
    again.app.load_session(torn);
    assert_eq!(again.app.draft(), "half-written thought");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(start_paused = true)]
async fn a_stream_cut_by_a_crash_loads_as_interrupted() {
    let mut h = Harness::new(80, 24);
    let (tag, _, _) = h.send("long answer please");
    h.chat(tag, 300, ChatEvent::Delta("part one ".into())).await;
    h.chat(tag, 300, ChatEvent::Delta("part two".into())).await;
    let mut text = String::new();
    for e in &h.effects {
        if let Effect::Persist(r) = e {
            text.push_str(&serde_json::to_string(r).unwrap());
            text.push('\n');
        }
    }
    let s = llmux::store::session::parse_records(text.as_bytes());
    let Some(Entry::Answer(a)) = s.entries.last() else {
        panic!("{s:?}")
    };
    assert_eq!(a.state, AnswerState::Interrupted);
    assert!(a.text.starts_with("part one"), "{a:?}");
}

/// The effect runner's job done by hand: the app's StartChat goes to a real router on the
/// demo config (mock deployments), and its events come back tagged.
#[tokio::test(start_paused = true)]
async fn a_real_router_on_the_demo_config_answers_through_the_app() {
    let router = crate::support::router_from(llmux::config::demo().unwrap(), Default::default());
    let mut h = Harness::new(160, 48);
    let mut sub = router.subscribe();
    for question in ["hello", "and a second question"] {
        let (tag, group, messages) = h.send(question);
        let request = (tag, group, ChatRequest::new(messages));
        h.run_request(&router, request, None).await;
        while let Ok(ev) = sub.try_recv() {
            h.act(Action::Route(ev));
        }
        h.act(Action::Status(StatusView::from_router(&router)));
    }
    let Some(Entry::Answer(a)) = h.app.entries.last() else {
        panic!()
    };
    assert_eq!(a.state, AnswerState::Done, "{a:?}");
    assert!(
        a.deployment
            .as_deref()
            .is_some_and(|d| d.starts_with("mock/")),
        "{a:?}"
    );
    assert!(
        a.cost.is_some_and(|c| !c.is_zero()),
        "the demo has prices: {a:?}"
    );
    let s = h.screen();
    assert!(s.contains("#2 done by mock/"), "{s}");
    assert!(s.contains("2 req") || s.contains("1 req"), "{s}");
}
