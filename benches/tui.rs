//! Drawing cost of the TUI on `TestBackend`: one frame of a 10,000-message conversation at
//! 160x48 (target under 2 ms), with the layout cache warm as it is while a user reads or
//! streams. Run with `cargo bench --bench tui`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use llmux::metrics::Usd;
use llmux::router::ChatEvent;
use llmux::store::session::{Answer, AnswerState, Entry, LoadedSession, UserMessage};
use llmux::tui::action::Action;
use llmux::tui::app::App;
use llmux::tui::theme::{ColorDepth, Theme};
use llmux::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::time::Instant;

/// Messages in the long conversation.
const MESSAGES: u64 = 10_000;

fn clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn long_conversation() -> LoadedSession {
    let answer = "Here is **the** answer with a list:\n\n- one\n- two\n\n```rust\nfn main() { println!(\"hi\"); }\n```\n\nAnd a closing paragraph that wraps over more than one line at this width.";
    let entries = (0..MESSAGES)
        .map(|i| {
            if i % 2 == 0 {
                Entry::User(UserMessage {
                    id: i + 1,
                    text: format!("question number {i}?"),
                    group: "fast".into(),
                    images: Vec::new(),
                })
            } else {
                Entry::Answer(Answer {
                    id: i + 1,
                    text: answer.into(),
                    group: "fast".into(),
                    deployment: Some("mock/fast-steady".into()),
                    ttft_ms: Some(250),
                    total_ms: Some(1300),
                    cost: Some(Usd::from_pico(49_000_000)),
                    state: AnswerState::Done,
                    ..Answer::default()
                })
            }
        })
        .collect();
    LoadedSession {
        name: "bench".into(),
        entries,
        ..LoadedSession::default()
    }
}

fn app(rt: &tokio::runtime::Runtime) -> App {
    let _guard = rt.enter();
    let cfg = llmux::config::demo().unwrap();
    let (mut app, _) = App::new(
        &cfg,
        Theme::builtin_default(ColorDepth::TrueColor),
        Instant::now(),
        clock,
    );
    app.load_session(long_conversation());
    app.update(Action::Resize(160, 48));
    app
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let app = app(&rt);
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    c.bench_function("frame_10k_messages_160x48", |b| {
        b.iter(|| {
            term.draw(|f| {
                let area = f.area();
                view::draw(&app, area, f.buffer_mut());
            })
            .unwrap();
        })
    });
    // Streaming: every frame the growing answer is laid out again (the others stay cached).
    let mut app = self::app(&rt);
    let _guard = rt.enter();
    app.composer.insert_str("next question");
    let fx = app.update(Action::Command(llmux::tui::action::Command::Send));
    let tag = fx
        .iter()
        .find_map(|e| match e {
            llmux::tui::action::Effect::StartChat { tag, .. } => Some(*tag),
            _ => None,
        })
        .unwrap();
    c.bench_function("frame_streaming_delta_10k_160x48", |b| {
        b.iter(|| {
            app.update(Action::Chat {
                tag,
                event: ChatEvent::Delta("word ".into()),
                at: Instant::now(),
            });
            term.draw(|f| {
                let area = f.area();
                view::draw(&app, area, f.buffer_mut());
            })
            .unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
