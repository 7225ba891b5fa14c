//! The monitor's screen, drawn from a [`MonitorState`] alone: a title line (server, link
//! state, in-flight requests, total cost), the metrics table (per deployment: requests,
//! error rate, TTFT and latency p50/p95, tokens, cost, rpm, cooldown) and the routing log,
//! newest line at the bottom. Text from the server is shown escaped, never as control
//! sequences. `NO_COLOR` turns colours off.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget};

use super::state::{Link, MonitorState, Tone};
use crate::sanitize::escape_controls;
use crate::serve::DeploymentHealth;

const MS_PER_SEC: u64 = 1000;
const SECS_PER_DAY: u64 = 86_400;
const SECS_PER_HOUR: u64 = 3600;
const SECS_PER_MINUTE: u64 = 60;
/// The metrics table never takes more than this share of the height (in percent).
const TABLE_MAX_PERCENT: u16 = 50;
/// Rows the table needs around its body: two borders and the header.
const TABLE_CHROME: u16 = 3;

/// Colours by role; all plain under `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    pub good: Style,
    pub warn: Style,
    pub bad: Style,
    pub muted: Style,
    pub accent: Style,
}

impl Palette {
    pub fn coloured() -> Palette {
        Palette {
            good: Style::new().fg(Color::Green),
            warn: Style::new().fg(Color::Yellow),
            bad: Style::new().fg(Color::Red),
            muted: Style::new().fg(Color::DarkGray),
            accent: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        }
    }

    pub fn plain() -> Palette {
        Palette {
            good: Style::new(),
            warn: Style::new(),
            bad: Style::new(),
            muted: Style::new(),
            accent: Style::new().add_modifier(Modifier::BOLD),
        }
    }

    /// Coloured unless `NO_COLOR` is set.
    pub fn from_env() -> Palette {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            Palette::plain()
        } else {
            Palette::coloured()
        }
    }

    fn tone(&self, tone: Tone) -> Style {
        match tone {
            Tone::Normal => Style::new(),
            Tone::Good => self.good,
            Tone::Warn => self.warn,
            Tone::Bad => self.bad,
            Tone::Meta => self.muted,
        }
    }
}

/// `HH:MM:SS` (UTC) of a Unix time in milliseconds.
pub fn clock(unix_ms: u64) -> String {
    let secs = (unix_ms / MS_PER_SEC) % SECS_PER_DAY;
    format!(
        "{:02}:{:02}:{:02}",
        secs / SECS_PER_HOUR,
        (secs % SECS_PER_HOUR) / SECS_PER_MINUTE,
        secs % SECS_PER_MINUTE
    )
}

/// `850ms`, `1.2s`, or `-`.
fn ms(d: Option<Duration>) -> String {
    match d {
        None => "-".to_string(),
        Some(d) if d < Duration::from_secs(1) => format!("{}ms", d.as_millis()),
        Some(d) => format!("{:.1}s", d.as_secs_f64()),
    }
}

fn pair(a: Option<Duration>, b: Option<Duration>) -> String {
    format!("{}/{}", ms(a), ms(b))
}

fn cooldown(h: Option<&DeploymentHealth>) -> (String, Tone) {
    match h {
        None => ("-".to_string(), Tone::Normal),
        Some(h) if h.unavailable.is_some() => ("unavailable".to_string(), Tone::Bad),
        Some(h) => match h.cooling_ms {
            Some(left) => (
                format!("cooling {}s", left.div_ceil(MS_PER_SEC)),
                Tone::Warn,
            ),
            None => ("ok".to_string(), Tone::Good),
        },
    }
}

fn rpm(h: Option<&DeploymentHealth>) -> String {
    match h {
        None => "-".to_string(),
        Some(h) => match h.rpm_limit {
            Some(limit) => format!("{}/{limit}", h.rpm_used),
            None => h.rpm_used.to_string(),
        },
    }
}

fn title(state: &MonitorState, p: &Palette) -> Line<'static> {
    let mut spans = vec![
        Span::styled("llmux monitor ", p.accent),
        Span::raw(escape_controls(&state.url).into_owned()),
        Span::raw("  "),
    ];
    match &state.link {
        Link::Connecting => spans.push(Span::styled("connecting…", p.warn)),
        Link::Live => spans.push(Span::styled("● live", p.good)),
        Link::Reconnecting { attempt, error } => spans.push(Span::styled(
            format!(
                "reconnecting… (attempt {attempt}: {})",
                escape_controls(error)
            ),
            p.bad,
        )),
    }
    // Numbers from a lost connection would look live: show them only while live.
    if let (Some(s), Link::Live) = (&state.snapshot, &state.link) {
        spans.push(Span::styled(
            format!(
                "  in flight {}  cost {}  up {}s",
                s.in_flight, s.metrics.total_cost, s.uptime_s
            ),
            p.muted,
        ));
    }
    if state.missed > 0 {
        spans.push(Span::styled(format!("  missed {}", state.missed), p.warn));
    }
    Line::from(spans)
}

/// Inner widths from which the table also shows the group and token columns.
const WIDE_TABLE: u16 = 100;

fn table(state: &MonitorState, p: &Palette, area: Rect, buf: &mut Buffer) {
    let wide = area.width.saturating_sub(2) >= WIDE_TABLE;
    // (title, width, shown when narrow)
    let columns: [(&str, Constraint, bool); 10] = [
        ("deployment", Constraint::Min(10), true),
        ("group", Constraint::Max(12), false),
        ("reqs", Constraint::Length(5), true),
        ("err%", Constraint::Length(5), true),
        ("ttft p50/95", Constraint::Length(11), true),
        ("lat p50/95", Constraint::Length(11), true),
        ("tok in/out", Constraint::Length(11), false),
        ("cost", Constraint::Length(9), true),
        ("rpm", Constraint::Length(7), true),
        ("state", Constraint::Length(11), true),
    ];
    let shown = |i: usize| wide || columns[i].2;
    let header = Row::new(
        columns
            .iter()
            .enumerate()
            .filter(|(i, _)| shown(*i))
            .map(|(_, c)| c.0),
    )
    .style(p.accent);
    let rows: Vec<Row> = state
        .snapshot
        .iter()
        .flat_map(|s| {
            s.metrics.deployments.iter().map(move |d| {
                let health = s.deployments.iter().find(|h| h.id == d.id);
                let (state_text, tone) = cooldown(health);
                let err_tone = if d.error_rate > 0.0 {
                    Tone::Bad
                } else {
                    Tone::Normal
                };
                let cells = [
                    Cell::from(escape_controls(&d.id).into_owned()),
                    Cell::from(escape_controls(&d.group).into_owned()),
                    Cell::from(d.requests.to_string()),
                    Cell::from(format!("{:.1}", d.error_rate * 100.0)).style(p.tone(err_tone)),
                    Cell::from(pair(d.ttft_p50, d.ttft_p95)),
                    Cell::from(pair(d.latency_p50, d.latency_p95)),
                    Cell::from(format!("{}/{}", d.tokens_in, d.tokens_out)),
                    Cell::from(d.cost.to_string()),
                    Cell::from(rpm(health)),
                    Cell::from(state_text).style(p.tone(tone)),
                ];
                Row::new(
                    cells
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| shown(*i))
                        .map(|(_, c)| c),
                )
            })
        })
        .collect();
    let widths: Vec<Constraint> = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| shown(*i))
        .map(|(_, c)| c.1)
        .collect();
    let empty = state.snapshot.is_none();
    let block = Block::new().borders(Borders::ALL).title(if empty {
        " metrics (waiting for the server) "
    } else {
        " metrics "
    });
    Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(block)
        .render(area, buf);
}

fn log(state: &MonitorState, p: &Palette, area: Rect, buf: &mut Buffer) {
    let block = Block::new().borders(Borders::ALL).title(" routing log ");
    let inner = block.inner(area);
    block.render(area, buf);
    let visible = usize::from(inner.height);
    let skip = state.log.len().saturating_sub(visible);
    let lines: Vec<Line> = state
        .log
        .iter()
        .skip(skip)
        .map(|l| {
            Line::from(vec![
                Span::styled(format!("{} ", clock(l.at_unix_ms)), p.muted),
                Span::styled(escape_controls(&l.text).into_owned(), p.tone(l.tone)),
            ])
        })
        .collect();
    Paragraph::new(lines).render(inner, buf);
}

/// Draws the whole screen into `area`.
pub fn render(state: &MonitorState, palette: &Palette, area: Rect, buf: &mut Buffer) {
    let rows = state
        .snapshot
        .as_ref()
        .map_or(1, |s| s.metrics.deployments.len().max(1)) as u16;
    let max_table = area.height.saturating_mul(TABLE_MAX_PERCENT) / 100;
    let table_height = (rows + TABLE_CHROME).min(max_table.max(TABLE_CHROME));
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_height),
        Constraint::Min(0),
    ])
    .areas(area);
    Paragraph::new(title(state, palette)).render(top, buf);
    table(state, palette, middle, buf);
    log(state, palette, bottom, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00");
        assert_eq!(clock((13 * 3600 + 4 * 60 + 5) * 1000 + 999), "13:04:05");
    }

    #[test]
    fn durations_read_as_ms_or_seconds() {
        assert_eq!(ms(Some(Duration::from_millis(850))), "850ms");
        assert_eq!(ms(Some(Duration::from_millis(1300))), "1.3s");
        assert_eq!(ms(None), "-");
    }
}
