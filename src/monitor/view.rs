//! The monitor's screen, drawn from a [`MonitorState`] alone: two header lines (the server,
//! the link, in-flight requests and uptime; then the latest note about the link), and the
//! metrics pane and routing log pane the TUI draws ([`crate::widgets`]) over what the server
//! sent, in the TUI's theme. Side by side when the terminal is wide, one above the other when not. Text from the
//! server is shown escaped, never as control sequences.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::state::{Focus, Link, MonitorState, Tone};
use crate::sanitize::escape_controls;
use crate::widgets::metrics::{self, CostLine};
use crate::widgets::pane_block;
use crate::widgets::routelog;
use crate::widgets::theme::{Role, Theme};

const MS_PER_SEC: u64 = 1000;
const SECS_PER_DAY: u64 = 86_400;
const SECS_PER_HOUR: u64 = 3600;
const SECS_PER_MINUTE: u64 = 60;
/// From this width the two panes stand side by side (as in the TUI's wide layout).
const SIDE_BY_SIDE_WIDTH: u16 = 120;
/// The metrics pane's share of the width when side by side (percent).
const METRICS_WIDTH_PERCENT: u16 = 45;
/// The metrics pane never takes more than this share of the height when stacked (percent).
const METRICS_MAX_HEIGHT_PERCENT: u16 = 50;
/// Rows a pane's border takes.
const BORDER_ROWS: u16 = 2;

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

fn role_of(tone: Tone) -> Role {
    match tone {
        Tone::Good => Role::Success,
        Tone::Warn => Role::Warning,
        Tone::Bad => Role::Error,
    }
}

fn title(state: &MonitorState, theme: &Theme) -> Line<'static> {
    let muted = theme.fg(Role::Muted);
    let mut spans = vec![
        Span::styled("llmux monitor ", theme.fg(Role::Accent)),
        Span::styled(escape_controls(&state.url).into_owned(), theme.fg(Role::Fg)),
        Span::raw("  "),
    ];
    match &state.link {
        Link::Connecting => spans.push(Span::styled("connecting…", theme.fg(Role::Warning))),
        Link::Live => spans.push(Span::styled("● live", theme.fg(Role::Success))),
        Link::Reconnecting { attempt, error } => spans.push(Span::styled(
            format!(
                "reconnecting… (attempt {attempt}: {})",
                escape_controls(error)
            ),
            theme.fg(Role::Error),
        )),
    }
    // Numbers from a lost connection would look live: show them only while live.
    if let (Some(s), Link::Live) = (&state.snapshot, &state.link) {
        spans.push(Span::styled(
            format!("  in flight {}  up {}s", s.in_flight, s.uptime_s),
            muted,
        ));
    }
    if state.missed > 0 {
        spans.push(Span::styled(
            format!("  missed {}", state.missed),
            theme.fg(Role::Warning),
        ));
    }
    Line::from(spans)
}

/// The keys, at the title's right end when there is room for them.
const KEY_HINT: &str = "Tab pane · ↑↓ scroll · q quit";

fn note(state: &MonitorState, theme: &Theme) -> Line<'static> {
    match &state.note {
        None => Line::default(),
        Some(n) => {
            let stamp = if n.at_unix_ms == 0 {
                String::new()
            } else {
                format!("{} ", clock(n.at_unix_ms))
            };
            Line::from(vec![
                Span::styled(stamp, theme.fg(Role::Muted)),
                Span::styled(
                    escape_controls(&n.text).into_owned(),
                    theme.fg(role_of(n.tone)),
                ),
            ])
        }
    }
}

fn render_metrics(state: &MonitorState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let focused = state.focus == Focus::Metrics;
    if state.snapshot.is_none() {
        let block = pane_block(theme, "Metrics", focused);
        let inner = block.inner(area);
        block.render(area, buf);
        let waiting = Line::from(Span::styled(
            "waiting for the server's first snapshot",
            theme.fg(Role::Muted),
        ));
        if inner.height > 0 {
            buf.set_line(inner.x, inner.y, &waiting, inner.width);
        }
        return;
    }
    metrics::render(
        &state.status,
        CostLine::Server,
        area,
        buf,
        theme,
        focused,
        state.metrics_scroll,
    );
}

/// Draws the whole screen into `area`.
pub fn render(state: &MonitorState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    buf.set_style(area, theme.base_style());
    let [top, second, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    let title = title(state, theme);
    let hint_width = KEY_HINT.chars().count() as u16;
    if title.width() as u16 + hint_width + 2 <= top.width {
        let hint = Line::from(Span::styled(KEY_HINT, theme.fg(Role::Muted)));
        buf.set_line(top.right() - hint_width, top.y, &hint, hint_width);
    }
    buf.set_line(top.x, top.y, &title, top.width);
    buf.set_line(second.x, second.y, &note(state, theme), second.width);
    let (metrics_area, log_area) = if body.width >= SIDE_BY_SIDE_WIDTH {
        let [m, l] = Layout::horizontal([
            Constraint::Percentage(METRICS_WIDTH_PERCENT),
            Constraint::Min(0),
        ])
        .areas(body);
        (m, l)
    } else {
        // The metrics pane as tall as its lines (up to a share of the height), the log the rest.
        let content = metrics::line_count(&state.status);
        let wanted = u16::try_from(content)
            .unwrap_or(u16::MAX)
            .saturating_add(BORDER_ROWS);
        let most = body.height.saturating_mul(METRICS_MAX_HEIGHT_PERCENT) / 100;
        let height = wanted.min(most.max(BORDER_ROWS + 1));
        let [m, l] = Layout::vertical([Constraint::Length(height), Constraint::Min(0)]).areas(body);
        (m, l)
    };
    render_metrics(state, theme, metrics_area, buf);
    routelog::render(&state.log, log_area, buf, theme, state.focus == Focus::Log);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_and_odd_sizes_draw_without_panicking() {
        use crate::widgets::theme::ColorDepth;
        let theme = Theme::builtin_default(ColorDepth::Mono);
        let mut state = MonitorState::new("http://a-rather-long-host-name.example:4000");
        state.apply(super::super::Update::Disconnected {
            error: "refused".into(),
            at_unix_ms: 1,
        });
        let draw_all = |state: &MonitorState| {
            for (w, h) in [(1, 1), (20, 5), (200, 3), (80, 4), (119, 40), (120, 40)] {
                let area = Rect::new(0, 0, w, h);
                let mut buf = Buffer::empty(area);
                render(state, &theme, area, &mut buf);
                let first: String = (0..w).map(|x| buf[(x, 0)].symbol().to_string()).collect();
                let title = &"llmux monitor"[..usize::from(w).min(13)];
                assert!(first.starts_with(title), "{w}x{h}: {first}");
            }
        };
        draw_all(&state);
        let metrics = crate::metrics::Metrics::new();
        for id in ["a", "b", "c"] {
            metrics.seed_deployment(id, "fast");
        }
        state.apply(super::super::Update::Snapshot(Box::new(
            crate::protocol::events::MonitorSnapshot {
                at_unix_ms: 1,
                uptime_s: 1,
                in_flight: 0,
                metrics: metrics.snapshot(std::time::Instant::now()),
                deployments: ["a", "b", "c"]
                    .iter()
                    .map(|id| crate::protocol::events::DeploymentHealth {
                        id: (*id).into(),
                        group: "fast".into(),
                        cooling_ms: Some(3000),
                        cooldown_reason: None,
                        rpm_used: 1,
                        tpm_used: 2,
                        rpm_limit: Some(5),
                        tpm_limit: None,
                        unavailable: None,
                        failures_last_minute: 1,
                    })
                    .collect(),
                budgets: vec![crate::router::BudgetStatus {
                    scope: crate::router::budget::ScopeKind::App,
                    label: "llmux.budget".into(),
                    limit: crate::metrics::Usd::from_pico(50_000_000_000_000),
                    spent: crate::metrics::Usd::from_pico(45_000_000_000_000),
                    period: "1d".into(),
                    resets_in: Some(std::time::Duration::from_secs(3 * 3600)),
                }],
            },
        )));
        assert_eq!(state.status.rows.len(), 3);
        assert_eq!(state.status.budgets[0].percent(), 90);
        draw_all(&state);
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00");
        assert_eq!(clock((13 * 3600 + 4 * 60 + 5) * 1000 + 999), "13:04:05");
    }
}
