//! The chat features of issue 18 part B, hooked into the app in one place each: compare
//! (`compare`). Their state hangs off `App::b`; keys reach them before the overlays
//! ([`App::part_b_key`]) while one of them has the screen; they draw over the panes last
//! ([`render`]).

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use super::action::{Command, Effect};
use super::app::App;
use super::compare::{self, Compare};
use crate::config::Config;

/// Part B's state.
#[derive(Debug, Default)]
pub struct PartB {
    pub compare: Compare,
}

impl PartB {
    pub fn new(_cfg: &Config) -> PartB {
        PartB::default()
    }
}

impl App {
    /// A key for compare while it has the screen; `None` leaves the key to the rest.
    pub(crate) fn part_b_key(
        &mut self,
        ev: KeyEvent,
        bound: Option<Command>,
    ) -> Option<Vec<Effect>> {
        if self.b.compare.shown() {
            return Some(self.compare_key(ev, bound));
        }
        None
    }
}

/// Draws whichever of part B's views has the screen, over everything else.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if app.b.compare.shown() {
        compare::render(app, area, buf);
    }
}
