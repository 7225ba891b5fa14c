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
mod chat;
mod compare;
mod composer;
mod context;
mod inspect;
mod layout;
mod limits;
mod metricspane;
mod numbers;
mod panes;
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

/// The demo conversation and routing log in a harness of `w`x`h` (what the snapshots show).
async fn full(w: u16, h: u16) -> Harness {
    let mut x = Harness::new(w, h);
    demo_conversation(&mut x).await;
    demo_log(&mut x);
    x
}
