//! Files, images and large pastes in the composer: `@path` attaches a text file (folded in the
//! conversation, whole in the request), refuses binaries and images where no deployment takes
//! them, sends images as image parts where one does; Tab completes paths; a long paste folds to
//! `[pasted N lines]` and goes out whole.

use crossterm::event::KeyCode;
use llmux::provider::{ImageSource, Part};
use llmux::store::session::Entry;
use llmux::tui::action::{Action, Effect};
use llmux::tui::attach;

use super::Harness;

/// Presses Enter and runs the runner's part (reading the files); returns the effects after.
fn send_with_files(h: &mut Harness, text: &str) -> Vec<Effect> {
    h.type_text(text);
    let fx = h.press(KeyCode::Enter);
    h.read_files(fx)
}

fn started(fx: &[Effect]) -> Option<&llmux::provider::ChatRequest> {
    fx.iter().find_map(|e| match e {
        Effect::StartChat { request, .. } => Some(request),
        _ => None,
    })
}

#[tokio::test(start_paused = true)]
async fn a_text_file_goes_whole_in_the_request_and_folded_on_screen() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "first line\nsecond line\nthird line\n").unwrap();
    let mut h = Harness::new(160, 48);
    let fx = send_with_files(&mut h, &format!("summarize @{}.", file.display()));
    let request = started(&fx).expect("sent");
    let content = &request.messages.last().unwrap().content;
    assert!(
        content.contains(&format!(
            "<file name=\"{}\">\nfirst line\nsecond line\nthird line\n</file>",
            file.display()
        )),
        "{content}"
    );
    let s = h.screen();
    assert!(
        s.contains(&format!("[file {} · 3 lines]", file.display())),
        "{s}"
    );
    assert!(!s.contains("second line"), "folded: {s}");
    // Up recalls the message as typed.
    h.press(KeyCode::Esc);
    h.press(KeyCode::Up);
    assert_eq!(h.app.draft(), format!("summarize @{}.", file.display()));
}

#[tokio::test(start_paused = true)]
async fn binaries_missing_files_and_images_without_a_taker_are_refused_and_the_draft_stays() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("blob.bin");
    std::fs::write(&bin, b"ELF\0\0\x01\x02binary").unwrap();
    let png = dir.path().join("cat.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    let mut h = Harness::new(80, 24);
    for (what, expect) in [
        (format!("what is @{}", bin.display()), "is a binary file"),
        (
            format!("what is @{}/nope.txt", dir.path().display()),
            "cannot read it",
        ),
        (
            format!("what is @{}", dir.path().display()),
            "is a directory",
        ),
        (
            format!("describe @{}", png.display()),
            "fast takes no images",
        ),
    ] {
        let fx = send_with_files(&mut h, &what);
        assert!(started(&fx).is_none(), "{what}: {fx:?}");
        let s = h.screen();
        assert!(s.contains(expect), "{what}: {s}");
        assert_eq!(h.app.draft(), what, "the draft stays");
        assert!(h.app.entries.is_empty());
        h.app.set_composer_text("");
    }
    // A word after @ that names nothing and is no path is plain text.
    let fx = send_with_files(&mut h, "thanks @alice");
    assert_eq!(
        started(&fx).unwrap().messages.last().unwrap().content,
        "thanks @alice"
    );
}

#[tokio::test(start_paused = true)]
async fn an_image_goes_as_an_image_part_to_a_group_that_takes_images() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("cat.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    let mut h = Harness::with_yaml(
        80,
        24,
        r#"
model_list:
  - model_name: text
    litellm_params: { model: mock/text }
  - model_name: vision
    litellm_params: { model: openai/gpt-4o, api_base: "http://127.0.0.1:9", api_key: k }
"#,
    );
    let fx = send_with_files(&mut h, &format!("what is on @{}", png.display()));
    assert!(started(&fx).is_none());
    assert!(
        h.screen().contains("send it to vision instead"),
        "{}",
        h.screen()
    );
    h.ctrl('n');
    let fx = h.press(KeyCode::Enter);
    let fx = h.read_files(fx);
    let m = started(&fx)
        .expect("sent to vision")
        .messages
        .last()
        .unwrap()
        .clone();
    assert!(m.content.contains("[image "), "{}", m.content);
    match &m.parts[..] {
        [
            Part::Text { .. },
            Part::Image {
                source: ImageSource::Base64 { media_type, data },
                ..
            },
        ] => {
            assert_eq!(media_type, "image/png");
            assert!(!data.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn tab_completes_paths_after_an_at() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["alpha.txt", "alpine.md", ".hidden"] {
        std::fs::write(dir.path().join(f), "x").unwrap();
    }
    std::fs::create_dir(dir.path().join("beta")).unwrap();
    let mut h = Harness::new(80, 24);
    let base = dir.path().display().to_string();
    let complete = |h: &mut Harness| {
        let fx = h.press(KeyCode::Tab);
        for e in fx {
            match e {
                Effect::CompletePath { word } => {
                    let found = attach::complete(&word);
                    h.act(Action::PathsCompleted { word, found });
                }
                other => panic!("Tab after @ completes: {other:?}"),
            }
        }
    };
    h.type_text(&format!("read @{base}/al"));
    complete(&mut h);
    assert_eq!(h.app.draft(), format!("read @{base}/alp"));
    let s = h.screen();
    assert!(s.contains("alpha.txt") && s.contains("alpine.md"), "{s}");
    h.type_text("h");
    complete(&mut h);
    assert_eq!(h.app.draft(), format!("read @{base}/alpha.txt"));
    h.app.set_composer_text("");
    h.type_text(&format!("@{base}/b"));
    complete(&mut h);
    assert_eq!(h.app.draft(), format!("@{base}/beta/"));
    // Without an @ before the cursor, Tab moves the focus as ever.
    h.app.set_composer_text("plain");
    assert!(h.press(KeyCode::Tab).is_empty());
    assert_ne!(h.app.focus, llmux::tui::app::Focus::Composer);
}

#[tokio::test(start_paused = true)]
async fn a_long_paste_folds_in_the_composer_and_goes_out_whole() {
    let mut h = Harness::new(80, 24);
    let pasted: String = (1..=300).map(|i| format!("log line {i}\n")).collect();
    h.type_text("why does this fail? ");
    h.act(Action::Paste(pasted.clone()));
    assert_eq!(h.app.draft(), "why does this fail? [pasted 300 lines]");
    let s = h.screen();
    assert!(
        s.contains("[pasted 300 lines]") && !s.contains("log line 2"),
        "{s}"
    );
    let fx = h.press(KeyCode::Enter);
    let request = started(&fx).expect("no file to read: sent at once");
    assert_eq!(
        request.messages.last().unwrap().content,
        format!("why does this fail? {pasted}")
    );
    match h.app.entries.first() {
        Some(Entry::User(u)) => assert!(u.text.contains("log line 300")),
        other => panic!("{other:?}"),
    }
    // A short paste stays as it is.
    h.act(Action::Paste("two\nlines".into()));
    assert_eq!(h.app.draft(), "two\nlines");
}

#[tokio::test(start_paused = true)]
async fn slash_file_puts_the_file_in_the_message_with_tab_completion() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.md"), "# Q3\nup 4%\n").unwrap();
    let base = dir.path().display().to_string();
    let mut h = Harness::new(80, 24);
    h.type_text(&format!("/file {base}/rep"));
    let fx = h.press(KeyCode::Tab);
    for e in fx {
        if let Effect::CompletePath { word } = e {
            let found = attach::complete(&word);
            h.act(Action::PathsCompleted { word, found });
        }
    }
    assert_eq!(h.app.draft(), format!("/file {base}/report.md"));
    assert!(h.press(KeyCode::Enter).is_empty(), "nothing sent yet");
    assert_eq!(h.app.draft(), format!("@{base}/report.md "));
    let fx = send_with_files(&mut h, "what changed?");
    let content = &started(&fx).expect("sent").messages.last().unwrap().content;
    assert!(
        content.starts_with(&format!("@{base}/report.md what changed?")),
        "{content}"
    );
    assert!(content.contains("# Q3\nup 4%\n</file>"), "{content}");
    h.app.set_composer_text("");
    h.type_text("/file");
    h.press(KeyCode::Enter);
    assert!(h.screen().contains("which file?"), "{}", h.screen());
}

/// The images in a request's messages, as the upstream received them (decoded from their
/// `data:` URLs), message by message.
fn images_received(body: &serde_json::Value) -> Vec<Vec<Vec<u8>>> {
    use base64::Engine;
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["image_url"]["url"].as_str())
                .map(|url| {
                    let data = url.strip_prefix("data:image/png;base64,").unwrap();
                    base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap()
                })
                .collect()
        })
        .collect()
}

fn focus_conversation(h: &mut Harness) {
    while h.app.focus != llmux::tui::app::Focus::Conversation {
        h.press(KeyCode::Tab);
    }
    h.app.view.selected = None;
}

#[tokio::test]
async fn an_attached_image_is_saved_with_the_conversation_and_sent_again_after_a_restart() {
    use crate::upstream::{FakeUpstream, Reply};
    use llmux::store::session::SessionStore;
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["A cat."], Some((12, 2)))]).await;
    let dir = tempfile::tempdir().unwrap();
    let pixels = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-a-cat-s-pixels".to_vec();
    let png = dir.path().join("cat.png");
    std::fs::write(&png, &pixels).unwrap();
    let yaml = format!(
        r#"
model_list:
  - model_name: vision
    litellm_params: {{ model: openai/gpt-4o, api_base: "{}", api_key: k }}
  - model_name: text
    litellm_params: {{ model: mock/text }}
"#,
        up.url
    );
    let router = crate::support::router(&yaml);
    let store = SessionStore::new(dir.path().join("sessions"));

    // First run: the image goes, and the session file keeps it.
    let mut h = Harness::with_yaml(100, 30, &yaml);
    let fx = send_with_files(&mut h, &format!("what is on @{}", png.display()));
    h.run_request(&router, super::started(&fx), None).await;
    assert_eq!(images_received(&up.bodies()[0]), [vec![pixels.clone()]]);

    // A restart: a new app reads the conversation back.
    let loaded = h.saved(&store, &h.app.session);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let mut again = Harness::with_yaml(100, 30, &yaml);
    again.app.load_session(loaded);
    let shown = format!(
        "[image {} · {}]",
        png.display(),
        attach::human_bytes(pixels.len() as u64)
    );
    assert!(again.screen().contains(&shown), "{}", again.screen());
    // Regenerating sends the image again.
    let fx = again.ctrl('r');
    again.run_request(&router, super::started(&fx), None).await;
    assert_eq!(images_received(&up.bodies()[1]), [vec![pixels.clone()]]);
    // A follow-up question carries it in the history.
    let fx = send_with_files(&mut again, "and its colour?");
    again.run_request(&router, super::started(&fx), None).await;
    let sent = images_received(&up.bodies()[2]);
    assert_eq!(sent[0], std::slice::from_ref(&pixels), "{sent:?}");
    assert!(sent[1..].iter().all(Vec::is_empty), "{sent:?}");

    // Edited and sent as a branch: the image goes while its line is in the text.
    focus_conversation(&mut again);
    for _ in 0..5 {
        again.press(KeyCode::Up);
    }
    again.press(KeyCode::Char('e'));
    let edited = again.app.draft().replace("what is on", "what animal is on");
    again.app.set_composer_text(&edited);
    let fx = again.press(KeyCode::Enter);
    again.run_request(&router, super::started(&fx), None).await;
    assert_eq!(images_received(&up.bodies()[3]), [vec![pixels.clone()]]);
    // The file holds the image once: the edit names it (it is already there with the message
    // edited) rather than writing its bytes again, and loading puts them back.
    let both = SessionStore::new(dir.path().join("both-runs"));
    h.saved(&both, &h.app.session);
    let reloaded = again.saved(&both, &h.app.session);
    let file = std::fs::read_to_string(both.path_of(&h.app.session)).unwrap();
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&pixels);
    assert_eq!(file.matches(&encoded).count(), 1, "{file}");
    let edited_images: Vec<_> = reloaded
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::User(u) if u.text.contains("what animal") => Some(u.images.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(edited_images.len(), 1, "the branch shown is the edit's");
    assert_eq!(edited_images[0].len(), 1);
    assert_eq!(edited_images[0][0].data, encoded);
    assert_eq!(edited_images[0][0].from, None);
    // Its line deleted, it does not.
    focus_conversation(&mut again);
    again.press(KeyCode::Up);
    again.press(KeyCode::Up);
    again.press(KeyCode::Char('e'));
    let edited = again.app.draft().replace(&shown, "");
    again.app.set_composer_text(&edited);
    let fx = again.press(KeyCode::Enter);
    again.run_request(&router, super::started(&fx), None).await;
    assert_eq!(images_received(&up.bodies()[4]), [Vec::<Vec<u8>>::new()]);

    // A group that takes no images gets the conversation without them, and says so.
    again.app.load_session(store.load(&h.app.session).unwrap());
    let meter = llmux::tui::context::prompt_tokens;
    let on_vision = meter(&again.app);
    again.ctrl('n');
    assert_eq!(again.app.current_group(), "text");
    assert_eq!(
        on_vision - meter(&again.app),
        llmux::provider::IMAGE_TOKEN_ESTIMATE,
        "the meter counts what is sent"
    );
    let fx = send_with_files(&mut again, "in one word?");
    let request = started(&fx).expect("sent");
    assert!(
        request.messages.iter().all(|m| m.parts.is_empty()),
        "{request:?}"
    );
    assert!(request.messages[0].content.contains(&shown));
    assert!(
        again
            .screen()
            .contains("text takes no images: the conversation's images are left out"),
        "{}",
        again.screen()
    );
}
