//! The TUI's state and its one transition function, [`App::update`]: an [`Action`] in, state
//! changed, [`Effect`]s out. No IO happens here (the runner does it), so every behaviour —
//! sending, streaming, cancelling, switching models, the picker, overlays — is tested without
//! a terminal or a network.
//!
//! Keys are resolved in layers: an open overlay first, then the focused side pane's own keys,
//! then the key map (`llmux.keys`), then the composer's text input. The request lifecycle
//! (send, stream, finish, cancel, regenerate, persist) lives in `turn`, key resolution in
//! `input`, what each bound command does (and focus and scrolling) in `commands`.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tui_textarea::TextArea;

use crate::config::Config;
use crate::money::Usd;
use crate::store::session::{AnswerState, Entry, LoadedSession, SessionInfo};
use crate::store::session_search::SessionMatch;

use super::action::{Action, Effect, RequestTag};
use super::conversation::{ConversationView, Ctx};
use super::highlight::Highlighter;
use super::keys::KeyMap;
use super::layout::Pane;
use super::metrics::StatusView;
use super::picker::{self, GroupInfo, PickerState};
use super::routelog::RouteLog;
use super::statsview::StatsPane;
use super::theme::Theme;
use super::turn::InFlight;

/// How long a toast stays on the status line.
const TOAST_FOR: Duration = Duration::from_secs(4);
/// Routing log lines kept.
const LOG_KEEP: usize = 2000;

/// A pane that can have the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Composer,
    Conversation,
    Models,
    Metrics,
    Log,
}

/// Overlays over the panes; the topmost takes the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Picker(PickerState),
    Help {
        scroll: usize,
    },
    Sessions {
        list: Option<Result<Vec<SessionInfo>, String>>,
        selected: usize,
        /// Typed text to search the conversations for; empty shows them all.
        query: String,
        /// The sessions holding `query` (`None` until the first search answers).
        found: Option<Result<Vec<SessionMatch>, String>>,
    },
    /// The command palette.
    Palette(super::palette::PaletteState),
}

/// A message on the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub text: String,
    pub error: bool,
    pub until: Instant,
}

/// Forced visibility of the side panes; `None` follows the terminal size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaneToggles {
    pub models: Option<bool>,
    pub metrics: Option<bool>,
    pub log: Option<bool>,
    /// The pane turned on last: where not all fit, it stays and another folds.
    pub last_on: Option<Pane>,
}

/// The whole UI state.
pub struct App {
    pub groups: Vec<GroupInfo>,
    pub strategy: &'static str,
    pub is_demo: bool,
    pub keymap: KeyMap,
    pub theme: Theme,
    pub highlighter: Highlighter,
    /// Index of the current model group.
    pub current: usize,
    pub focus: Focus,
    pub toggles: PaneToggles,
    pub size: (u16, u16),
    pub overlay: Option<Overlay>,
    pub entries: Vec<Entry>,
    pub view: ConversationView,
    pub inflight: Option<InFlight>,
    pub composer: TextArea<'static>,
    /// Messages sent, for Up-recall; `recall` indexes it while recalling.
    pub sent: Vec<String>,
    pub recall: Option<usize>,
    pub log: RouteLog,
    pub status: StatusView,
    /// The metrics pane's usage stats view.
    pub stats: StatsPane,
    /// The session name (file stem) conversations are saved under.
    pub session: String,
    /// The draft as last saved, to skip saving an unchanged one.
    pub saved_draft: String,
    /// What this session's answers cost, of those with a known price.
    pub session_spent: Usd,
    /// Some answer of this session had no known cost.
    pub session_cost_unknown: bool,
    /// Cancelled answers (router request id, answer id) whose cut attempt's cost is still to
    /// come from the routing feed.
    pub awaiting_spend: Vec<(u64, u64)>,
    pub models_selected: usize,
    pub metrics_scroll: usize,
    pub toast: Option<Toast>,
    pub now: Instant,
    pub next_id: u64,
    pub next_tag: RequestTag,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// `dirty` before the action being handled (an action that changes nothing restores it).
    dirty_before: bool,
    pub quitting: bool,
    /// The terminal reports Shift+Enter apart from Enter (kitty keyboard protocol), so it adds
    /// a line; else the help offers Alt+Enter and Ctrl+J.
    pub shift_enter: bool,
    /// The wall clock (fixed in tests): names new sessions and stamps records.
    pub clock: fn() -> SystemTime,
    /// Where a config file goes, as the demo's hint says it (the real path when running).
    pub config_path: String,
    /// Draw ASCII in place of glyphs the terminal's font may lack (`glyphs`).
    pub ascii: bool,
    /// Said after a copy when it may not reach the clipboard (tmux without passthrough).
    pub copy_caveat: Option<String>,
    /// The live line's counters as last drawn (they change at a human rate).
    pub live_counters: std::cell::RefCell<Option<super::live::LiveCounters>>,
    /// The conversation's system prompt, role and parameters (saved with it).
    pub settings: crate::store::session::Settings,
    /// `/` command completion: role and theme names, and a run of Tabs.
    pub slash: super::slash::SlashState,
    /// Compare, inspect, attachments and the context meter (`part_b`).
    pub b: super::part_b::PartB,
    /// The conversation's other branches (`entries` is the one shown).
    pub branches: crate::store::branches::Branches,
    /// The earlier message being edited in the composer, to be sent as a new branch.
    pub editing: Option<super::branch::Editing>,
    /// The search in the conversation (`/` with it focused).
    pub find: Option<super::find::Find>,
    /// The conversations list's numbers per session, and a rename or delete under way.
    pub list: super::sessionlist::ListExtra,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("current", &self.current)
            .field("focus", &self.focus)
            .field("entries", &self.entries.len())
            .field("inflight", &self.inflight.is_some())
            .finish_non_exhaustive()
    }
}

impl App {
    /// A fresh app for `cfg`, with warnings for unusable key bindings.
    pub fn new(
        cfg: &Config,
        theme: Theme,
        now: Instant,
        clock: fn() -> SystemTime,
    ) -> (App, Vec<String>) {
        let (keymap, warnings) = KeyMap::new(&cfg.app.keys);
        let groups = picker::groups_of(cfg);
        let current = cfg
            .app
            .default_model
            .as_deref()
            .and_then(|m| cfg.resolve_group(m))
            .and_then(|g| groups.iter().position(|x| x.name == g))
            .unwrap_or(0);
        let highlighter = Highlighter::new(&theme);
        let mut app = App {
            groups,
            strategy: cfg.router.strategy.name(),
            is_demo: cfg.is_demo,
            keymap,
            theme,
            highlighter,
            current,
            focus: Focus::Composer,
            toggles: PaneToggles::default(),
            size: (80, 24),
            overlay: None,
            entries: Vec::new(),
            view: ConversationView::default(),
            inflight: None,
            composer: TextArea::default(),
            sent: Vec::new(),
            recall: None,
            log: RouteLog::default(),
            status: StatusView::default(),
            stats: StatsPane::default(),
            session: crate::store::session::new_session_name(clock()),
            saved_draft: String::new(),
            session_spent: Usd::ZERO,
            session_cost_unknown: false,
            awaiting_spend: Vec::new(),
            models_selected: 0,
            metrics_scroll: 0,
            toast: None,
            now,
            next_id: 1,
            next_tag: 1,
            dirty: true,
            dirty_before: true,
            quitting: false,
            shift_enter: false,
            clock,
            config_path: "<config dir>/llmux/config.yaml".to_string(),
            ascii: false,
            copy_caveat: None,
            live_counters: Default::default(),
            settings: Default::default(),
            slash: super::slash::SlashState {
                themes: super::theme::BUILTIN_THEMES
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .collect(),
                ..Default::default()
            },
            b: super::part_b::PartB::new(cfg),
            branches: Default::default(),
            editing: None,
            find: None,
            list: Default::default(),
        };
        app.style_composer();
        (app, warnings)
    }

    /// Replaces the conversation with a loaded one (its draft goes into the composer).
    pub fn load_session(&mut self, s: LoadedSession) {
        self.next_id = self.next_id.max(s.next_id());
        self.entries = s.entries;
        self.branches = s.branches;
        self.editing = None;
        self.find = None;
        self.session = s.name;
        self.settings = s.settings;
        self.set_composer_text(&s.draft);
        self.saved_draft = s.draft;
        self.sent = self
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::User(u) => Some(u.text.clone()),
                Entry::Answer(_) | Entry::ToolResult(_) => None,
            })
            .collect();
        self.recall = None;
        // The conversation comes back on the group it last asked (when the config still has it).
        let last_group = self.entries.iter().rev().find_map(|e| match e {
            Entry::User(u) => Some(u.group.as_str()),
            Entry::Answer(a) => Some(a.group.as_str()),
            Entry::ToolResult(_) => None,
        });
        if let Some(gi) = last_group.and_then(|g| self.groups.iter().position(|x| x.name == g)) {
            self.current = gi;
        }
        self.session_spent = Usd::ZERO;
        self.session_cost_unknown = false;
        // What was spent on every branch, not only on the one shown.
        for e in self.entries.iter().chain(self.branches.entries()) {
            if let Entry::Answer(a) = e {
                match a.cost {
                    Some(c) => self.session_spent += c,
                    // Unpriced: an answer, or a cut one that was billed for tokens.
                    None if a.state == AnswerState::Done || a.usage.is_some() => {
                        self.session_cost_unknown = true;
                    }
                    None => {}
                }
            }
        }
        self.view = ConversationView::default();
        if !s.warnings.is_empty() {
            let text = format!("session {}: {}", self.session, s.warnings.join("; "));
            self.toast(text, true);
        }
        self.dirty = true;
    }

    pub fn current_group(&self) -> &str {
        self.groups
            .get(self.current)
            .map_or("", |g| g.name.as_str())
    }

    /// The composer's text.
    pub fn draft(&self) -> String {
        self.composer.lines().join("\n")
    }

    pub fn set_composer_text(&mut self, text: &str) {
        let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        self.composer = TextArea::new(lines);
        self.composer.move_cursor(tui_textarea::CursorMove::Bottom);
        self.composer.move_cursor(tui_textarea::CursorMove::End);
        self.style_composer();
    }

    pub(crate) fn style_composer(&mut self) {
        use ratatui::style::{Modifier, Style};
        self.composer.set_cursor_line_style(Style::new());
        self.composer
            .set_cursor_style(Style::new().add_modifier(Modifier::REVERSED));
        self.composer
            .set_style(self.theme.fg(super::theme::Role::Fg));
        self.composer.set_placeholder_text("Type a message…");
        self.composer
            .set_placeholder_style(self.theme.fg(super::theme::Role::Muted));
    }

    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            theme: &self.theme,
            highlighter: &self.highlighter,
        }
    }

    /// True while something on screen changes with time alone (the runner ticks only then).
    pub fn animating(&self) -> bool {
        self.inflight.is_some()
            || self.toast.is_some()
            || self.status.any_cooling()
            || self.b.compare.streaming()
    }

    /// The action being handled changed nothing on screen.
    pub(crate) fn unchanged(&mut self) {
        self.dirty = self.dirty_before;
    }

    pub fn toast(&mut self, text: impl Into<String>, error: bool) {
        self.toast = Some(Toast {
            text: text.into(),
            error,
            until: self.now + TOAST_FOR,
        });
    }

    /// The one transition function.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let folded = self.folded();
        let fx = self.handle(action);
        let fx = self.follow_wire(fx);
        self.explain_folds(folded);
        fx
    }

    fn handle(&mut self, action: Action) -> Vec<Effect> {
        self.dirty_before = self.dirty;
        self.dirty = true;
        match action {
            Action::Command(c) => self.command(c),
            Action::Key(k) => self.key(k),
            Action::Paste(text) => {
                self.paste(&text);
                Vec::new()
            }
            Action::Scroll(lines) => {
                self.scroll_conversation(i64::from(lines));
                Vec::new()
            }
            Action::Resize(w, h) => {
                self.size = (w, h);
                // Scrolled up, but the end shows at the new size: follow it again.
                self.scroll_conversation(0);
                Vec::new()
            }
            Action::Tick(now) => self.tick(now),
            Action::Chat { tag, event, at } if self.compare_owns(tag) => {
                self.compare_event(tag, event, at)
            }
            Action::Chat { tag, event, at } => self.chat_event(tag, event, at),
            Action::Route(ev) => {
                // A budget warning also shows on the status line (once per period).
                if let crate::router::RouteEventKind::Budget { percent, .. } = &ev.kind {
                    let line = ev.describe();
                    let text = line.split_once(' ').map_or(line.as_str(), |(_, t)| t);
                    self.toast(text.to_string(), *percent >= 100);
                }
                // A finished request changes the stats: read them again while they show.
                let mut fx = self.cancelled_spend(&ev);
                if self.stats.shown
                    && matches!(
                        ev.kind,
                        crate::router::RouteEventKind::Done { .. }
                            | crate::router::RouteEventKind::Failed { .. }
                    )
                {
                    fx.extend(self.stats.request());
                }
                self.log.push(ev, LOG_KEEP);
                fx
            }
            Action::Status(view) => {
                if view == self.status {
                    self.unchanged();
                }
                self.status = view;
                Vec::new()
            }
            Action::SessionsListed(list) => {
                if let Some(Overlay::Sessions {
                    list: l, selected, ..
                }) = &mut self.overlay
                {
                    *l = Some(list);
                    *selected = 0;
                }
                Vec::new()
            }
            Action::SessionsFound { query, found } => {
                // An answer to a query since changed is dropped: a newer search is under way.
                if let Some(Overlay::Sessions {
                    query: q,
                    found: f,
                    selected,
                    ..
                }) = &mut self.overlay
                    && *q == query
                {
                    *f = Some(found);
                    *selected = 0;
                }
                Vec::new()
            }
            Action::SessionLoaded(Ok(s)) => {
                let mut fx = self.abandon_inflight(AnswerState::Cancelled);
                fx.extend(self.save_draft());
                let name = s.name.clone();
                self.load_session(s);
                self.overlay = None;
                self.toast(format!("opened {name}"), false);
                self.opened_session();
                fx.push(Effect::SwitchSession(name));
                fx
            }
            Action::SessionLoaded(Err(e)) => {
                self.toast(format!("cannot open the session: {e}"), true);
                Vec::new()
            }
            Action::EditorDone(Ok(text)) => {
                let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
                self.set_composer_text(&text);
                Vec::new()
            }
            Action::EditorDone(Err(e)) => {
                self.toast(format!("editor: {e}"), true);
                Vec::new()
            }
            Action::Copied(Ok(n)) => {
                match self.copy_caveat.clone() {
                    Some(caveat) => self.toast(format!("copied {n} chars, but it {caveat}"), true),
                    None => self.toast(
                        format!("sent {n} chars to the terminal clipboard (OSC 52)"),
                        false,
                    ),
                }
                Vec::new()
            }
            Action::Copied(Err(e)) => {
                self.toast(format!("copy failed: {e}"), true);
                Vec::new()
            }
            Action::Terminate => self.quit(),
            Action::Stats(read) => self.stats.received(read),
            Action::SessionsSummarized(found) => {
                self.list.details.extend(found);
                Vec::new()
            }
            a @ (Action::RoleLoaded(_)
            | Action::ThemeLoaded(_)
            | Action::SessionRenamed { .. }
            | Action::SessionDeleted { .. }) => self.slash_result(a),
            Action::StatsDue => {
                if !self.stats.shown {
                    self.unchanged();
                    return Vec::new();
                }
                self.stats.request()
            }
            Action::WireLoaded { answer_id, found } => self.wire_loaded(answer_id, found),
            Action::Attached { text, read } => self.attachments_read(text, read),
            Action::PathsCompleted { word, found } => self.paths_completed(word, found),
        }
    }

    fn tick(&mut self, now: Instant) -> Vec<Effect> {
        self.now = now;
        if self.toast.as_ref().is_some_and(|t| t.until <= now) {
            self.toast = None;
        }
        let mut fx = self.flush_if_due();
        if self.inflight.is_some() || self.status.any_cooling() {
            fx.push(Effect::RefreshStatus);
        }
        fx
    }

    pub(crate) fn quit(&mut self) -> Vec<Effect> {
        let mut fx = self.abandon_inflight(AnswerState::Cancelled);
        fx.extend(self.save_draft());
        self.quitting = true;
        fx.push(Effect::Quit);
        fx
    }

    /// A draft record when the composer differs from what was saved.
    pub fn save_draft(&mut self) -> Vec<Effect> {
        let draft = self.draft();
        if draft == self.saved_draft {
            return Vec::new();
        }
        self.saved_draft = draft.clone();
        vec![Effect::Persist(crate::store::session::Record::Draft {
            text: draft,
        })]
    }

    fn paste(&mut self, text: &str) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        if let Some(Overlay::Picker(p)) = &mut self.overlay {
            let mut f = p.filter.clone();
            f.push_str(text.lines().next().unwrap_or(""));
            p.set_filter(&self.groups, f);
            return;
        }
        self.focus = Focus::Composer;
        self.recall = None;
        let shown = self.b.attach.fold_paste(&text);
        self.composer.insert_str(shown);
    }
}
