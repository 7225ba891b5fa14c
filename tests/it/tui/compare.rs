//! Compare: one question to two or more groups at once, answers side by side while they
//! stream, each with its deployment, TTFT, tokens/s and cost; Enter keeps the chosen one in
//! the conversation, Esc leaves and keeps nothing.

use crossterm::event::{KeyCode, KeyModifiers};
use llmux::router::{ChatEvent, RouteEventKind};
use llmux::store::session::{AnswerState, Entry, Record};
use llmux::tui::action::{Effect, RequestTag};
use llmux::tui::theme::{ColorDepth, Theme};

use super::{Harness, outcome, route};

/// Types `question`, opens compare and asks; returns each column's tag and group.
fn start(h: &mut Harness, question: &str) -> Vec<(RequestTag, String)> {
    h.type_text(question);
    assert!(h.ctrl('t').is_empty());
    let s = h.screen();
    assert!(s.contains("Compare on"), "{s}");
    assert!(
        s.contains("[1] 1. fast") && s.contains("[2] 2. smart"),
        "{s}"
    );
    let fx = h.press(KeyCode::Enter);
    let started: Vec<(RequestTag, String)> = fx
        .into_iter()
        .filter_map(|e| match e {
            Effect::StartChat {
                tag,
                group,
                request,
            } => {
                let last = request.messages.last().map(|m| m.content.clone());
                assert_eq!(last.as_deref(), Some(question));
                Some((tag, group))
            }
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 2, "{started:?}");
    assert_ne!(
        started[0].0, started[1].0,
        "each column has a tag of its own"
    );
    started
}

/// Streams an answer into one column and finishes it.
async fn answer(h: &mut Harness, tag: RequestTag, id: u64, group: &str, dep: &str, text: &str) {
    let attempt = route(id, group, Some(dep), 1, 0, RouteEventKind::Attempt);
    h.chat(tag, 1, ChatEvent::route(attempt)).await;
    for word in text.split_inclusive(' ') {
        h.chat(tag, 40, ChatEvent::Delta(word.into())).await;
    }
    let mut o = outcome(text, group, dep, 240, 1200, 48, Some(42_000_000));
    o.request_id = id;
    h.chat(tag, 5, ChatEvent::Finished(Box::new(Ok(o)))).await;
}

#[tokio::test(start_paused = true)]
async fn compare_asks_two_groups_and_enter_keeps_the_chosen_answer() {
    let mut h = Harness::new(160, 48);
    let cols = start(&mut h, "Which sort is stable?");
    assert_eq!(cols[0].1, "fast");
    assert_eq!(cols[1].1, "smart");
    assert_eq!(h.app.draft(), "", "the question left the composer");
    // Streaming, side by side.
    let attempt = route(
        1,
        "fast",
        Some("mock/fast-steady"),
        1,
        0,
        RouteEventKind::Attempt,
    );
    h.chat(cols[0].0, 1, ChatEvent::route(attempt)).await;
    h.chat(cols[0].0, 250, ChatEvent::Delta("Merge sort ".into()))
        .await;
    let s = h.screen();
    assert!(
        s.contains("mock/fast-steady") && s.contains("Merge sort"),
        "{s}"
    );
    assert!(s.contains("ttft 251 ms") && s.contains("waiting"), "{s}");
    assert!(h.app.animating(), "a streaming compare ticks");
    h.chat(cols[0].0, 1, ChatEvent::Delta("is stable.".into()))
        .await;
    let mut o = outcome(
        "Merge sort is stable.",
        "fast",
        "mock/fast-steady",
        251,
        300,
        5,
        Some(42_000_000),
    );
    o.request_id = 1;
    h.chat(cols[0].0, 1, ChatEvent::Finished(Box::new(Ok(o))))
        .await;
    answer(
        &mut h,
        cols[1].0,
        2,
        "smart",
        "mock/smart-slow",
        "Merge sort and insertion sort are stable; quicksort is not.",
    )
    .await;
    assert!(!h.app.b.compare.streaming(), "nothing streams: no ticks");
    let s = h.screen();
    assert!(s.contains("1 fast") && s.contains("2 smart"), "{s}");
    assert!(s.contains("tok/s") && s.contains("$0.000042"), "{s}");
    assert!(s.contains("quicksort is not"), "{s}");
    assert!(h.app.entries.is_empty(), "nothing kept before Enter");
    // Right, Enter: the second is kept, with the question.
    h.press(KeyCode::Right);
    let fx = h.press(KeyCode::Enter);
    assert!(!h.app.b.compare.shown());
    match &h.app.entries[..] {
        [Entry::User(u), Entry::Answer(a)] => {
            assert_eq!(u.text, "Which sort is stable?");
            assert_eq!(u.group, "smart");
            assert_eq!(a.deployment.as_deref(), Some("mock/smart-slow"));
            assert_eq!(a.state, AnswerState::Done);
            assert!(a.text.contains("quicksort"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Persist(Record::User { .. })))
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Persist(Record::Answer(a)) if a.group == "smart"))
    );
    assert_eq!(h.app.current_group(), "smart", "the kept group asks next");
    assert_eq!(
        h.app.session_spent,
        llmux::money::Usd::from_pico(2 * 42_000_000),
        "both answers were paid for"
    );
    // The next message goes on with the kept answer in its history.
    let (_, group, messages) = h.send("And heapsort?");
    assert_eq!(group, "smart");
    assert_eq!(messages.len(), 3, "{messages:?}");
}

#[tokio::test(start_paused = true)]
async fn esc_leaves_compare_cancels_the_streams_and_gives_the_draft_back() {
    let mut h = Harness::new(80, 24);
    let cols = start(&mut h, "hello");
    answer(&mut h, cols[0].0, 1, "fast", "mock/fast-steady", "hi there").await;
    // The second still streams: Enter on it is refused.
    h.press(KeyCode::Char('2'));
    assert!(h.press(KeyCode::Enter).is_empty());
    assert!(h.app.b.compare.shown());
    let fx = h.press(KeyCode::Esc);
    assert_eq!(
        fx,
        vec![Effect::Cancel(cols[1].0)],
        "only the one streaming"
    );
    assert!(!h.app.b.compare.shown());
    assert!(h.app.entries.is_empty());
    assert_eq!(h.app.draft(), "hello");
    // A late event of a dropped column changes nothing.
    h.chat(cols[1].0, 5, ChatEvent::Delta("late".into())).await;
    assert!(h.app.entries.is_empty());
}

#[tokio::test(start_paused = true)]
async fn with_an_empty_composer_compare_asks_the_last_question_again() {
    let mut h = Harness::new(160, 48);
    let (tag, _, _) = h.send("Name a prime.");
    let o = outcome("7", "fast", "mock/fast-steady", 100, 200, 1, Some(1));
    h.chat(tag, 200, ChatEvent::Finished(Box::new(Ok(o)))).await;
    h.ctrl('t');
    assert!(h.screen().contains("the last question again"));
    // Marks: 1 unmarks fast, 3 marks local: smart and local are asked.
    h.press(KeyCode::Char('1'));
    h.press(KeyCode::Char('3'));
    let groups: Vec<String> = h
        .ctrl('t')
        .into_iter()
        .filter_map(|e| match e {
            Effect::StartChat { group, request, .. } => {
                assert_eq!(request.messages.len(), 1, "history up to the question");
                Some(group)
            }
            _ => None,
        })
        .collect();
    assert_eq!(groups, ["smart", "local"]);
    let tags: Vec<RequestTag> = h
        .app
        .b
        .compare
        .run
        .as_ref()
        .unwrap()
        .columns
        .iter()
        .map(|c| c.tag)
        .collect();
    answer(&mut h, tags[0], 2, "smart", "mock/smart-slow", "11").await;
    answer(&mut h, tags[1], 3, "local", "mock/local-small", "13").await;
    h.press(KeyCode::Enter);
    let kinds: Vec<&str> = h
        .app
        .entries
        .iter()
        .map(|e| match e {
            Entry::User(_) => "user",
            Entry::Answer(_) => "answer",
            Entry::ToolResult(_) => "tool",
        })
        .collect();
    assert_eq!(
        kinds,
        ["user", "answer", "answer"],
        "only the answer is added"
    );
}

#[tokio::test(start_paused = true)]
async fn compare_is_refused_without_a_question_and_its_key_is_configurable() {
    let mut h = Harness::new(80, 24);
    h.ctrl('t');
    assert!(!h.app.b.compare.shown());
    assert!(h.screen().contains("type a question first"));
    let mut cfg = llmux::config::demo().unwrap();
    cfg.app.keys.insert("compare".into(), "f9".into());
    let theme = Theme::builtin_default(ColorDepth::TrueColor);
    let mut h = Harness::with_config(80, 24, &cfg, theme);
    h.type_text("q");
    h.ctrl('t');
    assert!(!h.app.b.compare.shown(), "Ctrl+T no longer compares");
    h.key(KeyCode::F(9), KeyModifiers::NONE);
    assert!(h.app.b.compare.shown());
}

#[tokio::test(start_paused = true)]
async fn snapshot_compare() {
    for (w, hh) in [(80, 24), (160, 48)] {
        let mut h = Harness::new(w, hh);
        let cols = start(&mut h, "Explain lifetimes briefly.");
        answer(
            &mut h,
            cols[0].0,
            1,
            "fast",
            "mock/fast-steady",
            "A lifetime names how long a **reference** is valid; the compiler checks that no \
             reference outlives the value it points to.",
        )
        .await;
        let attempt = route(
            2,
            "smart",
            Some("mock/smart-slow"),
            1,
            0,
            RouteEventKind::Attempt,
        );
        h.chat(cols[1].0, 1, ChatEvent::route(attempt)).await;
        h.chat(cols[1].0, 1800, ChatEvent::Delta("Lifetimes are ".into()))
            .await;
        h.chat(cols[1].0, 500, ChatEvent::Delta("regions of code ".into()))
            .await;
        insta::assert_snapshot!(format!("compare_{w}x{hh}"), h.screen());
    }
}
