//! What each bound [`Command`] does to the [`App`]: sending, cancelling, switching models and
//! conversations, opening overlays, toggling panes, moving the focus and scrolling the focused
//! pane, copying. `App::update` resolves a key to a command (`input`) and hands it here; like
//! the rest of the state machine, nothing here does IO, it returns [`Effect`]s.

use super::action::{Command, Effect};
use super::app::{App, Focus, Overlay};
use super::conversation::{ConversationView, Ctx};
use super::layout::Pane;
use super::markdown;
use super::picker::{self, PickerState};
use super::routelog;
use crate::store::session::{AnswerState, Entry};

impl App {
    pub(crate) fn command(&mut self, c: Command) -> Vec<Effect> {
        match c {
            Command::Quit => self.quit(),
            Command::Send => self.send_or_run(),
            Command::Newline => {
                self.focus = Focus::Composer;
                self.composer.insert_newline();
                Vec::new()
            }
            Command::NextModel | Command::PrevModel => {
                let n = self.groups.len().max(1);
                let step = if c == Command::NextModel { 1 } else { n - 1 };
                self.current = (self.current + step) % n;
                let name = self.current_group().to_string();
                self.toast(format!("model: {name}"), false);
                Vec::new()
            }
            Command::OpenPicker => {
                self.overlay = Some(Overlay::Picker(PickerState::open(
                    &self.groups,
                    self.current,
                )));
                Vec::new()
            }
            Command::Cancel => {
                if self.overlay.take().is_some() {
                    return Vec::new();
                }
                if let Some(f) = &self.inflight {
                    let kept = self
                        .answer(f.answer_id)
                        .is_some_and(|a| !a.text.is_empty() || !a.tool_calls.is_empty());
                    let fx = self.abandon_inflight(AnswerState::Cancelled);
                    self.toast(
                        if kept {
                            "cancelled; the partial answer is kept"
                        } else {
                            "cancelled before any answer came"
                        },
                        false,
                    );
                    return fx;
                }
                if self.stop_editing() {
                    return Vec::new();
                }
                let quit = self.keymap.label(Command::Quit);
                self.toast(format!("nothing to cancel · {quit} quits"), false);
                Vec::new()
            }
            Command::Regenerate => self.regenerate(),
            Command::CopyLast => match self.last_answer_text() {
                Some(t) => vec![Effect::Copy(t)],
                None => {
                    self.toast("no answer to copy yet", true);
                    Vec::new()
                }
            },
            Command::CopyCode => self.copy_code(None),
            Command::NewConversation => {
                let mut fx = self.abandon_inflight(AnswerState::Cancelled);
                fx.extend(self.save_draft());
                self.entries.clear();
                self.branches = Default::default();
                self.editing = None;
                self.find = None;
                self.view = ConversationView::default();
                self.session = crate::store::session::new_session_name((self.clock)());
                self.session_spent = crate::money::Usd::ZERO;
                self.session_cost_unknown = false;
                self.settings = Default::default();
                // The draft moves to the new conversation and is saved there on exit.
                self.saved_draft = String::new();
                self.toast(format!("new conversation {}", self.session), false);
                fx.push(Effect::SwitchSession(self.session.clone()));
                fx
            }
            Command::OpenSessions => {
                self.list.edit = None;
                self.list.open_find = None;
                self.overlay = Some(Overlay::Sessions {
                    list: None,
                    selected: 0,
                    query: String::new(),
                    found: None,
                });
                vec![Effect::ListSessions]
            }
            Command::Help => {
                self.overlay = match self.overlay {
                    Some(Overlay::Help { .. }) => None,
                    _ => Some(Overlay::Help { scroll: 0 }),
                };
                Vec::new()
            }
            Command::FocusNext => {
                self.cycle_focus(1);
                Vec::new()
            }
            Command::FocusPrev => {
                self.cycle_focus(-1);
                Vec::new()
            }
            Command::ToggleModels | Command::ToggleMetrics | Command::ToggleLog => {
                self.toggle_pane(match c {
                    Command::ToggleModels => Pane::Models,
                    Command::ToggleMetrics => Pane::Metrics,
                    _ => Pane::Log,
                });
                if !self.focusable().contains(&self.focus) {
                    self.focus = Focus::Composer;
                }
                Vec::new()
            }
            Command::LogFailures => {
                self.log.failures_only = !self.log.failures_only;
                self.log.scroll = 0;
                // The filter shows in the log: bring it back if it was folded away.
                if !self.visible().log {
                    self.toggles.log = Some(true);
                }
                let what = if self.log.failures_only {
                    "routing log: failures only"
                } else {
                    "routing log: every event"
                };
                self.toast(what, false);
                Vec::new()
            }
            Command::ScrollUp => self.scroll_focused(-1),
            Command::ScrollDown => self.scroll_focused(1),
            Command::PageUp => {
                let page = self.page();
                self.scroll_focused(-page)
            }
            Command::PageDown => {
                let page = self.page();
                self.scroll_focused(page)
            }
            Command::ScrollTop => {
                match self.focus {
                    Focus::Log => self.log.scroll = self.log_max_scroll(),
                    Focus::Metrics => self.metrics_scroll = 0,
                    _ => self.view.scroll_top(),
                }
                Vec::new()
            }
            Command::ScrollBottom => {
                match self.focus {
                    Focus::Log => self.log.scroll = 0,
                    Focus::Metrics => self.metrics_scroll = self.metrics_max_scroll(),
                    _ => self.view.scroll_bottom(),
                }
                Vec::new()
            }
            Command::EditExternal => vec![Effect::OpenEditor(self.draft())],
            Command::ToggleStats | Command::StatsWindow | Command::StatsGroup => {
                self.stats_command(c)
            }
            Command::Palette => {
                self.overlay = match self.overlay {
                    Some(Overlay::Palette(_)) => None,
                    _ => Some(Overlay::Palette(Default::default())),
                };
                Vec::new()
            }
            Command::Compare => self.open_compare(),
            Command::Inspect => self.open_inspect(),
        }
    }

    pub(crate) fn page(&self) -> i64 {
        let a = self.areas();
        let h = match self.focus {
            Focus::Log => a.log.map_or(1, |r| r.height),
            _ => a.conversation.height.saturating_sub(self.pinned_lines()),
        };
        i64::from(h.saturating_sub(3).max(1))
    }

    pub(crate) fn scroll_focused(&mut self, delta: i64) -> Vec<Effect> {
        match self.focus {
            Focus::Log => {
                let s = self.log.scroll as i64 - delta;
                self.log.scroll = s.clamp(0, self.log_max_scroll() as i64) as usize;
            }
            Focus::Metrics => {
                let max = self.metrics_max_scroll() as i64;
                self.metrics_scroll = (self.metrics_scroll as i64 + delta).clamp(0, max) as usize;
            }
            Focus::Models => {
                let n = picker::visible_rows(&self.groups, "").len().max(1) as i64;
                self.models_selected =
                    (self.models_selected as i64 + delta).clamp(0, n - 1) as usize;
            }
            Focus::Composer | Focus::Conversation => self.scroll_conversation(delta),
        }
        Vec::new()
    }

    /// The metrics pane's largest useful scroll at its current size: the last deployment in
    /// sight above the pinned totals (or, in the stats view, its last line at the foot).
    fn metrics_max_scroll(&self) -> usize {
        let height = self
            .areas()
            .metrics
            .map_or(0, |r| r.height.saturating_sub(2) as usize);
        if self.stats.shown {
            self.stats.lines_wanted().saturating_sub(height)
        } else {
            super::metrics::max_scroll(&self.status, height)
        }
    }

    /// The routing log's largest useful scroll at its current size (its first event on top).
    fn log_max_scroll(&self) -> usize {
        let Some(area) = self.areas().log else {
            return 0;
        };
        let (w, h) = (area.width.saturating_sub(2), area.height.saturating_sub(2));
        routelog::max_scroll(&self.log, w.into(), h.into(), &self.theme)
    }

    pub(crate) fn scroll_conversation(&mut self, delta: i64) {
        let area = self.areas().conversation;
        let (w, h) = (
            area.width.saturating_sub(2),
            area.height.saturating_sub(2 + self.pinned_lines()) as usize,
        );
        let ctx = Ctx {
            theme: &self.theme,
            highlighter: &self.highlighter,
        };
        self.view.scroll_by(&self.entries, w, h, delta, ctx);
    }

    /// The focusable panes in Tab order.
    pub fn focusable(&self) -> Vec<Focus> {
        let vis = self.visible();
        let mut v = vec![Focus::Composer, Focus::Conversation];
        if vis.models {
            v.push(Focus::Models);
        }
        if vis.metrics {
            v.push(Focus::Metrics);
        }
        if vis.log {
            v.push(Focus::Log);
        }
        v
    }

    pub(crate) fn cycle_focus(&mut self, step: i64) {
        let order = self.focusable();
        let i = order.iter().position(|f| *f == self.focus).unwrap_or(0) as i64;
        let n = order.len() as i64;
        self.focus = order[(i + step).rem_euclid(n) as usize];
        if self.focus == Focus::Models {
            let rows = picker::visible_rows(&self.groups, "");
            self.models_selected = rows
                .iter()
                .position(|r| *r == picker::Row::Group(self.current))
                .unwrap_or(0);
        }
    }

    pub(crate) fn last_answer_text(&self) -> Option<String> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Answer(a) if !a.text.is_empty() => Some(a.text.clone()),
            _ => None,
        })
    }

    /// Copies code block `n` (1-based) of the last answer, or its last block.
    pub(crate) fn copy_code(&mut self, n: Option<usize>) -> Vec<Effect> {
        let Some(text) = self.last_answer_text() else {
            self.toast("no answer to copy from yet", true);
            return Vec::new();
        };
        let blocks = markdown::code_blocks(&text);
        let pick = match n {
            Some(n) => blocks.get(n.wrapping_sub(1)),
            None => blocks.last(),
        };
        match pick {
            Some(code) => vec![Effect::Copy(code.clone())],
            None => {
                let what = n.map_or("code block".to_string(), |n| format!("code block {n}"));
                self.toast(format!("the last answer has no {what}"), true);
                Vec::new()
            }
        }
    }

    pub(crate) fn select_group(&mut self, gi: usize) {
        if gi < self.groups.len() {
            self.current = gi;
            let name = self.current_group().to_string();
            self.toast(format!("model: {name}"), false);
        }
    }
}
