//! The metrics pane's second view: usage stats from the request log over a chosen window
//! (1h, 24h, 7d, 30d), grouped by model, deployment, provider or tag, with a total — the same
//! counting as `llmux stats` (`store::stats`).
//!
//! The state, [`StatsPane`], lives in the app. When it needs numbers it returns
//! `Effect::ReadStats`; the runner calls [`read`] on a blocking thread (never on the UI loop)
//! and the report comes back as `Action::Stats`. While the view shows, the runner's timer
//! sends `Action::StatsDue` every [`REFRESH`], and a finished request asks again. Rendering
//! reads only the state, so the view is tested on constructed reports.

use std::path::Path;
use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::sanitize::escape_line;
use crate::store::stats::{self, DeploymentFacts, GroupBy, StatsReport, StatsRow, UNTAGGED};

use super::action::{Command, Effect};
use super::app::App;
use super::fmt;
use super::keys::KeyMap;
use super::metrics::pair;
use super::theme::{Role, Theme};

/// How often the view reads the log again while it shows.
pub const REFRESH: Duration = Duration::from_secs(10);
/// The groupings the view cycles through, in order.
pub const GROUPINGS: [GroupBy; 4] = [
    GroupBy::Model,
    GroupBy::Deployment,
    GroupBy::Provider,
    GroupBy::Tag,
];
/// Lines each row takes.
const LINES_PER_ROW: usize = 2;
/// Lines besides the rows: the total (two), a note and the key hint.
const FIXED_LINES: usize = 4;

/// How far back the view looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatsWindow {
    Hour,
    #[default]
    Day,
    Week,
    Month,
}

impl StatsWindow {
    /// In the order the window key cycles.
    pub const ALL: [StatsWindow; 4] = [
        StatsWindow::Hour,
        StatsWindow::Day,
        StatsWindow::Week,
        StatsWindow::Month,
    ];

    pub fn label(self) -> &'static str {
        match self {
            StatsWindow::Hour => "1h",
            StatsWindow::Day => "24h",
            StatsWindow::Week => "7d",
            StatsWindow::Month => "30d",
        }
    }

    pub fn ms(self) -> u64 {
        const HOUR_MS: u64 = 3_600_000;
        match self {
            StatsWindow::Hour => HOUR_MS,
            StatsWindow::Day => stats::DAY_MS,
            StatsWindow::Week => 7 * stats::DAY_MS,
            StatsWindow::Month => 30 * stats::DAY_MS,
        }
    }

    pub fn next(self) -> StatsWindow {
        let i = StatsWindow::ALL
            .iter()
            .position(|w| *w == self)
            .unwrap_or(0);
        StatsWindow::ALL[(i + 1) % StatsWindow::ALL.len()]
    }
}

/// One read of the log: what it was read for and what it said.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRead {
    pub window: StatsWindow,
    pub by: GroupBy,
    pub report: Result<StatsReport, String>,
}

/// The stats view's state.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsPane {
    /// The metrics pane shows these stats instead of the live metrics.
    pub shown: bool,
    pub window: StatsWindow,
    pub by: GroupBy,
    /// The latest read.
    pub last: Option<StatsRead>,
    /// A read is under way.
    pub reading: bool,
    /// Something asked for a read while one was under way: read again when it lands.
    pub reread: bool,
}

impl Default for StatsPane {
    fn default() -> StatsPane {
        StatsPane {
            shown: false,
            window: StatsWindow::default(),
            by: GroupBy::Model,
            last: None,
            reading: false,
            reread: false,
        }
    }
}

impl StatsPane {
    /// Asks for a read, unless one is under way (then one more follows it).
    pub fn request(&mut self) -> Vec<Effect> {
        if self.reading {
            self.reread = true;
            return Vec::new();
        }
        self.reading = true;
        vec![Effect::ReadStats {
            window: self.window,
            by: self.by,
        }]
    }

    /// A read landed; reads again if it is stale.
    pub fn received(&mut self, read: StatsRead) -> Vec<Effect> {
        self.reading = false;
        let stale = read.window != self.window || read.by != self.by;
        self.last = Some(read);
        if (std::mem::take(&mut self.reread) || stale) && self.shown {
            return self.request();
        }
        Vec::new()
    }

    pub fn next_group(&mut self) {
        let i = GROUPINGS.iter().position(|g| *g == self.by).unwrap_or(0);
        self.by = GROUPINGS[(i + 1) % GROUPINGS.len()];
    }

    /// The report for the current window and grouping, if it has been read.
    pub fn current(&self) -> Option<&Result<StatsReport, String>> {
        self.last
            .as_ref()
            .filter(|r| r.window == self.window && r.by == self.by)
            .map(|r| &r.report)
    }

    /// Lines the view wants (for the pane's height).
    pub fn lines_wanted(&self) -> usize {
        let rows = match self.current() {
            Some(Ok(r)) => r.rows.len(),
            _ => 1,
        };
        rows * LINES_PER_ROW + FIXED_LINES
    }
}

impl App {
    /// Shows or hides the stats view, or changes its window or grouping (which shows it).
    pub(crate) fn stats_command(&mut self, c: Command) -> Vec<Effect> {
        let was_shown = self.stats.shown;
        match c {
            Command::ToggleStats => self.stats.shown = !self.stats.shown,
            Command::StatsWindow => {
                self.stats.window = self.stats.window.next();
                self.stats.shown = true;
            }
            _ => {
                self.stats.next_group();
                self.stats.shown = true;
            }
        }
        self.metrics_scroll = 0;
        if !self.stats.shown {
            return vec![Effect::StatsTimer(false)];
        }
        // The view lives in the metrics pane: bring it back if it was folded away.
        if !self.visible().metrics {
            self.toggles.metrics = Some(true);
        }
        let mut fx = Vec::new();
        if !was_shown {
            fx.push(Effect::StatsTimer(true));
        }
        fx.extend(self.stats.request());
        fx
    }
}

/// Reads the log at `path` for the last `window` before `now_unix_ms`. A log that does not
/// exist yet is an empty report, not an error.
pub fn read(
    path: Option<&Path>,
    window: StatsWindow,
    by: GroupBy,
    facts: &DeploymentFacts,
    now_unix_ms: u64,
) -> StatsRead {
    let since = Some(now_unix_ms.saturating_sub(window.ms()));
    let report = match path {
        None => Err("no data directory for the request log (set LLMUX_DATA_DIR)".to_string()),
        Some(p) => match stats::read_log(p, since, by, facts) {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                stats::summarize(std::io::empty(), since, by, facts).map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("cannot read {}: {e}", p.display())),
        },
    };
    StatsRead { window, by, report }
}

/// `$0.0123`, with `+?` when some requests had no known price (as every total shows it).
fn cost(r: &StatsRow) -> String {
    fmt::Spend {
        known: r.cost_usd,
        unpriced: r.unpriced > 0,
    }
    .to_string()
}

/// A row's two lines.
fn row_lines(r: &StatsRow, key_style: Style, theme: &Theme) -> [Line<'static>; 2] {
    let muted = theme.fg(Role::Muted);
    let fg = theme.fg(Role::Fg);
    let err_style = if r.failures > 0 {
        theme.fg(Role::Error)
    } else {
        fg
    };
    let mut first = vec![
        // A key is a tag a client sent or a deployment id: shown escaped, as the chat shows text.
        Span::styled(escape_line(&r.key).into_owned(), key_style),
        Span::styled(format!("  {} req ", r.requests), fg),
        Span::styled(format!("{:.0}% err", 100.0 * r.error_rate), err_style),
    ];
    if r.cached > 0 {
        first.push(Span::styled(
            format!(" {} cached", r.cached),
            theme.fg(Role::Info),
        ));
    }
    first.push(Span::styled(format!("  {}", cost(r)), fg));
    let second = vec![
        Span::styled("  tok ", muted),
        Span::styled(
            format!("{}/{}", fmt::count(r.tokens_in), fmt::count(r.tokens_out)),
            fg,
        ),
        Span::styled(" ttft ", muted),
        Span::styled(pair(r.ttft_p50_ms, r.ttft_p95_ms), fg),
        Span::styled(" lat ", muted),
        Span::styled(pair(r.latency_p50_ms, r.latency_p95_ms), fg),
    ];
    [Line::from(first), Line::from(second)]
}

/// The lines of the view's content.
pub fn lines(pane: &StatsPane, keymap: &KeyMap, theme: &Theme) -> Vec<Line<'static>> {
    let muted = theme.fg(Role::Muted);
    let mut out = Vec::new();
    match pane.current() {
        None => out.push(Line::from(Span::styled("reading the request log…", muted))),
        Some(Err(e)) => out.push(Line::from(Span::styled(
            escape_line(e).into_owned(),
            theme.fg(Role::Error),
        ))),
        Some(Ok(report)) if report.rows.is_empty() => out.push(Line::from(Span::styled(
            format!("no requests in the last {}", pane.window.label()),
            muted,
        ))),
        Some(Ok(report)) => {
            let key_style = theme.fg(Role::Fg).add_modifier(Modifier::BOLD);
            for r in &report.rows {
                out.extend(row_lines(r, key_style, theme));
            }
            let total_style = theme.fg(Role::Accent).add_modifier(Modifier::BOLD);
            out.extend(row_lines(&report.total, total_style, theme));
            let note = match pane.by {
                GroupBy::Tag => Some(format!(
                    "request + deployment tags; {UNTAGGED}; total: once each"
                )),
                GroupBy::Deployment | GroupBy::Provider => {
                    Some("rows count attempts (a retry counts again)".to_string())
                }
                GroupBy::Model | GroupBy::Day => None,
            };
            out.extend(note.map(|n| Line::from(Span::styled(n, muted))));
        }
    }
    out.push(Line::from(Span::styled(
        format!(
            "{} live · {} window · {} group",
            keymap.label(Command::ToggleStats),
            keymap.label(Command::StatsWindow),
            keymap.label(Command::StatsGroup),
        ),
        muted,
    )));
    out
}

/// The pane's title: `Stats · 24h · by model`.
pub fn title(pane: &StatsPane) -> String {
    let reading = if pane.reading { " …" } else { "" };
    format!(
        "Stats · {} · by {}{reading}",
        pane.window.label(),
        pane.by.name()
    )
}

/// Draws the view in the metrics pane's place.
pub fn render(
    pane: &StatsPane,
    keymap: &KeyMap,
    area: Rect,
    buf: &mut Buffer,
    theme: &Theme,
    focused: bool,
    scroll: usize,
) {
    let block = super::view::pane_block(theme, &title(pane), focused);
    let inner = block.inner(area);
    block.render(area, buf);
    let lines = lines(pane, keymap, theme);
    super::view::render_scrolled(buf, inner, &lines, scroll);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_groupings_cycle() {
        let labels: Vec<&str> = std::iter::successors(Some(StatsWindow::Hour), |w| {
            Some(w.next()).filter(|n| *n != StatsWindow::Hour)
        })
        .map(StatsWindow::label)
        .collect();
        assert_eq!(labels, ["1h", "24h", "7d", "30d"]);
        let mut pane = StatsPane::default();
        let mut seen = vec![pane.by];
        for _ in 0..4 {
            pane.next_group();
            seen.push(pane.by);
        }
        assert_eq!(seen.first(), seen.last());
        assert_eq!(seen[3], GroupBy::Tag);
    }

    #[test]
    fn one_read_at_a_time_and_a_stale_one_is_read_again() {
        let mut pane = StatsPane {
            shown: true,
            ..StatsPane::default()
        };
        assert_eq!(pane.request().len(), 1);
        assert!(pane.request().is_empty(), "a read is under way");
        pane.next_group();
        let empty = stats::summarize(std::io::empty(), None, GroupBy::Model, &Default::default());
        let fx = pane.received(StatsRead {
            window: pane.window,
            by: GroupBy::Model,
            report: empty.map_err(|e| e.to_string()),
        });
        assert_eq!(
            fx,
            vec![Effect::ReadStats {
                window: StatsWindow::Day,
                by: GroupBy::Deployment
            }]
        );
        assert!(
            pane.current().is_none(),
            "the landed read is for another grouping"
        );
    }
}
