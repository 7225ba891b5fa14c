//! Searching the saved conversations (Ctrl+O, then type): the store finds the sessions whose
//! messages or answers hold the text, and the overlay asks for a search per keystroke, keeps
//! only the answer to the latest query, shows the match in context, and opens what is picked.

use crossterm::event::KeyCode;
use llmux::store::session::{Record, SessionInfo, SessionStore};
use llmux::store::session_search::SessionMatch;
use llmux::tui::action::{Action, Effect};

use super::Harness;

fn write(store: &SessionStore, name: &str, records: &[Record]) {
    let mut w = store.writer(name);
    for r in records {
        w.append(r).unwrap();
    }
}

fn user(id: u64, text: &str) -> Record {
    Record::User {
        id,
        text: text.into(),
        group: "fast".into(),
        at_unix_ms: 0,
        images: Vec::new(),
    }
}

fn chunk(id: u64, text: &str) -> Record {
    Record::Chunk {
        id,
        text: text.into(),
    }
}

#[test]
fn the_store_finds_text_in_messages_and_answers_ignoring_case() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    write(
        &store,
        "rust",
        &[
            user(1, "How does Rust manage memory?"),
            chunk(2, "Ownership: each value has one owner."),
        ],
    );
    write(
        &store,
        "trip",
        &[
            user(1, "Plan three days in Lisbon"),
            chunk(2, "Day one: Alfama. Ownership of a tram pass helps."),
            user(3, "and OWNERSHIP of a car?"),
        ],
    );
    // A torn file does not hide the others.
    std::fs::write(dir.path().join("broken.jsonl"), "{not json\n").unwrap();

    let found = store.search("ownership").unwrap();
    let mut hits: Vec<(&str, usize)> = found
        .iter()
        .map(|m| (m.session.name.as_str(), m.hits))
        .collect();
    hits.sort();
    assert_eq!(hits, [("rust", 1), ("trip", 2)]);
    let rust = found.iter().find(|m| m.session.name == "rust").unwrap();
    assert_eq!(&rust.snippet[rust.at.clone()], "Ownership");
    assert_eq!(rust.session.preview, "How does Rust manage memory?");
    assert!(
        rust.snippet.contains("each value has one owner"),
        "{}",
        rust.snippet
    );

    assert_eq!(store.search("lisbon").unwrap().len(), 1);
    assert!(store.search("nowhere").unwrap().is_empty());
    assert!(
        store.search("   ").unwrap().is_empty(),
        "blank finds nothing"
    );
}

fn info(name: &str) -> SessionInfo {
    SessionInfo {
        name: name.into(),
        modified: None,
        bytes: 2048,
        preview: format!("the start of {name}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_overlay_searches_as_you_type_and_opens_the_match() {
    let mut h = Harness::new(100, 20);
    h.ctrl('o');
    h.act(Action::SessionsListed(Ok(vec![info("rust"), info("trip")])));
    assert!(h.screen().contains("type to search"));

    let fx = h.press(KeyCode::Char('o'));
    assert_eq!(fx, [Effect::SearchSessions("o".into())]);
    let fx = h.press(KeyCode::Char('w'));
    assert_eq!(fx, [Effect::SearchSessions("ow".into())]);
    // The answer to an older query is dropped; the latest one is shown.
    h.act(Action::SessionsFound {
        query: "o".into(),
        found: Ok(vec![]),
    });
    assert!(h.screen().contains("searching…"));
    let snippet = "…tram pass and the ownership of a car";
    let start = snippet.find("ownership").unwrap();
    h.act(Action::SessionsFound {
        query: "ow".into(),
        found: Ok(vec![SessionMatch {
            session: info("trip"),
            snippet: snippet.into(),
            at: start..start + "ownership".len(),
            hits: 2,
        }]),
    });
    let screen = h.screen();
    assert!(screen.contains("search: ow"), "{screen}");
    assert!(screen.contains("trip") && screen.contains("2×"), "{screen}");
    assert!(screen.contains("the ownership of a car"), "{screen}");
    assert!(!screen.contains("rust"), "only the matches: {screen}");
    insta::assert_snapshot!("sessions_search_100x20", screen);

    assert_eq!(
        h.press(KeyCode::Enter),
        [Effect::LoadSession("trip".into())]
    );
    // A changed query hides the old matches until its own arrive: Enter opens nothing.
    assert_eq!(
        h.press(KeyCode::Char('n')),
        [Effect::SearchSessions("own".into())]
    );
    assert!(h.screen().contains("searching…"));
    assert!(h.press(KeyCode::Enter).is_empty());
    // Backspace widens the query again; Esc leaves the search, then the overlay.
    assert_eq!(
        h.press(KeyCode::Backspace),
        [Effect::SearchSessions("ow".into())]
    );
    h.press(KeyCode::Esc);
    let screen = h.screen();
    assert!(
        screen.contains("rust") && screen.contains("type to search"),
        "{screen}"
    );
    h.press(KeyCode::Esc);
    assert!(!h.screen().contains("Conversations"));
}

#[tokio::test(start_paused = true)]
async fn the_overlay_draws_on_a_terminal_a_few_rows_tall() {
    for rows in 1..=8 {
        let mut h = Harness::new(60, rows);
        h.ctrl('o');
        h.act(Action::SessionsListed(Ok(vec![info("rust")])));
        h.press(KeyCode::Char('r'));
        // No panic at any height; from a few rows up the search line shows.
        let screen = h.screen();
        if rows >= 8 {
            assert!(screen.contains("search: r"), "{rows} rows:\n{screen}");
        }
    }
}
