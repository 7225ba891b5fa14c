//! Edit, resend, branch: in the focused conversation ↑↓ select messages, `e` edits one of
//! yours, Enter sends it as a new branch (the old one kept), ←→ switch branches, `d` deletes
//! the last exchange. The branches are in the session file: saved, reopened after a restart,
//! switched again, and the history sent is always the branch shown.

use crossterm::event::KeyCode;
use llmux::router::ChatEvent;
use llmux::store::session::{Entry, Record, SessionStore};
use llmux::tui::action::Effect;
use llmux::tui::app::Focus;

use super::{Harness, outcome};

/// Sends `q` and finishes its answer `a`.
async fn exchange(h: &mut Harness, q: &str, a: &str) {
    let (tag, group, _) = h.send(q);
    let o = outcome(a, &group, "mock/fast-steady", 100, 300, 5, Some(1000));
    h.chat(tag, 300, ChatEvent::finished(Ok(o))).await;
}

fn texts(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            Entry::User(u) => format!("Q:{}", u.text),
            Entry::Answer(a) => format!("A:{}", a.text),
            Entry::ToolResult(t) => format!("T:{}", t.text),
        })
        .collect()
}

/// Focuses the conversation and selects the message `up` messages from the end.
fn select_from_end(h: &mut Harness, up: usize) {
    while h.app.focus != Focus::Conversation {
        h.press(KeyCode::Tab);
    }
    h.app.view.selected = None;
    for _ in 0..up {
        h.press(KeyCode::Up);
    }
}

#[tokio::test(start_paused = true)]
async fn an_edited_message_starts_a_branch_and_the_old_one_is_kept() {
    let mut h = Harness::new(140, 40);
    exchange(&mut h, "capital of France?", "Paris.").await;
    exchange(&mut h, "and of Spain?", "Madrid.").await;
    // ↑↑ selects my last question; e puts it in the composer.
    select_from_end(&mut h, 2);
    assert_eq!(h.app.view.selected, Some(2));
    h.type_text("e");
    assert_eq!(h.app.focus, Focus::Composer);
    assert_eq!(h.app.draft(), "and of Spain?");
    assert!(h.screen().contains("Edit → fast"));
    h.app.set_composer_text("and of Italy?");
    let fx = h.press(KeyCode::Enter);
    let forked = fx
        .iter()
        .position(|e| matches!(e, Effect::Persist(Record::Fork { .. })));
    let started = fx
        .iter()
        .position(|e| matches!(e, Effect::StartChat { .. }));
    assert!(forked < started && forked.is_some(), "{fx:?}");
    let Some(Effect::StartChat { tag, request, .. }) = started.map(|i| fx[i].clone()) else {
        unreachable!()
    };
    // The history is the new branch: the old question is not sent.
    let sent: Vec<&str> = request
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(sent, ["capital of France?", "Paris.", "and of Italy?"]);
    let o = outcome("Rome.", "fast", "mock/fast-steady", 100, 300, 5, Some(1000));
    h.chat(tag, 300, ChatEvent::finished(Ok(o))).await;
    assert_eq!(
        texts(&h.app.entries),
        [
            "Q:capital of France?",
            "A:Paris.",
            "Q:and of Italy?",
            "A:Rome."
        ]
    );
    let s = h.screen();
    assert!(s.contains("branch 2/2 ←→"), "{s}");

    // ←: back to the first branch; →: the new one again.
    select_from_end(&mut h, 2);
    let fx = h.press(KeyCode::Left);
    assert!(
        matches!(fx.as_slice(), [Effect::Persist(Record::Branch { .. })]),
        "{fx:?}"
    );
    assert_eq!(
        texts(&h.app.entries),
        [
            "Q:capital of France?",
            "A:Paris.",
            "Q:and of Spain?",
            "A:Madrid."
        ]
    );
    assert!(h.screen().contains("branch 1/2 ←→"));
    // A question now continues the branch shown.
    h.press(KeyCode::Esc);
    h.app.focus = Focus::Composer;
    let (_, _, history) = h.send("and Portugal?");
    let sent: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        sent,
        [
            "capital of France?",
            "Paris.",
            "and of Spain?",
            "Madrid.",
            "and Portugal?"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_branch_is_saved_and_reopened_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    let mut h = Harness::new(140, 40);
    exchange(&mut h, "q1", "a1").await;
    exchange(&mut h, "q2", "a2").await;
    select_from_end(&mut h, 2);
    h.type_text("e");
    h.app.set_composer_text("q2 edited");
    let (tag, _, _) = {
        let fx = h.press(KeyCode::Enter);
        fx.into_iter()
            .find_map(|e| match e {
                Effect::StartChat {
                    tag,
                    group,
                    request,
                } => Some((tag, group, request)),
                _ => None,
            })
            .unwrap()
    };
    let o = outcome(
        "a2 edited",
        "fast",
        "mock/fast-steady",
        100,
        300,
        5,
        Some(1000),
    );
    h.chat(tag, 300, ChatEvent::finished(Ok(o))).await;
    exchange(&mut h, "q3", "a3").await;

    // A restart: a fresh app opens the file.
    let loaded = h.saved(&store, "s");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.entries, h.app.entries);
    assert_eq!(loaded.branches, h.app.branches);
    let mut r = Harness::new(140, 40);
    r.app.load_session(loaded);
    assert_eq!(
        texts(&r.app.entries),
        ["Q:q1", "A:a1", "Q:q2 edited", "A:a2 edited", "Q:q3", "A:a3"]
    );
    assert!(r.screen().contains("branch 2/2 ←→"));
    // Switched back after the restart, the old branch is whole.
    select_from_end(&mut r, 4);
    assert_eq!(r.app.view.selected, Some(2));
    r.press(KeyCode::Right);
    assert_eq!(texts(&r.app.entries), ["Q:q1", "A:a1", "Q:q2", "A:a2"]);
    // And that switch is saved too: reopened again, the old branch shows, ids go on.
    let mut w = store.writer("s");
    for e in &r.effects {
        if let Effect::Persist(rec @ Record::Branch { .. }) = e {
            w.append(rec).unwrap();
        }
    }
    let again = store.load("s").unwrap();
    assert_eq!(texts(&again.entries), ["Q:q1", "A:a1", "Q:q2", "A:a2"]);
    let mut r2 = Harness::new(140, 40);
    r2.app.load_session(again);
    let (_, _, history) = r2.send("q4");
    assert_eq!(history.len(), 5);
    let ids: Vec<u64> = r2
        .app
        .entries
        .iter()
        .chain(r2.app.branches.entries())
        .map(Entry::id)
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "new entries get fresh ids: {ids:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn d_deletes_the_last_exchange_and_esc_drops_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(dir.path());
    let mut h = Harness::new(140, 40);
    exchange(&mut h, "q1", "a1").await;
    exchange(&mut h, "q2", "a2").await;
    select_from_end(&mut h, 1);
    let fx = h.press(KeyCode::Char('d'));
    assert!(
        matches!(fx.as_slice(), [Effect::Persist(Record::Drop { .. })]),
        "{fx:?}"
    );
    assert_eq!(texts(&h.app.entries), ["Q:q1", "A:a1"]);
    assert_eq!(texts(&h.saved(&store, "s").entries), ["Q:q1", "A:a1"]);

    // Editing, then Esc: the draft comes back and nothing is sent.
    h.app.focus = Focus::Composer;
    h.type_text("my draft");
    select_from_end(&mut h, 2);
    h.type_text("e");
    assert_eq!(h.app.draft(), "q1");
    h.press(KeyCode::Esc);
    assert_eq!(h.app.draft(), "my draft");
    assert!(h.app.editing.is_none());
    // An answer is not editable; y copies it.
    select_from_end(&mut h, 1);
    h.type_text("e");
    assert!(
        h.app
            .toast
            .as_ref()
            .unwrap()
            .text
            .contains("only your own messages")
    );
    let fx = h.press(KeyCode::Char('y'));
    assert_eq!(fx, vec![Effect::Copy("a1".into())]);
    // ↓ past the last message ends the selection.
    h.press(KeyCode::Down);
    assert_eq!(h.app.view.selected, None);
}

#[tokio::test(start_paused = true)]
async fn an_edit_reads_the_paths_typed_into_it_and_keeps_the_files_it_had() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.py");
    // A file's own `@words` are its content, not paths to read again when it is edited.
    std::fs::write(&first, "@dataclass\nclass Point: pass\n@other.thing\n").unwrap();
    let second = dir.path().join("second.txt");
    std::fs::write(&second, "the second file\n").unwrap();
    let mut h = Harness::new(140, 40);
    h.type_text(&format!("review @{}", first.display()));
    let fx = h.press(KeyCode::Enter);
    let fx = h.read_files(fx);
    let (tag, _, _) = super::started(&fx);
    let o = outcome("Looks fine.", "fast", "mock/fast-steady", 100, 300, 5, None);
    h.chat(tag, 300, ChatEvent::finished(Ok(o))).await;

    select_from_end(&mut h, 2);
    h.type_text("e");
    // The file shows folded in the composer, as in the conversation.
    assert_eq!(
        h.app.draft(),
        format!(
            "review @{}\n\n[file {} · 3 lines]",
            first.display(),
            first.display()
        )
    );
    // A path that names nothing: refused, and the edit stays to be fixed.
    let missing = format!(" and @{}/nope.txt", dir.path().display());
    let draft = format!("{}{missing}", h.app.draft());
    h.app.set_composer_text(&draft);
    let fx = h.press(KeyCode::Enter);
    let asked: Vec<Vec<String>> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::ReadAttachments { paths, .. } => Some(paths.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, [vec![format!("{}/nope.txt", dir.path().display())]]);
    let fx = h.read_files(fx);
    assert!(
        fx.iter().all(|e| !matches!(e, Effect::StartChat { .. })),
        "{fx:?}"
    );
    assert!(h.screen().contains("cannot read it"));
    assert_eq!(h.app.draft(), draft, "the edit stays");
    assert!(h.app.editing.is_some());

    let fixed = draft.replace(&missing, &format!(" and @{}", second.display()));
    h.app.set_composer_text(&fixed);
    let fx = h.press(KeyCode::Enter);
    let fx = h.read_files(fx);
    let forked = fx
        .iter()
        .position(|e| matches!(e, Effect::Persist(Record::Fork { .. })));
    let (_, _, request) = super::started(&fx);
    assert!(forked.is_some(), "sent as a branch: {fx:?}");
    let sent = &request.messages.last().unwrap().content;
    assert!(sent.contains("@dataclass\nclass Point: pass"), "{sent}");
    assert!(
        sent.contains(&format!(
            "<file name=\"{}\">\nthe second file\n</file>",
            second.display()
        )),
        "{sent}"
    );
    assert_eq!(sent.matches("<file name=").count(), 2, "{sent}");
    assert_eq!(
        h.app.draft(),
        "",
        "the composer has what it held before the edit"
    );
    let s = h.screen();
    assert!(s.contains("branch 2/2"), "{s}");
}

#[tokio::test(start_paused = true)]
async fn a_branch_after_a_long_answer_shows_its_answer_from_the_top() {
    // Beside the side panes a long stream is paged; the page must not outlive the entries it
    // was taken on (it once pointed into the new branch's answer, far below its text).
    let mut h = Harness::new(120, 40);
    let (tag, _, _) = h.send("tell me a long story");
    let long: String = (1..=80).map(|i| format!("story line {i}\n\n")).collect();
    h.chat(tag, 100, ChatEvent::Delta(long.clone())).await;
    assert!(h.screen().contains("story line 80"));
    let o = outcome(&long, "fast", "mock/fast-steady", 100, 300, 400, None);
    h.chat(tag, 100, ChatEvent::finished(Ok(o))).await;
    h.screen();

    select_from_end(&mut h, 2);
    h.type_text("e");
    h.app.set_composer_text("tell me a short one");
    let fx = h.press(KeyCode::Enter);
    let (tag, _, _) = super::started(&fx);
    h.chat(tag, 100, ChatEvent::Delta("A short story.".into()))
        .await;
    let s = h.screen();
    assert!(s.contains("tell me a short one"), "{s}");
    assert!(s.contains("A short story."), "{s}");
}

#[tokio::test(start_paused = true)]
async fn a_folded_paste_in_the_draft_survives_an_edit_sent_meanwhile() {
    let mut h = Harness::new(140, 40);
    exchange(&mut h, "capital of France?", "Paris.").await;
    let pasted: String = (1..=9).map(|i| format!("pasted line {i}\n")).collect();
    h.act(llmux::tui::action::Action::Paste(pasted.clone()));
    assert_eq!(h.app.draft(), "[pasted 9 lines]");
    select_from_end(&mut h, 2);
    h.type_text("e");
    h.app.set_composer_text("capital of Italy?");
    let fx = h.press(KeyCode::Enter);
    let (tag, _, _) = super::started(&fx);
    let o = outcome("Rome.", "fast", "mock/fast-steady", 100, 300, 5, None);
    h.chat(tag, 300, ChatEvent::finished(Ok(o))).await;
    // The draft is back as it was, and its paste still goes whole.
    assert_eq!(h.app.draft(), "[pasted 9 lines]");
    let fx = h.press(KeyCode::Enter);
    let (_, _, request) = super::started(&fx);
    assert_eq!(request.messages.last().unwrap().content, pasted);
}
