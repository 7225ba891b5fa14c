//! The TUI, headless: a harness feeds keys and constructed `ChatEvent` sequences into
//! `App::update`, collects the effects, and reads the screen drawn on a `TestBackend`.
//! Snapshots (insta) cover every pane and overlay at 80x24 and 160x48 on demo data with a
//! fixed clock; tokio time is paused, so nothing sleeps and durations are exact.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use llmux::metrics::Usd;
use llmux::provider::{ChatRequest, ErrorClass, Role, Usage};
use llmux::router::{
    AttemptOutcome, AttemptRecord, ChatEvent, ChatOutcome, FallbackReason, RouteError,
    RouteErrorKind, RouteEvent, RouteEventKind, Router,
};
use llmux::store::session::{AnswerState, Entry, LoadedSession, Record, SessionStore};
use llmux::tui::action::{Action, Command, Effect, RequestTag};
use llmux::tui::app::{App, Focus};
use llmux::tui::metrics::{DeploymentRow, Health, StatusView};
use llmux::tui::theme::{ColorDepth, Theme};
use llmux::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::broadcast;
use tokio::time::Instant;

mod attach;
mod badges;
mod branch;
mod budget;
mod compare;
mod composer;
mod context;
mod inspect;
mod layout;
mod limits;
mod metricspane;
mod numbers;
mod picker;
mod roles;
mod routelog;
mod screen;
mod search;
mod sessionlist;
mod slash;
mod stats;
mod wording;

fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

struct Harness {
    app: App,
    term: Terminal<TestBackend>,
    effects: Vec<Effect>,
}

impl Harness {
    fn new(w: u16, h: u16) -> Harness {
        Self::with_theme(w, h, Theme::builtin_default(ColorDepth::TrueColor))
    }

    fn with_theme(w: u16, h: u16, theme: Theme) -> Harness {
        Self::with_config(w, h, &llmux::config::demo().unwrap(), theme)
    }

    /// The app on the config `yaml` describes, in the default theme.
    fn with_yaml(w: u16, h: u16, yaml: &str) -> Harness {
        let theme = Theme::builtin_default(ColorDepth::TrueColor);
        Self::with_config(w, h, &crate::support::config(yaml), theme)
    }

    fn with_config(w: u16, h: u16, cfg: &llmux::config::Config, theme: Theme) -> Harness {
        let (mut app, warnings) = App::new(cfg, theme, Instant::now(), fixed_clock);
        assert!(warnings.is_empty(), "{warnings:?}");
        app.update(Action::Resize(w, h));
        app.update(Action::Status(demo_status()));
        Harness {
            app,
            term: Terminal::new(TestBackend::new(w, h)).unwrap(),
            effects: Vec::new(),
        }
    }

    fn act(&mut self, a: Action) -> Vec<Effect> {
        let fx = self.app.update(a);
        self.effects.extend(fx.clone());
        fx
    }

    fn key(&mut self, code: KeyCode, mods: KeyModifiers) -> Vec<Effect> {
        self.act(Action::Key(KeyEvent::new(code, mods)))
    }

    fn ctrl(&mut self, c: char) -> Vec<Effect> {
        self.key(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn press(&mut self, code: KeyCode) -> Vec<Effect> {
        self.key(code, KeyModifiers::NONE)
    }

    fn type_text(&mut self, s: &str) {
        for c in s.chars() {
            self.key(KeyCode::Char(c), KeyModifiers::NONE);
        }
    }

    /// Does the runner's part of `fx`: reads the files an `Effect::ReadAttachments` asks for
    /// and hands them back; returns the effects after, the others as they were.
    fn read_files(&mut self, fx: Vec<Effect>) -> Vec<Effect> {
        let mut out = Vec::new();
        for e in fx {
            match e {
                Effect::ReadAttachments { text, paths } => {
                    let read = llmux::tui::attach::read_all(&paths);
                    out.extend(self.act(Action::Attached { text, read }));
                }
                other => out.push(other),
            }
        }
        out
    }

    /// Advances paused time and delivers a chat event stamped with it.
    async fn chat(&mut self, tag: RequestTag, after_ms: u64, event: ChatEvent) -> Vec<Effect> {
        tokio::time::advance(Duration::from_millis(after_ms)).await;
        self.act(Action::Chat {
            tag,
            event,
            at: Instant::now(),
        })
    }

    async fn tick(&mut self, after_ms: u64) -> Vec<Effect> {
        tokio::time::advance(Duration::from_millis(after_ms)).await;
        self.act(Action::Tick(Instant::now()))
    }

    /// The terminal becomes `w`x`h`, as a real one tells the app.
    fn resize(&mut self, w: u16, h: u16) {
        self.term.backend_mut().resize(w, h);
        self.act(Action::Resize(w, h));
    }

    /// Draws the app on its terminal (only what changed, as a real one) and reads it.
    fn screen(&mut self) -> String {
        let app = &self.app;
        self.term
            .draw(|f| {
                let area = f.area();
                view::draw(app, area, f.buffer_mut());
            })
            .unwrap();
        crate::support::text(self.term.backend().buffer())
    }

    /// Every record the app asked to save, in session `name`'s file in `store`, loaded back.
    fn saved(&self, store: &SessionStore, name: &str) -> LoadedSession {
        let mut w = store.writer(name);
        for e in &self.effects {
            if let Effect::Persist(r) = e {
                w.append(r).unwrap();
            }
        }
        store.load(name).unwrap()
    }

    /// Runs request `tag` on `router` as the runner does: each event into the app, after the
    /// route events `sub` saw before it (when given). Returns the effects.
    async fn run_request(
        &mut self,
        router: &Router,
        (tag, group, request): (RequestTag, String, ChatRequest),
        mut sub: Option<&mut broadcast::Receiver<RouteEvent>>,
    ) -> Vec<Effect> {
        let mut stream = router.chat(&group, request);
        let mut fx = Vec::new();
        while let Some(event) = stream.next_event().await {
            if let Some(sub) = sub.as_deref_mut() {
                while let Ok(ev) = sub.try_recv() {
                    fx.extend(self.act(Action::Route(ev)));
                }
            }
            fx.extend(self.act(Action::Chat {
                tag,
                event,
                at: Instant::now(),
            }));
        }
        fx
    }

    /// Sends `text`, returning the tag and group of the request started.
    fn send(&mut self, text: &str) -> (RequestTag, String, Vec<llmux::provider::Message>) {
        self.type_text(text);
        let fx = self.press(KeyCode::Enter);
        fx.into_iter()
            .find_map(|e| match e {
                Effect::StartChat {
                    tag,
                    group,
                    request,
                } => Some((tag, group, request.messages)),
                _ => None,
            })
            .expect("a request was started")
    }
}

/// The request the effects started: its tag, group and request.
fn started(fx: &[Effect]) -> (RequestTag, String, ChatRequest) {
    fx.iter()
        .find_map(|e| match e {
            Effect::StartChat {
                tag,
                group,
                request,
            } => Some((*tag, group.clone(), request.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no request started: {fx:?}"))
}

fn route(
    id: u64,
    group: &str,
    dep: Option<&str>,
    attempt: u32,
    elapsed_ms: u64,
    kind: RouteEventKind,
) -> RouteEvent {
    RouteEvent {
        request_id: id,
        group: group.into(),
        deployment: dep.map(str::to_string),
        attempt,
        at_unix_ms: 1_700_000_000_000 + elapsed_ms,
        elapsed_ms,
        kind,
    }
}

fn outcome(
    text: &str,
    group: &str,
    dep: &str,
    ttft_ms: u64,
    total_ms: u64,
    out: u64,
    cost_pico: Option<u64>,
) -> ChatOutcome {
    ChatOutcome {
        request_id: 1,
        text: text.into(),
        group: group.into(),
        deployment: dep.into(),
        attempts: vec![AttemptRecord {
            deployment: dep.into(),
            group: group.into(),
            outcome: AttemptOutcome::Ok,
            class: None,
            status: None,
            error: None,
            ms: total_ms,
        }],
        ttft: Some(Duration::from_millis(ttft_ms)),
        total: Duration::from_millis(total_ms),
        usage: Usage {
            input: 12,
            output: out,
            ..Usage::default()
        },
        cost: cost_pico.map(Usd::from_pico),
        finish_reason: Some("stop".into()),
        ..ChatOutcome::default()
    }
}

fn demo_status() -> StatusView {
    let row = |id: &str, group: &str, health, req, err, price: (u64, u64)| DeploymentRow {
        id: id.into(),
        group: group.into(),
        health,
        requests: req,
        errors: err,
        error_rate: Some(if req == 0 {
            0.0
        } else {
            err as f64 / req as f64
        }),
        ttft_p50_ms: (req > 0).then_some(240),
        ttft_p95_ms: (req > 0).then_some(410),
        latency_p50_ms: (req > 0).then_some(1500),
        latency_p95_ms: (req > 0).then_some(2300),
        tokens_per_s: (req > 0).then_some(58.0),
        cost: Some(Usd::from_pico(41_000_000).times(req)),
        unpriced: 0,
        in_flight: 0,
        rpm_used: req as u32,
        rpm_limit: (id == "mock/fast-steady").then_some(60),
        tpm_used: req * 92,
        tpm_limit: None,
        price: Some((Usd::from_pico(price.0), Usd::from_pico(price.1))),
        latency_spark: vec![0, 1200, 1500, 1400, 2300, 1600, 1500],
        error_spark: vec![0, 0, 1, 0, 2, 0, 0],
    };
    StatusView {
        rows: vec![
            row(
                "mock/fast-steady",
                "fast",
                Health::Healthy,
                7,
                0,
                (150_000, 600_000),
            ),
            row(
                "mock/fast-flaky",
                "fast",
                Health::Cooling { ms_left: 7_400 },
                6,
                3,
                (100_000, 400_000),
            ),
            row(
                "mock/smart-slow",
                "smart",
                Health::Healthy,
                2,
                0,
                (2_500_000, 10_000_000),
            ),
            row(
                "mock/local-small",
                "local",
                Health::Failing { recent: 1 },
                3,
                1,
                (20_000, 50_000),
            ),
        ],
        run_cost: Usd::from_pico(738_000_000),
        run_unpriced: 0,
        earlier_cost: Some(llmux::store::stats::CostTotal {
            cost: Usd::from_pico(12_500_000_000),
            unpriced: 0,
        }),
        budgets: Vec::new(),
    }
}

const ANSWER: &str = "# Ownership\n\nRust frees memory **without** a garbage collector:\n\n\
- each value has one *owner*\n- borrows are checked at compile time\n\n\
> The borrow checker is your friend.\n\n\
| type | moves? |\n|------|--------|\n| String | yes |\n| i32 | no, it is Copy |\n\n\
```rust\nfn main() {\n    let s = String::from(\"hi\");\n    println!(\"{s}\");\n}\n```\n";

/// A conversation: a fallen-back, retried answer with markdown; a cancelled one; a failed one.
async fn demo_conversation(h: &mut Harness) {
    let (tag, _, _) = h.send("How does Rust manage memory?");
    h.chat(
        tag,
        5,
        ChatEvent::route(route(
            1,
            "fast",
            Some("fast-flaky"),
            1,
            5,
            RouteEventKind::Attempt,
        )),
    )
    .await;
    h.chat(
        tag,
        150,
        ChatEvent::route(route(
            1,
            "fast",
            Some("fast-flaky"),
            1,
            155,
            RouteEventKind::Failure {
                class: ErrorClass::Server,
                status: Some(503),
                message: "mock failure".into(),
                after_tokens: false,
            },
        )),
    )
    .await;
    h.chat(
        tag,
        1,
        ChatEvent::route(route(
            1,
            "local",
            None,
            0,
            156,
            RouteEventKind::Fallback {
                from: "fast".into(),
                to: "local".into(),
                reason: FallbackReason::Failed,
            },
        )),
    )
    .await;
    h.chat(
        tag,
        1,
        ChatEvent::route(route(
            1,
            "local",
            Some("local-small"),
            2,
            157,
            RouteEventKind::Attempt,
        )),
    )
    .await;
    h.chat(tag, 80, ChatEvent::Delta(ANSWER.into())).await;
    let mut o = outcome(
        ANSWER,
        "local",
        "local-small",
        237,
        900,
        96,
        Some(5_040_000),
    );
    o.retried = true;
    o.fell_back = true;
    h.chat(tag, 660, ChatEvent::finished(Ok(o))).await;

    let (tag, _, _) = h.send("And in C?");
    h.chat(
        tag,
        250,
        ChatEvent::route(route(
            2,
            "fast",
            Some("fast-steady"),
            1,
            0,
            RouteEventKind::Attempt,
        )),
    )
    .await;
    h.chat(
        tag,
        10,
        ChatEvent::Delta("In C you call `malloc` and `free` yourself, and".into()),
    )
    .await;
    h.press(KeyCode::Esc);

    let (tag, _, _) = h.send("Thanks!");
    h.chat(
        tag,
        300,
        ChatEvent::finished(Err(RouteError {
            request_id: 3,
            kind: RouteErrorKind::AllFailed,
            message: "every route failed: fast-flaky 503, local-small timeout".into(),
            attempts: Vec::new(),
            retry_in: None,
            partial_text: String::new(),
        })),
    )
    .await;
}

fn demo_log(h: &mut Harness) {
    let evs = [
        route(
            1,
            "fast",
            None,
            0,
            0,
            RouteEventKind::Request {
                requested: "fast".into(),
                prompt_tokens: 12,
                tags: Vec::new(),
            },
        ),
        route(1, "fast", Some("fast-flaky"), 1, 5, RouteEventKind::Attempt),
        route(
            1,
            "fast",
            Some("fast-flaky"),
            1,
            155,
            RouteEventKind::Failure {
                class: ErrorClass::Server,
                status: Some(503),
                message: "mock failure".into(),
                after_tokens: false,
            },
        ),
        route(
            1,
            "fast",
            Some("fast-flaky"),
            1,
            155,
            RouteEventKind::Cooldown {
                secs: 10.0,
                reason: "3 failures in a minute".into(),
            },
        ),
        route(
            1,
            "fast",
            None,
            0,
            156,
            RouteEventKind::Fallback {
                from: "fast".into(),
                to: "local".into(),
                reason: FallbackReason::Failed,
            },
        ),
        route(
            1,
            "local",
            Some("local-small"),
            2,
            157,
            RouteEventKind::Attempt,
        ),
        route(
            1,
            "local",
            Some("local-small"),
            2,
            237,
            RouteEventKind::FirstToken { ttft_ms: 80 },
        ),
        route(
            1,
            "local",
            Some("local-small"),
            2,
            900,
            RouteEventKind::Done {
                usage: Usage {
                    input: 12,
                    output: 96,
                    ..Usage::default()
                },
                cost_usd: Some(Usd::from_pico(5_040_000)),
                ttft_ms: Some(237),
                total_ms: 900,
                finish_reason: Some("stop".into()),
                cached: false,
            },
        ),
        route(
            2,
            "fast",
            Some("fast-steady"),
            1,
            0,
            RouteEventKind::Attempt,
        ),
        route(
            2,
            "fast",
            Some("fast-steady"),
            1,
            270,
            RouteEventKind::Cancelled,
        ),
    ];
    for e in evs {
        h.act(Action::Route(e));
    }
}

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

// ---- snapshots: every pane and overlay at both sizes ----

async fn full(w: u16, h: u16) -> Harness {
    let mut x = Harness::new(w, h);
    demo_conversation(&mut x).await;
    demo_log(&mut x);
    x
}

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
