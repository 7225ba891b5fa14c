//! The UI loop and the effect runner: the only part of the TUI that does IO.
//!
//! One tokio mpsc channel carries every [`Action`] into the loop: keys, pastes and resizes
//! from crossterm's `EventStream`, each request's `ChatEvent`s tagged with the request they
//! belong to, every `RouteEvent` from `Router::subscribe`, SIGTERM/SIGHUP, and a slow tick
//! only while something animates. The loop drains what is queued, then draws at most once
//! per [`FRAME`] and only when something changed, so an idle TUI draws nothing. Effects
//! (start or drop a request, append to the session file, copy, run `$EDITOR`) happen here and
//! report back as actions. The terminal is restored on exit, on panic and on SIGTERM/SIGHUP.

use std::collections::{HashMap, VecDeque};

use crossterm::event::{Event, EventStream, KeyEventKind, MouseEventKind};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant, sleep_until};

use crate::router::{ChatEvent, Router};
use crate::store::session::{SessionStore, SessionWriter};

use super::action::{Action, Effect, RequestTag, TICK};
use super::app::App;
use super::chatio;
use super::clipboard::{self, Mux};
use super::metrics::StatusView;
use super::statsview::{self, StatsWindow};
pub use super::terminal::leave;
use super::terminal::{Term, enter, install_panic_hook, set_panic_draft};
use crate::store::stats::{DeploymentFacts, GroupBy};

/// Shortest time between two frames (at most ~60 per second) after a key or a resize.
pub const FRAME: Duration = Duration::from_millis(16);
/// Shortest time between two frames when only a stream, the routing or the clock moved them:
/// text arrives in readable batches, and each frame's cursor moves and colours are paid
/// fewer times over SSH.
pub const STREAM_FRAME: Duration = Duration::from_millis(80);
/// Actions queued into the loop before producers wait.
const CHANNEL: usize = 4096;
/// Lines one mouse wheel notch scrolls.
const WHEEL_LINES: i32 = 3;
/// The editor when neither $VISUAL nor $EDITOR is set.
const DEFAULT_EDITOR: &str = "vi";

/// Reads terminal events into the channel until dropped.
fn spawn_input(tx: mpsc::Sender<Action>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = EventStream::new();
        while let Some(Ok(ev)) = events.next().await {
            let action = match ev {
                Event::Key(k) if k.kind != KeyEventKind::Release => Action::Key(k),
                Event::Paste(s) => Action::Paste(s),
                Event::Resize(w, h) => Action::Resize(w, h),
                Event::Mouse(m) => match m.kind {
                    MouseEventKind::ScrollUp => Action::Scroll(-WHEEL_LINES),
                    MouseEventKind::ScrollDown => Action::Scroll(WHEEL_LINES),
                    _ => continue,
                },
                _ => continue,
            };
            if tx.send(action).await.is_err() {
                break;
            }
        }
    })
}

fn spawn_signals(tx: mpsc::Sender<Action>) {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [SignalKind::terminate(), SignalKind::hangup()] {
        let tx = tx.clone();
        if let Ok(mut s) = signal(kind) {
            tokio::spawn(async move {
                if s.recv().await.is_some() {
                    let _ = tx.send(Action::Terminate).await;
                }
            });
        }
    }
}

fn spawn_route_events(router: &Router, tx: mpsc::Sender<Action>) {
    let mut sub = router.subscribe();
    tokio::spawn(async move {
        loop {
            match sub.recv().await {
                Ok(ev) => {
                    if tx.send(Action::Route(ev)).await.is_err() {
                        break;
                    }
                }
                // A burst larger than the buffer loses its oldest lines, nothing else.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Performs effects; owns everything with IO.
struct Runner {
    router: Router,
    tx: mpsc::Sender<Action>,
    requests: HashMap<RequestTag, JoinHandle<()>>,
    store: Option<SessionStore>,
    writer: Option<SessionWriter>,
    mux: Mux,
    input: Option<JoinHandle<()>>,
    /// Cost of the requests in the request log before this run, once summed.
    earlier_cost: std::sync::Arc<std::sync::OnceLock<crate::store::stats::CostTotal>>,
    /// Providers and tags of the config's deployments, for the stats view.
    facts: std::sync::Arc<DeploymentFacts>,
    /// Sends `Action::StatsDue` every `statsview::REFRESH` while the stats view shows.
    stats_timer: Option<JoinHandle<()>>,
    /// Bumped by every conversation search; an older one still running stops.
    latest_search: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The router's wire capture and the latest answers' records (the inspector's).
    wire: super::wirefile::WireKeeper,
}

impl Runner {
    fn status(&self) -> StatusView {
        let mut v = StatusView::from_router(&self.router);
        v.earlier_cost = self.earlier_cost.get().copied();
        v
    }

    /// Sums the request log's earlier costs on a blocking thread, then refreshes the status.
    fn sum_earlier_cost(&self) {
        let cell = self.earlier_cost.clone();
        let tx = self.tx.clone();
        let router = self.router.clone();
        let Some(path) = crate::store::RequestLog::default_path() else {
            let _ = cell.set(Default::default());
            return;
        };
        // Only what was there before this run: this run's requests are counted live.
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        tokio::task::spawn_blocking(move || {
            let _ = cell.set(crate::store::stats::cost_before(&path, len));
            let mut v = StatusView::from_router(&router);
            v.earlier_cost = cell.get().copied();
            let _ = tx.blocking_send(Action::Status(v));
        });
    }

    /// Reads the request log for the stats view on a blocking thread; the report comes back
    /// into the one channel as `Action::Stats`.
    fn read_stats(&self, window: StatsWindow, by: GroupBy) {
        let tx = self.tx.clone();
        let router = self.router.clone();
        let facts = self.facts.clone();
        tokio::task::spawn_blocking(move || {
            // What this run logged is written first, so a request that just finished counts.
            router.sync_request_log();
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let path = crate::store::RequestLog::default_path();
            let read = statsview::read(path.as_deref(), window, by, &facts, now_ms);
            let _ = tx.blocking_send(Action::Stats(read));
        });
    }

    /// Searches the saved conversations on a blocking thread (a long history takes a while to
    /// read, and typing must not wait); the matches come back as `Action::SessionsFound`, where
    /// an answer to a query since changed is dropped.
    fn search_sessions(&self, query: String) {
        let tx = self.tx.clone();
        let store = self.store.clone();
        let latest = self.latest_search.clone();
        let mine = latest.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        tokio::task::spawn_blocking(move || {
            let current = || latest.load(std::sync::atomic::Ordering::Relaxed) == mine;
            let found = match &store {
                Some(s) => s.search_while(&query, current).map_err(|e| e.to_string()),
                None => Err("no data directory".to_string()),
            };
            // Overtaken: its list may be cut short, and the newer search answers instead (the
            // same text typed again must not show the shorter list).
            if current() {
                let _ = tx.blocking_send(Action::SessionsFound { query, found });
            }
        });
    }

    fn run(&mut self, effect: Effect, term: &mut Term) -> Option<Action> {
        match effect {
            Effect::StartChat {
                tag,
                group,
                request,
            } => {
                self.requests.retain(|_, h| !h.is_finished());
                let mut stream = self.router.chat(&group, request);
                let tx = self.tx.clone();
                let task = tokio::spawn(async move {
                    while let Some(event) = stream.next_event().await {
                        let done = matches!(event, ChatEvent::Finished(_));
                        let at = Instant::now();
                        if tx.send(Action::Chat { tag, event, at }).await.is_err() || done {
                            break;
                        }
                    }
                });
                self.requests.insert(tag, task);
                None
            }
            Effect::Cancel(tag) => {
                // Aborting the task drops the ChatStream, which cancels the HTTP request.
                if let Some(h) = self.requests.remove(&tag) {
                    h.abort();
                }
                None
            }
            Effect::Persist(record) => {
                let w = self.writer.as_mut()?;
                match w.append(&record) {
                    Ok(()) => None,
                    Err(e) => Some(Action::Copied(Err(format!(
                        "cannot save the conversation: {e}"
                    )))),
                }
            }
            Effect::SwitchSession(name) => {
                self.writer = self.store.as_ref().map(|s| s.writer(&name));
                None
            }
            Effect::ListSessions => {
                let list = match &self.store {
                    Some(s) => s.list().map_err(|e| e.to_string()),
                    None => Err("no data directory".to_string()),
                };
                if let (Some(store), Ok(l)) = (&self.store, &list) {
                    let names = l.iter().map(|i| i.name.clone()).collect();
                    chatio::summarize(store.clone(), names, self.tx.clone());
                }
                Some(Action::SessionsListed(list))
            }
            Effect::SearchSessions(query) => {
                self.search_sessions(query);
                None
            }
            Effect::LoadSession(name) => Some(Action::SessionLoaded(match &self.store {
                Some(s) => s.load(&name).map_err(|e| e.to_string()),
                None => Err("no data directory".to_string()),
            })),
            Effect::Copy(text) => Some(Action::Copied(clipboard::osc52(&text, self.mux).and_then(
                |seq| {
                    term.write_now(seq.as_bytes())
                        .map(|()| text.chars().count())
                        .map_err(|e| e.to_string())
                },
            ))),
            Effect::OpenEditor(draft) => Some(Action::EditorDone(self.edit(draft, term))),
            Effect::RefreshStatus => Some(Action::Status(self.status())),
            Effect::ReadStats { window, by } => {
                self.read_stats(window, by);
                None
            }
            Effect::StatsTimer(on) => {
                if let Some(h) = self.stats_timer.take() {
                    h.abort();
                }
                if on {
                    let tx = self.tx.clone();
                    self.stats_timer = Some(tokio::spawn(async move {
                        let mut every = tokio::time::interval(statsview::REFRESH);
                        // The first tick is immediate; the view already asked for a read.
                        every.tick().await;
                        loop {
                            every.tick().await;
                            if tx.send(Action::StatsDue).await.is_err() {
                                break;
                            }
                        }
                    }));
                }
                None
            }
            Effect::LoadRole(name) => Some(chatio::load_role(
                crate::roles::default_dir().as_deref(),
                &name,
            )),
            Effect::LoadTheme(name) => {
                let dir = crate::config::config_dir().map(|d| d.join("themes"));
                let depth = super::theme::ColorDepth::detect();
                Some(chatio::load_theme(dir.as_deref(), &name, depth))
            }
            Effect::RenameSession { from, to } => {
                let current = self.store.as_ref().map(|s| s.path_of(&from));
                let was_current = self.writer.as_ref().map(|w| w.path()) == current.as_deref();
                let action = chatio::rename(self.store.as_ref(), &from, &to);
                if let Action::SessionRenamed { result: Ok(n), .. } = &action
                    && was_current
                {
                    self.writer = self.store.as_ref().map(|s| s.writer(n));
                }
                if let (Action::SessionRenamed { result: Ok(n), .. }, Some(s)) =
                    (&action, &self.store)
                {
                    super::wirefile::follow_rename(&s.path_of(&from), &s.path_of(n));
                }
                Some(action)
            }
            Effect::DeleteSession(name) => {
                let path = self.store.as_ref().map(|s| s.path_of(&name));
                if self.writer.as_ref().map(|w| w.path()) == path.as_deref() {
                    self.writer = None;
                }
                let action = chatio::delete(self.store.as_ref(), &name);
                if let (Action::SessionDeleted { result: Ok(()), .. }, Some(p)) = (&action, &path) {
                    super::wirefile::follow_delete(p);
                }
                Some(action)
            }
            Effect::ReadAttachments { text, paths } => Some(Action::Attached {
                text,
                read: super::attach::read_all(&paths),
            }),
            Effect::CompletePath { word } => Some(Action::PathsCompleted {
                found: super::attach::complete(&word),
                word,
            }),
            Effect::SaveWire {
                answer_id,
                request_id,
                route,
            } => {
                let session = self.writer.as_ref().map(|w| w.path().to_path_buf());
                let saved = self
                    .wire
                    .save(session.as_deref(), answer_id, request_id, route);
                saved.err().map(|e| Action::WireLoaded {
                    answer_id,
                    found: Err(e),
                })
            }
            Effect::LoadWire {
                answer_id,
                request_id,
                route,
            } => {
                if let Some(r) = self.wire.recent(answer_id, request_id, &route) {
                    return Some(Action::WireLoaded {
                        answer_id,
                        found: Ok(Some(r)),
                    });
                }
                let path = self
                    .writer
                    .as_ref()
                    .map(|w| super::wirefile::path_for(w.path()));
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || {
                    let found = match path {
                        Some(p) => super::wirefile::find(&p, answer_id).map_err(|e| e.to_string()),
                        None => Ok(None),
                    };
                    let _ = tx.blocking_send(Action::WireLoaded { answer_id, found });
                });
                None
            }
            Effect::Quit => None,
        }
    }

    /// Runs `$VISUAL`/`$EDITOR` on the draft with the terminal handed over.
    fn edit(&mut self, draft: String, term: &mut Term) -> Result<String, String> {
        if let Some(h) = self.input.take() {
            // The reader must not steal the editor's keys.
            h.abort();
        }
        let path = std::env::temp_dir().join(format!("llmux-draft-{}.md", std::process::id()));
        let result = (|| {
            std::fs::write(&path, &draft).map_err(|e| e.to_string())?;
            leave();
            let editor = std::env::var("VISUAL")
                .or_else(|_| std::env::var("EDITOR"))
                .unwrap_or_else(|_| DEFAULT_EDITOR.to_string());
            let mut parts = editor.split_whitespace();
            let prog = parts.next().unwrap_or(DEFAULT_EDITOR);
            let status = std::process::Command::new(prog)
                .args(parts)
                .arg(&path)
                .status()
                .map_err(|e| format!("{prog}: {e}"))?;
            if !status.success() {
                return Err(format!("{prog} exited with {status}"));
            }
            std::fs::read_to_string(&path).map_err(|e| e.to_string())
        })();
        let _ = std::fs::remove_file(&path);
        term.resume();
        self.input = Some(spawn_input(self.tx.clone()));
        result
    }
}

/// Runs the TUI on `router` with `app` until quit. The terminal is restored before returning.
pub async fn run_loop(
    router: Router,
    mut app: App,
    store: Option<SessionStore>,
    mouse: bool,
) -> std::io::Result<()> {
    install_panic_hook();
    let (mut term, enhanced) = enter(mouse)?;
    app.shift_enter = enhanced;
    let (tx, mut rx) = mpsc::channel(CHANNEL);
    let (width, height) = crossterm::terminal::size()?;
    let _ = tx.send(Action::Resize(width, height)).await;
    spawn_signals(tx.clone());
    spawn_route_events(&router, tx.clone());
    let router_config = &router.config().clone();
    let router_capture = router.capture().cloned();
    let mux = Mux::detect();
    app.copy_caveat = mux.caveat();
    let mut runner = Runner {
        router,
        tx: tx.clone(),
        requests: HashMap::new(),
        writer: store.as_ref().map(|s| s.writer(&app.session)),
        store,
        mux,
        input: Some(spawn_input(tx.clone())),
        earlier_cost: Default::default(),
        facts: std::sync::Arc::new(DeploymentFacts::from_config(router_config)),
        stats_timer: None,
        latest_search: Default::default(),
        wire: super::wirefile::WireKeeper::new(router_capture),
    };
    runner.sum_earlier_cost();
    let result = ui_loop(&mut app, &mut runner, &mut rx, &mut term).await;
    if let Some(h) = runner.stats_timer.take() {
        h.abort();
    }
    for (_, h) in runner.requests.drain() {
        h.abort();
    }
    if let Some(h) = runner.input.take() {
        h.abort();
    }
    leave();
    result
}

/// Whether `action` comes from the user (drawn at once) rather than from a stream, the
/// router or the clock (drawn at most every [`STREAM_FRAME`]).
fn is_urgent(action: &Action) -> bool {
    !matches!(
        action,
        Action::Chat { .. }
            | Action::Route(_)
            | Action::Status(_)
            | Action::Tick(_)
            | Action::Stats(_)
            | Action::StatsDue
    )
}

async fn ui_loop(
    app: &mut App,
    runner: &mut Runner,
    rx: &mut mpsc::Receiver<Action>,
    term: &mut Term,
) -> std::io::Result<()> {
    let mut last_draw: Option<Instant> = None;
    let mut next_tick: Option<Instant> = None;
    let mut queue: VecDeque<Action> = VecDeque::new();
    let mut last_draft = String::new();
    // Something the user did (a key, a paste, a resize) waits for the next frame.
    let mut urgent = true;
    loop {
        let now = Instant::now();
        if app.animating() {
            next_tick.get_or_insert(now + TICK);
        } else {
            next_tick = None;
        }
        let interval = if urgent { FRAME } else { STREAM_FRAME };
        let draw_at = app.dirty.then(|| last_draw.map_or(now, |t| t + interval));
        tokio::select! {
            biased;
            () = sleep_until(draw_at.unwrap_or(now)), if draw_at.is_some() => {
                term.draw(app)?;
                app.dirty = false;
                urgent = false;
                last_draw = Some(Instant::now());
            }
            () = sleep_until(next_tick.unwrap_or(now)), if next_tick.is_some() => {
                next_tick = None;
                queue.push_back(Action::Tick(Instant::now()));
            }
            received = rx.recv() => {
                let Some(first) = received else { return Ok(()) };
                queue.push_back(first);
                while let Ok(more) = rx.try_recv() {
                    queue.push_back(more);
                }
            }
        }
        let mut route_seen = false;
        while let Some(action) = queue.pop_front() {
            route_seen |= matches!(action, Action::Route(_));
            urgent |= is_urgent(&action);
            app.now = app.now.max(Instant::now());
            for effect in app.update(action) {
                if effect == Effect::Quit {
                    return Ok(());
                }
                if let Some(follow) = runner.run(effect, term) {
                    queue.push_back(follow);
                }
            }
            if route_seen && queue.is_empty() {
                route_seen = false;
                queue.push_back(Action::Status(runner.status()));
            }
        }
        let draft = app.draft();
        if draft != last_draft {
            set_panic_draft(
                runner.writer.as_ref().map(|w| w.path().to_path_buf()),
                draft.clone(),
            );
            last_draft = draft;
        }
    }
}
