//! Everything that can happen to the TUI, as one [`Action`] enum, and everything the TUI asks
//! the outside world to do, as [`Effect`]s.
//!
//! Keys, pastes, resizes, ticks, router events and the results of effects all arrive as
//! actions; `App::update` turns each into state changes and effects, and the effect runner
//! (`runtime`) performs the effects. The actions a user can bind to keys are
//! [`Command`]s, named in snake_case for `llmux.keys`.

use std::time::Duration;

use crossterm::event::KeyEvent;
use tokio::time::Instant;

use crate::provider::ChatRequest;
use crate::router::{ChatEvent, RouteEvent};
use crate::store::session::{LoadedSession, Record, SessionInfo};
use crate::store::session_search::SessionMatch;

use super::metrics::StatusView;
use super::statsview::{StatsRead, StatsWindow};
use crate::store::stats::GroupBy;

/// A command a key can be bound to. The snake_case name is what `llmux.keys` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    /// Quit (the draft is saved).
    Quit,
    /// Send the composer's text to the current model group.
    Send,
    /// Insert a newline in the composer.
    Newline,
    /// Switch to the next model group.
    NextModel,
    /// Switch to the previous model group.
    PrevModel,
    /// Open the model picker.
    OpenPicker,
    /// Cancel the answer streaming now (the partial answer is kept), or close an overlay.
    Cancel,
    /// Ask the last question again on the current model group.
    Regenerate,
    /// Copy the last answer to the clipboard (OSC 52).
    CopyLast,
    /// Copy the last code block of the last answer (Alt+1..9 copy block N).
    CopyCode,
    /// Start a new conversation.
    NewConversation,
    /// List saved conversations to reopen one.
    OpenSessions,
    /// Show the key bindings.
    Help,
    /// Move the focus to the next pane.
    FocusNext,
    /// Move the focus to the previous pane.
    FocusPrev,
    /// Show or hide the models pane.
    ToggleModels,
    /// Show or hide the metrics pane.
    ToggleMetrics,
    /// Show or hide the routing log pane.
    ToggleLog,
    /// Show only failures in the routing log, or everything again.
    LogFailures,
    /// Scroll the focused pane (else the conversation) up one line.
    ScrollUp,
    /// Scroll down one line.
    ScrollDown,
    /// Scroll up one page.
    PageUp,
    /// Scroll down one page.
    PageDown,
    /// Scroll to the top.
    ScrollTop,
    /// Scroll to the bottom and follow new text.
    ScrollBottom,
    /// Edit the draft in `$EDITOR`.
    EditExternal,
    /// Switch the metrics pane between live metrics and usage stats from the request log.
    ToggleStats,
    /// Cycle the stats window (1h, 24h, 7d, 30d).
    StatsWindow,
    /// Cycle the stats grouping (model, deployment, provider, tag).
    StatsGroup,
    /// Open the command palette: every `/` command and every action, filtered as you type.
    Palette,
    /// Ask one question of two or more model groups side by side, and keep one answer.
    Compare,
    /// Show what went over the wire for the last answer: every attempt, request and response.
    Inspect,
}

impl Command {
    /// Every command, in the order the help overlay lists them.
    pub const ALL: [Command; 32] = [
        Command::Send,
        Command::Newline,
        Command::NextModel,
        Command::PrevModel,
        Command::OpenPicker,
        Command::Cancel,
        Command::Regenerate,
        Command::Compare,
        Command::Inspect,
        Command::CopyLast,
        Command::CopyCode,
        Command::NewConversation,
        Command::OpenSessions,
        Command::EditExternal,
        Command::FocusNext,
        Command::FocusPrev,
        Command::ToggleModels,
        Command::ToggleMetrics,
        Command::ToggleLog,
        Command::LogFailures,
        Command::ToggleStats,
        Command::StatsWindow,
        Command::StatsGroup,
        Command::Palette,
        Command::ScrollUp,
        Command::ScrollDown,
        Command::PageUp,
        Command::PageDown,
        Command::ScrollTop,
        Command::ScrollBottom,
        Command::Help,
        Command::Quit,
    ];

    /// The name used in `llmux.keys`.
    pub fn name(self) -> &'static str {
        match self {
            Command::Quit => "quit",
            Command::Send => "send",
            Command::Newline => "newline",
            Command::NextModel => "next_model",
            Command::PrevModel => "prev_model",
            Command::OpenPicker => "open_picker",
            Command::Cancel => "cancel",
            Command::Regenerate => "regenerate",
            Command::CopyLast => "copy_last",
            Command::CopyCode => "copy_code",
            Command::NewConversation => "new_conversation",
            Command::OpenSessions => "open_sessions",
            Command::Help => "help",
            Command::FocusNext => "focus_next",
            Command::FocusPrev => "focus_prev",
            Command::ToggleModels => "toggle_models",
            Command::ToggleMetrics => "toggle_metrics",
            Command::ToggleLog => "toggle_log",
            Command::LogFailures => "log_failures",
            Command::ScrollUp => "scroll_up",
            Command::ScrollDown => "scroll_down",
            Command::PageUp => "page_up",
            Command::PageDown => "page_down",
            Command::ScrollTop => "scroll_top",
            Command::ScrollBottom => "scroll_bottom",
            Command::EditExternal => "edit_external",
            Command::ToggleStats => "toggle_stats",
            Command::StatsWindow => "stats_window",
            Command::StatsGroup => "stats_group",
            Command::Palette => "palette",
            Command::Compare => "compare",
            Command::Inspect => "inspect",
        }
    }

    pub fn from_name(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == name)
    }

    /// One line for the help overlay.
    pub fn describe(self) -> &'static str {
        match self {
            Command::Quit => "quit (the draft is saved)",
            Command::Send => "send the message",
            Command::Newline => "new line in the message",
            Command::NextModel => "next model group",
            Command::PrevModel => "previous model group",
            Command::OpenPicker => "model picker (type to filter, 1..9 favorites)",
            Command::Cancel => "cancel the answer (partial kept) / close",
            Command::Regenerate => "ask the last question again on this model",
            Command::CopyLast => "copy the last answer (OSC 52)",
            Command::CopyCode => "copy its last code block (Alt+1..9: block N)",
            Command::NewConversation => "new conversation",
            Command::OpenSessions => "saved conversations (type to search)",
            Command::EditExternal => "edit the message in $EDITOR",
            Command::FocusNext => "focus next pane",
            Command::FocusPrev => "focus previous pane",
            Command::ToggleModels => "show/hide models pane",
            Command::ToggleMetrics => "show/hide metrics pane",
            Command::ToggleLog => "show/hide routing log",
            Command::LogFailures => "routing log: failures only / everything",
            Command::ScrollUp => "scroll up a line",
            Command::ScrollDown => "scroll down a line",
            Command::PageUp => "scroll up a page",
            Command::PageDown => "scroll down a page",
            Command::ScrollTop => "scroll to the top",
            Command::ScrollBottom => "scroll to the end (follow)",
            Command::Help => "this help",
            Command::ToggleStats => "metrics pane: live metrics / usage stats",
            Command::StatsWindow => "stats window: 1h, 24h, 7d, 30d",
            Command::StatsGroup => "stats rows by model, deployment, provider, tag",
            Command::Palette => "command palette: every / command and action",
            Command::Compare => "ask two or more groups side by side, keep one",
            Command::Inspect => "what went over the wire for the last answer",
        }
    }
}

/// Identifies one request the TUI started, so late events of an abandoned one are dropped.
pub type RequestTag = u64;

/// Everything that can happen.
#[derive(Debug)]
pub enum Action {
    /// A bound command (from a key, or sent directly by tests).
    Command(Command),
    /// A key press, resolved against the key map and the focused pane.
    Key(KeyEvent),
    /// Bracketed paste into the composer.
    Paste(String),
    /// The mouse wheel moved (only with `llmux.mouse: true`); positive is down.
    Scroll(i32),
    /// The terminal was resized.
    Resize(u16, u16),
    /// Time passed (only sent while something animates or counts down).
    Tick(Instant),
    /// An event of the request `tag`, received at `at`.
    Chat {
        tag: RequestTag,
        event: ChatEvent,
        at: Instant,
    },
    /// A routing event of any request (for the routing log).
    Route(RouteEvent),
    /// Fresh metrics and deployment health.
    Status(StatusView),
    /// The saved conversations, for the session list.
    SessionsListed(Result<Vec<SessionInfo>, String>),
    /// The saved conversations holding `query`.
    SessionsFound {
        query: String,
        found: Result<Vec<SessionMatch>, String>,
    },
    /// A conversation was read from disk.
    SessionLoaded(Result<LoadedSession, String>),
    /// The external editor finished with this text (or failed).
    EditorDone(Result<String, String>),
    /// A copy to the clipboard was written (or failed).
    Copied(Result<usize, String>),
    /// SIGTERM or SIGHUP: save and leave.
    Terminate,
    /// The request log was read for the stats view.
    Stats(StatsRead),
    /// Time to read the stats again (every few seconds while the stats view shows).
    StatsDue,
    /// The numbers (models, cost) of listed conversations, by name.
    SessionsSummarized(Vec<(String, crate::store::session_summary::SessionSummary)>),
    /// A role file was read (`/role`), or why not.
    RoleLoaded(Result<crate::roles::Role, String>),
    /// A theme was loaded (`/theme`), or why not.
    ThemeLoaded(Result<Box<super::theme::Theme>, String>),
    /// A session was renamed to this name, or why not.
    SessionRenamed {
        from: String,
        result: Result<String, String>,
    },
    /// A session's file was deleted, or why not.
    SessionDeleted {
        name: String,
        result: Result<(), String>,
    },
    /// The files `@`-named in the message `text` were read (or one could not be).
    Attached {
        text: String,
        read: Result<Vec<super::attach::Attachment>, String>,
    },
    /// The paths completing `@word`.
    PathsCompleted { word: String, found: Vec<String> },
    /// The wire record of answer `answer_id` was read (`None`: none was kept), or could not be
    /// read or saved.
    WireLoaded {
        answer_id: u64,
        found: Result<Option<super::wirefile::WireRecord>, String>,
    },
}

/// What `App::update` asks the runner to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start a request on `group`; its events come back as `Action::Chat { tag, .. }`.
    StartChat {
        tag: RequestTag,
        group: String,
        request: ChatRequest,
    },
    /// Drop the request `tag` (which cancels its HTTP call).
    Cancel(RequestTag),
    /// Append a record to the current session's file.
    Persist(Record),
    /// From now on, append to the session `name`.
    SwitchSession(String),
    /// List the saved sessions.
    ListSessions,
    /// Search the saved sessions for this text.
    SearchSessions(String),
    /// Load the session `name`.
    LoadSession(String),
    /// Put this text on the clipboard (OSC 52).
    Copy(String),
    /// Suspend the UI and edit this text in `$EDITOR`.
    OpenEditor(String),
    /// Fetch metrics and health now.
    RefreshStatus,
    /// Read the request log for the stats view (off the UI loop); the result comes back as
    /// `Action::Stats`.
    ReadStats { window: StatsWindow, by: GroupBy },
    /// Start (`true`) or stop the timer that sends `Action::StatsDue`.
    StatsTimer(bool),
    /// Read role `name`; the result comes back as `Action::RoleLoaded`.
    LoadRole(String),
    /// Load theme `name`; the result comes back as `Action::ThemeLoaded`.
    LoadTheme(String),
    /// Rename the session `from` to `to` (appending goes on to the new name's file); the
    /// result comes back as `Action::SessionRenamed`.
    RenameSession { from: String, to: String },
    /// Delete the session `name`'s file; the result comes back as `Action::SessionDeleted`.
    DeleteSession(String),
    /// Read the files `paths` (`@path` in the message `text`, pastes already put back); the
    /// result comes back as `Action::Attached`.
    ReadAttachments { text: String, paths: Vec<String> },
    /// List the paths completing `@word`; they come back as `Action::PathsCompleted`.
    CompletePath { word: String },
    /// Save what request `request_id`'s attempts sent and received (taken from the router's
    /// capture), with its routing events, as answer `answer_id`'s wire record.
    SaveWire {
        answer_id: u64,
        request_id: u64,
        route: Vec<String>,
    },
    /// Read answer `answer_id`'s wire record (from memory while its request is recent, else
    /// from the session's wire file); it comes back as `Action::WireLoaded`.
    LoadWire {
        answer_id: u64,
        request_id: Option<u64>,
        route: Vec<String>,
    },
    /// Stop the UI loop.
    Quit,
}

/// How often the UI ticks while something animates (spinner, tokens/s, countdowns).
pub const TICK: Duration = Duration::from_millis(250);
