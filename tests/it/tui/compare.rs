//! Compare: one question to two or more groups at once, answers side by side while they
//! stream, each with its deployment, TTFT, tokens/s and cost; Enter keeps the chosen one in
//! the conversation, Esc leaves and keeps nothing.

use crossterm::event::{KeyCode, KeyModifiers};
use llmux::provider::{ChatRequest, Part};
use llmux::router::{ChatEvent, RouteEventKind};
use llmux::store::session::{AnswerState, Entry, Record};
use llmux::tui::action::{Action, Effect, RequestTag};
use llmux::tui::attach;
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
    assert!(
        s.contains("streaming…"),
        "a column still streaming says so: {s}"
    );
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
    // fast's 5 tokens came in the 49 ms after its first: a rate, the one an answer's line
    // and the metrics give for it (a burst under 5 ms would have none).
    assert!(s.contains("102 tok/s"), "{s}");
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

#[tokio::test(start_paused = true)]
async fn compare_sends_the_conversation_s_system_prompt() {
    let mut h = Harness::new(80, 24);
    h.type_text("/system answer in one word");
    h.press(KeyCode::Enter);
    h.type_text("capital of France?");
    h.ctrl('t');
    let fx = h.press(KeyCode::Enter);
    let systems: Vec<String> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::StartChat { request, .. } => Some(request.messages[0].content.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(systems, ["answer in one word", "answer in one word"]);
}

/// Opens compare on the composer's text and asks; the runner's part (reading the files) done
/// by hand. Returns the effects after the files were read.
fn ask_with_files(h: &mut Harness, question: &str) -> Vec<Effect> {
    h.app.set_composer_text(question);
    h.ctrl('t');
    let mut out = Vec::new();
    for e in h.press(KeyCode::Enter) {
        match e {
            Effect::ReadAttachments { text, paths } => {
                let read = attach::read_all(&paths);
                out.extend(h.act(Action::Attached { text, read }));
            }
            other => panic!("compare reads the files before it asks: {other:?}"),
        }
    }
    out
}

fn requests(fx: &[Effect]) -> Vec<(String, ChatRequest)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::StartChat { group, request, .. } => Some((group.clone(), request.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn compare_sends_a_file_s_content_to_every_group_and_keeps_it_with_the_question() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "sort: merge\nsearch: binary\n").unwrap();
    let typed = format!("which is stable? @{}", notes.display());
    let mut h = Harness::new(160, 48);
    let fx = ask_with_files(&mut h, &typed);
    let sent = requests(&fx);
    assert_eq!(sent.len(), 2, "{fx:?}");
    for (group, r) in &sent {
        let last = &r.messages.last().unwrap().content;
        assert!(
            last.starts_with(&typed)
                && last.contains(&format!(
                    "<file name=\"{}\">\nsort: merge\nsearch: binary\n</file>",
                    notes.display()
                )),
            "{group}: {last}"
        );
    }
    assert_eq!(h.app.draft(), "", "the question left the composer");
    // Esc gives the question back as typed.
    h.press(KeyCode::Esc);
    assert_eq!(h.app.draft(), typed);
    // Asked again and kept: the conversation holds the file (folded on screen), Up recalls
    // the question as typed.
    let fx = ask_with_files(&mut h, &typed);
    let cols: Vec<RequestTag> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::StartChat { tag, .. } => Some(*tag),
            _ => None,
        })
        .collect();
    answer(&mut h, cols[0], 1, "fast", "mock/fast-steady", "merge sort").await;
    h.press(KeyCode::Enter);
    match &h.app.entries[..] {
        [Entry::User(u), Entry::Answer(_)] => {
            assert!(u.text.contains("search: binary"), "{}", u.text)
        }
        other => panic!("{other:?}"),
    }
    let s = h.screen();
    assert!(
        s.contains(&format!("[file {} · 2 lines]", notes.display())),
        "{s}"
    );
    h.press(KeyCode::Up);
    assert_eq!(h.app.draft(), typed);
}

#[tokio::test(start_paused = true)]
async fn a_file_compare_cannot_read_is_refused_and_the_draft_stays() {
    let mut h = Harness::new(80, 24);
    let typed = "what is in @missing/notes.txt";
    let fx = ask_with_files(&mut h, typed);
    assert!(requests(&fx).is_empty(), "{fx:?}");
    assert!(!h.app.b.compare.shown());
    assert!(h.screen().contains("cannot read it"), "{}", h.screen());
    assert_eq!(h.app.draft(), typed);
}

/// A config of a group that takes images (openai) and one that does not (mock).
fn vision_and_text(w: u16, h: u16) -> Harness {
    Harness::with_yaml(
        w,
        h,
        r#"
model_list:
  - model_name: vision
    litellm_params: { model: openai/gpt-4o, api_base: "http://127.0.0.1:9", api_key: k }
  - model_name: text
    litellm_params: { model: mock/text }
"#,
    )
}

#[tokio::test(start_paused = true)]
async fn an_image_goes_to_the_groups_that_take_images_and_the_others_say_why_not() {
    // A path relative to the crate (tests run there), the same on every machine: it shows.
    let png = "tests/fixtures/images/pixel.png";
    for (w, hh) in [(80, 24), (160, 48)] {
        let mut h = vision_and_text(w, hh);
        let fx = ask_with_files(&mut h, &format!("what colour is @{png}"));
        let sent = requests(&fx);
        assert_eq!(sent.len(), 1, "only vision is asked: {fx:?}");
        let (group, request) = &sent[0];
        assert_eq!(group, "vision");
        let m = request.messages.last().unwrap();
        assert!(
            matches!(&m.parts[..], [Part::Text { .. }, Part::Image { .. }]),
            "{m:?}"
        );
        let run = h.app.b.compare.run.as_ref().unwrap();
        assert_eq!(run.columns[1].answer.state, AnswerState::Failed);
        let tag = run.columns[0].tag;
        let s = h.screen();
        assert!(s.contains("not asked: text takes no images"), "{s}");
        answer(&mut h, tag, 1, "vision", "openai/gpt-4o", "A cat on a mat.").await;
        insta::assert_snapshot!(format!("compare_image_refused_{w}x{hh}"), h.screen());
        // The refused one cannot be kept; the other is, with the image.
        h.press(KeyCode::Char('2'));
        assert!(h.press(KeyCode::Enter).is_empty());
        h.press(KeyCode::Char('1'));
        let fx = h.press(KeyCode::Enter);
        let saved = fx.iter().find_map(|e| match e {
            Effect::Persist(Record::User { images, .. }) => Some(images.clone()),
            _ => None,
        });
        assert_eq!(saved.map(|i| i.len()), Some(1), "{fx:?}");
        match &h.app.entries[..] {
            [Entry::User(u), Entry::Answer(_)] => assert_eq!(u.images.len(), 1),
            other => panic!("{other:?}"),
        }
    }
}
