//! Tool calls and results in the TUI: a conversation holding them renders as collapsed
//! one-line blocks (TestBackend, insta), session files round-trip them, the history sent
//! next carries them, and streamed tool-call pieces build the answer's calls live.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use llmux::provider::{Role, ToolCall, ToolCallDelta};
use llmux::router::{ChatEvent, ChatOutcome};
use llmux::store::session::{
    Answer, AnswerState, Entry, Record, ToolResult, UserMessage, history, parse_records,
};
use llmux::tui::action::{Action, Effect};
use llmux::tui::app::App;
use llmux::tui::theme::{ColorDepth, Theme};
use llmux::tui::view;
use tokio::time::Instant;

use crate::support;

fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn app(w: u16, h: u16) -> App {
    let cfg = llmux::config::demo().unwrap();
    let (mut app, _) = App::new(
        &cfg,
        Theme::builtin_default(ColorDepth::Mono),
        Instant::now(),
        fixed_clock,
    );
    app.update(Action::Resize(w, h));
    app
}

fn screen(app: &App, w: u16, h: u16) -> String {
    support::text(&support::drawn(w, h, |area, buf| {
        view::draw(app, area, buf)
    }))
}

fn weather_call() -> ToolCall {
    ToolCall {
        id: "call_w1".into(),
        name: "get_weather".into(),
        arguments: "{\n  \"city\": \"Paris\",\n  \"unit\": \"celsius\",\n  \"days\": [1, 2, 3, 4, 5, 6, 7]\n}".into(),
    }
}

/// A conversation with a tool call, its result, and the answer after it, as records.
fn records() -> Vec<Record> {
    vec![
        Record::User {
            id: 1,
            text: "Weather in Paris this week?".into(),
            group: "fast".into(),
            at_unix_ms: 0,
            images: Vec::new(),
        },
        Record::Answer(Answer {
            id: 2,
            text: "Let me look that up.".into(),
            group: "fast".into(),
            deployment: Some("fast-steady".into()),
            state: AnswerState::Done,
            total_ms: Some(400),
            tool_calls: vec![weather_call()],
            ..Answer::default()
        }),
        Record::ToolResult(ToolResult {
            id: 3,
            tool_call_id: "call_w1".into(),
            name: Some("get_weather".into()),
            text: "{\"mon\": \"18°C sunny\", \"tue\": \"16°C rain\", \"wed\": \"20°C\", \"thu\": \"21°C\"}"
                .into(),
            is_error: false,
        }),
        Record::Answer(Answer {
            id: 4,
            text: "Mostly sunny, 16–21°C.".into(),
            group: "fast".into(),
            deployment: Some("fast-steady".into()),
            state: AnswerState::Done,
            total_ms: Some(300),
            ..Answer::default()
        }),
    ]
}

fn session_text() -> String {
    records()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

#[test]
fn sessions_round_trip_tool_calls_and_results_into_the_history() {
    let s = parse_records(session_text().as_bytes());
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.entries.len(), 4);
    let Entry::Answer(a) = &s.entries[1] else {
        panic!("{:?}", s.entries[1]);
    };
    assert_eq!(a.tool_calls, vec![weather_call()]);
    assert!(matches!(&s.entries[2], Entry::ToolResult(t) if t.tool_call_id == "call_w1"));
    let h = history(&s.entries);
    let roles: Vec<Role> = h.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [Role::User, Role::Assistant, Role::Tool, Role::Assistant]
    );
    assert_eq!(h[1].tool_calls, vec![weather_call()]);
    assert_eq!(h[2].tool_call_id.as_deref(), Some("call_w1"));
    // An answer that is only a tool call still counts as the answer.
    let only_call = vec![
        Entry::User(UserMessage {
            id: 1,
            text: "q".into(),
            group: "g".into(),
            images: Vec::new(),
        }),
        Entry::Answer(Answer {
            id: 2,
            tool_calls: vec![weather_call()],
            ..Answer::default()
        }),
    ];
    assert_eq!(history(&only_call).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn tool_calls_and_results_render_as_collapsed_blocks() {
    for (w, h) in [(80, 24), (160, 48)] {
        let mut a = app(w, h);
        a.load_session(parse_records(session_text().as_bytes()));
        let s = screen(&a, w, h);
        assert!(
            s.contains("▸ tool call get_weather({ \"city\": \"Paris\""),
            "{s}"
        );
        assert!(s.contains("◂ tool result get_weather: {\"mon\""), "{s}");
        assert!(
            !s.contains("\"unit\": \"celsius\",\n"),
            "never raw JSON over lines: {s}"
        );
        insta::assert_snapshot!(format!("tool_blocks_{w}x{h}"), s);
    }
}

#[tokio::test(start_paused = true)]
async fn streamed_tool_call_pieces_build_the_answer_live() {
    let mut a = app(80, 24);
    for c in "weather?".chars() {
        a.update(Action::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )));
    }
    let fx = a.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    let tag = fx
        .iter()
        .find_map(|e| match e {
            Effect::StartChat { tag, .. } => Some(*tag),
            _ => None,
        })
        .expect("a request was started");
    let piece = |index, id: Option<&str>, name: Option<&str>, args: &str| {
        ChatEvent::ToolCall(ToolCallDelta {
            index,
            id: id.map(Into::into),
            name: name.map(Into::into),
            arguments: args.into(),
        })
    };
    for ev in [
        piece(0, Some("call_1"), Some("get_weather"), ""),
        piece(0, None, None, "{\"city\":"),
        piece(0, None, None, "\"Oslo\"}"),
    ] {
        a.update(Action::Chat {
            tag,
            event: ev,
            at: Instant::now(),
        });
    }
    let s = screen(&a, 80, 24);
    assert!(
        s.contains("▸ tool call get_weather({\"city\":\"Oslo\"})"),
        "{s}"
    );
    let call = ToolCall {
        id: "call_1".into(),
        name: "get_weather".into(),
        arguments: "{\"city\":\"Oslo\"}".into(),
    };
    let outcome = ChatOutcome {
        request_id: 1,
        text: String::new(),
        reasoning: String::new(),
        group: "fast".into(),
        deployment: "fast-steady".into(),
        attempts: Vec::new(),
        ttft: Some(Duration::from_millis(100)),
        total: Duration::from_millis(200),
        usage: Default::default(),
        cost: None,
        finish_reason: Some("tool_calls".into()),
        tool_calls: vec![call.clone()],
        retried: false,
        fell_back: false,
        continued: false,
        cached: false,
    };
    let fx = a.update(Action::Chat {
        tag,
        event: ChatEvent::finished(Ok(outcome)),
        at: Instant::now(),
    });
    let saved = fx.iter().find_map(|e| match e {
        Effect::Persist(Record::Answer(a)) => Some(a.clone()),
        _ => None,
    });
    assert_eq!(saved.map(|a| a.tool_calls), Some(vec![call]));
}
