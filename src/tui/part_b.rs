//! The chat features of issue 18 part B, hooked into the app in one place each: compare
//! (`compare`), the inspector (`inspect`), attachments (`attach`) and what the config says of
//! each deployment's context window and images (`context`). Their state hangs off `App::b`; keys reach them before the overlays
//! ([`App::part_b_key`]) while one of them has the screen; they draw over the panes last
//! ([`render`]).

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use super::action::{Command, Effect};
use super::app::App;
use super::attach::Attach;
use super::compare::Compare;
use super::compare_view;
use super::context::Windows;
use super::inspect::{self, Inspect};
use crate::config::Config;

/// Part B's state.
#[derive(Debug, Default)]
pub struct PartB {
    pub compare: Compare,
    pub inspect: Inspect,
    pub attach: Attach,
    pub windows: Windows,
    /// The history's prompt tokens, by what they were counted of, for the meter.
    pub history_tokens: std::cell::Cell<Option<(HistoryKey, u64)>>,
}

/// What the meter's count of the history depends on: how many entries, the length of the
/// last, and whether the current group is sent the images.
pub type HistoryKey = (usize, usize, bool);

impl PartB {
    pub fn new(cfg: &Config) -> PartB {
        PartB {
            windows: Windows::of(cfg),
            ..PartB::default()
        }
    }
}

impl App {
    /// A key for compare or the inspector while one has the screen; `None` leaves the key to the rest.
    pub(crate) fn part_b_key(
        &mut self,
        ev: KeyEvent,
        bound: Option<Command>,
    ) -> Option<Vec<Effect>> {
        if self.b.inspect.shown() {
            return Some(self.inspect_key(ev, bound));
        }
        if self.b.compare.shown() {
            return Some(self.compare_key(ev, bound));
        }
        if ev.code == crossterm::event::KeyCode::Tab && ev.modifiers.is_empty() {
            return self.complete_key();
        }
        None
    }
}

/// Draws whichever of part B's views has the screen, over everything else.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if app.b.compare.shown() {
        compare_view::render(app, area, buf);
    }
    inspect::render(app, area, buf);
}
