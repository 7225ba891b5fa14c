//! Which side panes show: the ones wanted (toggled with F2–F4, else what suits the terminal's
//! size) that have room at the current size, where each pane goes ([`layout`]), and the
//! status-line note when a wanted pane folds for lack of room.

use super::app::App;
use super::layout::{self, Areas, Pane, Visible};
use super::picker;

impl App {
    /// Which side panes the user wants: as toggled, else what suits the terminal's size.
    pub fn wanted(&self) -> Visible {
        let d = layout::default_visible(self.size.0, self.size.1);
        Visible {
            models: self.toggles.models.unwrap_or(d.models),
            metrics: self.toggles.metrics.unwrap_or(d.metrics),
            log: self.toggles.log.unwrap_or(d.log),
        }
    }

    /// Which side panes show: those wanted that have room (`layout` folds the others).
    pub fn visible(&self) -> Visible {
        self.areas().shown()
    }

    /// The pane rectangles at the current size.
    pub fn areas(&self) -> Areas {
        let area = ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1);
        let lines = self.composer.lines().len().min(usize::from(u16::MAX)) as u16;
        // The pane's height in deployment rows (3 lines each): the live metrics with their
        // budget lines (and their header), or the stats view's lines when it shows.
        let budget_lines = match self.status.budgets.len() {
            0 => 0,
            n => n + 1,
        };
        let live = self.status.rows.len() + budget_lines.div_ceil(3);
        let rows = if self.stats.shown {
            live.max(self.stats.lines_wanted().div_ceil(3))
        } else {
            live
        };
        let models_rows = picker::visible_rows(&self.groups, "").len();
        let wants = layout::Wants {
            keep: self.toggles.last_on,
            composer_lines: lines,
            deployments: rows.min(usize::from(u16::MAX)) as u16,
            models_rows: models_rows.min(usize::from(u16::MAX)) as u16,
        };
        layout::areas(area, self.wanted(), wants)
    }

    /// Shows `pane` if hidden (ahead of the others where not all fit), else hides it.
    pub(crate) fn toggle_pane(&mut self, pane: Pane) {
        let shown = self.visible();
        let t = &mut self.toggles;
        let (slot, on) = match pane {
            Pane::Models => (&mut t.models, shown.models),
            Pane::Metrics => (&mut t.metrics, shown.metrics),
            Pane::Log => (&mut t.log, shown.log),
        };
        *slot = Some(!on);
        if !on {
            t.last_on = Some(pane);
        }
    }

    /// Says which wanted pane has just folded for lack of room (a toggle or a resize).
    pub(super) fn explain_folds(&mut self, before: Visible) {
        let (wanted, shown) = (self.wanted(), self.visible());
        let folded = |w: bool, s: bool| w && !s;
        let newly = [
            ("models", folded(wanted.models, shown.models), before.models),
            (
                "metrics",
                folded(wanted.metrics, shown.metrics),
                before.metrics,
            ),
            ("routing log", folded(wanted.log, shown.log), before.log),
        ];
        let names: Vec<&str> = newly
            .iter()
            .filter(|(_, now, was)| *now && !*was)
            .map(|(n, _, _)| *n)
            .collect();
        if !names.is_empty() {
            self.dirty = true;
            let (w, h) = self.size;
            self.toast(
                format!(
                    "no room for the {} pane at {w}x{h}: hide another pane or enlarge the terminal",
                    names.join(" and ")
                ),
                false,
            );
        }
    }

    /// The wanted panes that have no room.
    pub(super) fn folded(&self) -> Visible {
        let (wanted, shown) = (self.wanted(), self.visible());
        Visible {
            models: wanted.models && !shown.models,
            metrics: wanted.metrics && !shown.metrics,
            log: wanted.log && !shown.log,
        }
    }
}
