//! The conversations list (Ctrl+O) with dates, models and cost; renaming and deleting from
//! it; a search match opened scrolls to the match and highlights it; and the search in the
//! conversation itself (`/`, n, N).

use crossterm::event::KeyCode;
use llmux::store::session::{Record, SessionInfo, SessionStore};
use llmux::store::session_search::SessionMatch;
use llmux::store::session_summary::SessionSummary;
use llmux::tui::action::{Action, Effect};
use llmux::tui::app::Focus;

use super::{Harness, fixed_clock};

fn info(name: &str) -> SessionInfo {
    SessionInfo {
        name: name.into(),
        modified: Some(fixed_clock()),
        bytes: 2048,
        preview: format!("the start of {name}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_list_shows_dates_models_and_cost() {
    let mut h = Harness::new(120, 30);
    h.ctrl('o');
    h.act(Action::SessionsListed(Ok(vec![info("rust"), info("trip")])));
    let s = h.screen();
    let row = s.lines().find(|l| l.contains("rust ")).unwrap();
    assert!(row.contains("2023-11-14 22:13"), "{s}");
    h.act(Action::SessionsSummarized(vec![(
        "rust".into(),
        SessionSummary {
            models: vec!["fast".into(), "smart".into()],
            messages: 3,
            spent: llmux::money::Usd::from_pico(1_200_000_000),
            unpriced: false,
        },
    )]));
    let s = h.screen();
    let row = s.lines().find(|l| l.contains("rust ")).unwrap();
    assert!(
        row.contains("fast,smart") && row.contains("$0.0012") && row.contains("the start of rust"),
        "{row}"
    );
}

#[test]
fn the_store_sums_models_and_cost_of_every_branch() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    let mut w = store.writer("s");
    let user = |id, group: &str| Record::User {
        id,
        text: "q".into(),
        group: group.into(),
        at_unix_ms: 0,
        images: Vec::new(),
    };
    let answer = |id, cost: Option<u64>| {
        Record::Answer(llmux::store::session::Answer {
            id,
            text: "a".into(),
            cost: cost.map(llmux::money::Usd::from_pico),
            state: llmux::store::session::AnswerState::Done,
            ..Default::default()
        })
    };
    for r in [
        user(1, "fast"),
        answer(2, Some(100)),
        Record::Fork { replaces: 1 },
        user(3, "smart"),
        answer(4, Some(50)),
        user(5, "fast"),
        answer(6, None),
    ] {
        w.append(&r).unwrap();
    }
    let s = store.summary("s").unwrap();
    assert_eq!(s.models, ["smart", "fast"]);
    assert_eq!((s.messages, s.spent.pico(), s.unpriced), (2, 150, true));
}

#[tokio::test(start_paused = true)]
async fn f2_renames_and_del_deletes_from_the_list() {
    let mut h = Harness::new(120, 30);
    h.ctrl('o');
    h.act(Action::SessionsListed(Ok(vec![info("rust"), info("trip")])));
    h.press(KeyCode::Down);
    h.press(KeyCode::F(2));
    assert!(h.screen().contains("rename trip to: trip"));
    for _ in 0..4 {
        h.press(KeyCode::Backspace);
    }
    h.type_text("lisbon");
    let fx = h.press(KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::RenameSession {
            from: "trip".into(),
            to: "lisbon".into()
        }]
    );
    // The list is read again once the file moved.
    let fx = h.act(Action::SessionRenamed {
        from: "trip".into(),
        result: Ok("lisbon".into()),
    });
    assert_eq!(fx, vec![Effect::ListSessions]);
    // Del asks first; any other key keeps it.
    h.press(KeyCode::Up);
    h.press(KeyCode::Delete);
    assert!(h.screen().contains("delete rust? Enter or y deletes"));
    assert!(h.press(KeyCode::Char('n')).is_empty());
    h.press(KeyCode::Delete);
    assert_eq!(
        h.press(KeyCode::Enter),
        vec![Effect::DeleteSession("rust".into())]
    );
    // Deleting the conversation open starts a new one.
    let current = h.app.session.clone();
    h.act(Action::SessionsListed(Ok(vec![info(&current)])));
    h.press(KeyCode::Delete);
    let fx = h.press(KeyCode::Char('y'));
    assert!(
        fx.contains(&Effect::DeleteSession(current.clone())),
        "{fx:?}"
    );
    // (the clock is fixed here, so the new one has the same name)
    let del = fx
        .iter()
        .position(|e| matches!(e, Effect::DeleteSession(_)));
    let switch = fx
        .iter()
        .position(|e| matches!(e, Effect::SwitchSession(_)));
    assert!(del < switch && del.is_some(), "{fx:?}");
    assert!(h.app.entries.is_empty());
}

/// A long conversation where "borrow" shows once, far from the end.
fn long_session() -> llmux::store::session::LoadedSession {
    let mut records = Vec::new();
    for i in 0..30u64 {
        let text = if i == 3 {
            "what does the borrow checker do?".to_string()
        } else {
            format!("question number {i}")
        };
        records.push(Record::User {
            id: i * 2 + 1,
            text,
            group: "fast".into(),
            at_unix_ms: 0,
            images: Vec::new(),
        });
        records.push(Record::Chunk {
            id: i * 2 + 2,
            text: format!("answer {i}"),
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    let mut w = store.writer("long");
    for r in &records {
        w.append(r).unwrap();
    }
    store.load("long").unwrap()
}

#[tokio::test(start_paused = true)]
async fn opening_a_search_match_scrolls_to_it_and_highlights_it() {
    let mut h = Harness::new(120, 30);
    h.ctrl('o');
    h.act(Action::SessionsListed(Ok(vec![info("long")])));
    h.type_text("borrow");
    h.act(Action::SessionsFound {
        query: "borrow".into(),
        found: Ok(vec![SessionMatch {
            session: info("long"),
            snippet: "what does the borrow checker do?".into(),
            at: 14..20,
            hits: 1,
        }]),
    });
    assert_eq!(
        h.press(KeyCode::Enter),
        vec![Effect::LoadSession("long".into())]
    );
    h.act(Action::SessionLoaded(Ok(long_session())));
    assert_eq!(h.app.focus, Focus::Conversation);
    let s = h.screen();
    assert!(
        s.contains("what does the borrow checker do?"),
        "scrolled to it:\n{s}"
    );
    assert!(s.contains("search: borrow · 1/1"), "{s}");
    // Highlighted: the match's cells are styled apart from the rest of the line.
    let buf = h.term.backend().buffer().clone();
    let (x, y) = (crate::support::cells(&buf).iter().enumerate())
        .find_map(|(y, row)| {
            let row = row.concat();
            row.find("borrow checker")
                .map(|i| (row[..i].chars().count() as u16, y as u16))
        })
        .unwrap();
    assert_ne!(
        buf[(x, y)].style(),
        buf[(x + 7, y)].style(),
        "the match stands out"
    );
    // Esc ends the search.
    h.press(KeyCode::Esc);
    assert!(h.app.find.is_none());
}

#[tokio::test(start_paused = true)]
async fn slash_in_the_conversation_searches_and_n_moves_between_matches() {
    let mut h = Harness::new(120, 30);
    h.app.load_session(long_session());
    while h.app.focus != Focus::Conversation {
        h.press(KeyCode::Tab);
    }
    h.type_text("/number 2");
    // As you type, the match nearest the end: "question number 29".
    let last = h.app.find.as_ref().unwrap().current.unwrap();
    assert_eq!(last.0, 58);
    assert!(h.screen().contains("/number 2▏"));
    h.press(KeyCode::Enter);
    let s = h.screen();
    assert!(s.contains("search: number 2 · 11/11"), "{s}");
    // N: older; n: newer, wrapping.
    h.type_text("N");
    assert_eq!(h.app.find.as_ref().unwrap().current.unwrap().0, 56);
    h.type_text("n");
    h.type_text("n");
    assert_eq!(h.app.find.as_ref().unwrap().current.unwrap().0, 4);
    let s = h.screen();
    assert!(
        s.contains("question number 2\n") || s.contains("question number 2 "),
        "{s}"
    );
    // No match says so.
    h.press(KeyCode::Esc);
    h.type_text("/zebra");
    assert!(h.app.toast.as_ref().unwrap().text.contains("no match"));
    h.press(KeyCode::Esc);
    assert!(h.app.find.is_none());
}
