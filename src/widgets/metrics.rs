//! The metrics pane and the [`StatusView`] it and the picker draw from: per deployment its
//! health (healthy, cooling with seconds left, failing), requests, error rate, TTFT and
//! latency p50/p95, tokens/s, cost, rpm/tpm used against the limit and sparklines; then the
//! session's and all-time cost, and each budget's spend in its period (`BudgetLine`, also the
//! status line's badge once one passes 80%). Its other view, usage stats from the request log over a
//! window, is `statsview` (toggled with `toggle_stats`).
//!
//! The runner builds a `StatusView` from `Router::deployments()` and `Router::metrics()` (at a
//! human rate, not per frame) and hands it to the app as `Action::Status`; rendering reads
//! only the view, so the pane is tested on constructed data.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthStr;

use crate::metrics::MetricsSnapshot;
use crate::money::Usd;
use crate::protocol::events::{DeploymentHealth, MonitorSnapshot};
use crate::router::budget::short_duration;
use crate::router::{BudgetStatus, DeploymentStatus, LimitKind, Router};

use super::fmt;
use super::theme::{Role, Theme};

/// Bars of a text sparkline, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Columns of each sparkline.
const SPARK_WIDTH: usize = 10;
/// Lines the pane gives each deployment.
const LINES_PER_ROW: usize = 3;
/// A budget this used (in percent) shows as a warning; at [`BUDGET_FULL`] as an error.
pub const BUDGET_WARN: u64 = 80;
pub const BUDGET_FULL: u64 = 100;

/// How a deployment is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    #[default]
    Healthy,
    /// Skipped for this many more milliseconds.
    Cooling { ms_left: u64 },
    /// Failures in the last minute, not (yet) cooling.
    Failing { recent: u32 },
    /// At its rpm/tpm limit or over a budget: skipped for this many more milliseconds.
    Limited { kind: LimitKind, ms_left: u64 },
    /// Cannot be called (a missing key variable).
    Unavailable,
}

impl Health {
    /// The dot and its role; distinct glyphs so the state reads without colour.
    pub fn dot(self) -> (&'static str, Role) {
        match self {
            Health::Healthy => ("●", Role::Success),
            Health::Cooling { .. } => ("◐", Role::Warning),
            Health::Failing { .. } => ("✖", Role::Error),
            Health::Limited { .. } => ("◔", Role::Warning),
            Health::Unavailable => ("○", Role::Muted),
        }
    }

    pub fn describe(self) -> String {
        match self {
            Health::Healthy => "healthy".to_string(),
            Health::Cooling { ms_left } => format!("cooling {}", fmt::secs_left(ms_left)),
            Health::Failing { recent } => format!("failing {recent}/min"),
            Health::Limited { kind, ms_left } => {
                let what = match kind {
                    LimitKind::Rpm => "rpm limit",
                    LimitKind::Tpm => "tpm limit",
                    LimitKind::Budget => "over budget",
                };
                let wait = Duration::from_millis(ms_left);
                let wait = if wait < Duration::from_secs(60) {
                    fmt::secs_left(ms_left)
                } else {
                    short_duration(wait)
                };
                // As short as "cooling 8s": the time is until it can be picked again.
                format!("{what} {wait}")
            }
            Health::Unavailable => "no key".to_string(),
        }
    }
}

/// One deployment's numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentRow {
    pub id: String,
    pub group: String,
    pub health: Health,
    pub requests: u64,
    pub errors: u64,
    /// Failures over finished attempts in the metrics window.
    pub error_rate: Option<f64>,
    pub ttft_p50_ms: Option<u64>,
    pub ttft_p95_ms: Option<u64>,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub tokens_per_s: Option<f64>,
    /// Spent on this deployment (its priced attempts); `None` when not known yet.
    pub cost: Option<Usd>,
    /// Attempts billed at an unknown price (shown as `+?`).
    pub unpriced: u64,
    pub in_flight: u32,
    pub rpm_used: u32,
    pub rpm_limit: Option<u32>,
    pub tpm_used: u64,
    pub tpm_limit: Option<u64>,
    /// Input and output price per token.
    pub price: Option<(Usd, Usd)>,
    /// Latency per time bucket (oldest first) and errors per bucket.
    pub latency_spark: Vec<u64>,
    pub error_spark: Vec<u64>,
}

/// What the metrics pane and the picker show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusView {
    pub rows: Vec<DeploymentRow>,
    /// Spent through this router since it started.
    pub run_cost: Usd,
    /// Attempts of this run billed at an unknown price.
    pub run_unpriced: u64,
    /// Spent before this run, once the runner has read the request log through
    /// `store::stats::cost_before` (the same counting as `llmux stats`).
    pub earlier_cost: Option<crate::store::stats::CostTotal>,
    /// Every budget (`llmux.budget`, provider, deployment) with its spend this period.
    pub budgets: Vec<BudgetLine>,
}

/// One budget as the pane and the status line show it.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetLine {
    /// `llmux.budget`, a provider, or `deployment <id>`.
    pub label: String,
    pub spent: Usd,
    pub limit: Usd,
    /// The period as written (`1d`).
    pub period: String,
    /// Until the running period ends; `None` while none runs.
    pub resets_in_ms: Option<u64>,
}

impl BudgetLine {
    fn from_status(b: &BudgetStatus) -> BudgetLine {
        BudgetLine {
            label: b.label.clone(),
            spent: b.spent,
            limit: b.limit,
            period: b.period.clone(),
            resets_in_ms: b.resets_in.map(|d| d.as_millis() as u64),
        }
    }

    /// Whole percent used (a zero limit is always used up).
    pub fn percent(&self) -> u64 {
        self.spent.percent_of(self.limit)
    }

    /// Muted under 80%, a warning from 80%, an error once used up.
    pub fn role(&self) -> Role {
        match self.percent() {
            p if p >= BUDGET_FULL => Role::Error,
            p if p >= BUDGET_WARN => Role::Warning,
            _ => Role::Muted,
        }
    }
}

impl StatusView {
    /// Reads the router's health and metrics now.
    pub fn from_router(router: &Router) -> StatusView {
        StatusView::assemble(
            router.deployments().iter().map(row_from_status).collect(),
            &router.budgets(),
            &router.metrics(),
        )
    }

    /// A server's snapshot from `/llmux/events` (`llmux monitor`).
    pub fn from_snapshot(s: &MonitorSnapshot) -> StatusView {
        StatusView::assemble(
            s.deployments.iter().map(row_from_health).collect(),
            &s.budgets,
            &s.metrics,
        )
    }

    fn assemble(
        rows: Vec<DeploymentRow>,
        budgets: &[BudgetStatus],
        metrics: &MetricsSnapshot,
    ) -> StatusView {
        let mut view = StatusView {
            rows,
            budgets: budgets.iter().map(BudgetLine::from_status).collect(),
            ..StatusView::default()
        };
        fill_from_metrics(&mut view, metrics);
        view
    }

    pub fn row(&self, id: &str) -> Option<&DeploymentRow> {
        self.rows.iter().find(|r| r.id == id)
    }

    /// The most used budget once it passes 80%, for the status line.
    pub fn budget_alert(&self) -> Option<&BudgetLine> {
        self.budgets
            .iter()
            .filter(|b| b.percent() >= BUDGET_WARN)
            .max_by_key(|b| b.percent())
    }

    /// True while some deployment counts down a cooldown or a limit (the UI then ticks once
    /// a second).
    pub fn any_cooling(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.health, Health::Cooling { .. } | Health::Limited { .. }))
    }
}

fn row_from_status(s: &DeploymentStatus) -> DeploymentRow {
    let mut row = DeploymentRow {
        price: s.price.map(|p| (p.input, p.output)),
        ..row_from_health(&DeploymentHealth::from(s))
    };
    // A deployment at a limit is skipped like a cooling one: never shown green.
    if let (Some(l), Health::Healthy | Health::Failing { .. }) = (s.limited, row.health) {
        row.health = Health::Limited {
            kind: l.kind,
            ms_left: l.free_in.as_millis() as u64,
        };
    }
    row
}

/// The health of a deployment as a server reports it (`llmux monitor`).
fn row_from_health(h: &DeploymentHealth) -> DeploymentRow {
    let health = if h.unavailable.is_some() {
        Health::Unavailable
    } else if let Some(ms_left) = h.cooling_ms {
        Health::Cooling { ms_left }
    } else if h.failures_last_minute > 0 {
        Health::Failing {
            recent: h.failures_last_minute,
        }
    } else {
        Health::Healthy
    };
    DeploymentRow {
        id: h.id.clone(),
        group: h.group.clone(),
        health,
        rpm_used: h.rpm_used,
        rpm_limit: h.rpm_limit,
        tpm_used: h.tpm_used,
        tpm_limit: h.tpm_limit,
        ..DeploymentRow::default()
    }
}

/// Copies the metrics snapshot's numbers into the rows.
pub fn fill_from_metrics(view: &mut StatusView, snapshot: &MetricsSnapshot) {
    let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
    for row in &mut view.rows {
        let Some(d) = snapshot.deployment(&row.id) else {
            continue;
        };
        row.requests = d.requests;
        row.errors = d.failed();
        row.error_rate = Some(d.error_rate);
        row.ttft_p50_ms = ms(d.ttft_p50);
        row.ttft_p95_ms = ms(d.ttft_p95);
        row.latency_p50_ms = ms(d.latency_p50);
        row.latency_p95_ms = ms(d.latency_p95);
        row.tokens_per_s = d.tokens_per_s;
        row.cost = Some(d.cost);
        row.unpriced = d.unpriced;
        row.in_flight = d.in_flight;
        row.latency_spark = d.latency_spark.clone();
        row.error_spark = d.error_spark.clone();
    }
    view.run_cost = snapshot.total_cost;
    view.run_unpriced = snapshot.unpriced_requests;
}

/// Text sparkline of `values` scaled to their maximum, right-aligned in `width` columns.
pub fn sparkline(values: &[u64], width: usize) -> String {
    let tail = &values[values.len().saturating_sub(width)..];
    let max = tail.iter().copied().max().unwrap_or(0);
    let mut s: String = " ".repeat(width - tail.len());
    for v in tail {
        let i = if max == 0 {
            0
        } else {
            ((*v as f64 / max as f64) * (BARS.len() - 1) as f64).round() as usize
        };
        s.push(BARS[i.min(BARS.len() - 1)]);
    }
    s
}

/// `240/410ms`, `1.5/2.3s`, or `43ms/1.4s`: two durations, sharing a unit when they can (a
/// small one keeps its own rather than reading `0.0s`).
pub fn pair(a: Option<u64>, b: Option<u64>) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return "–".to_string();
    };
    let secs = |v: u64| format!("{:.1}", v as f64 / 1000.0);
    match (a < 1000, b < 1000) {
        (true, true) => format!("{a}/{b}ms"),
        (false, false) => format!("{}/{}s", secs(a), secs(b)),
        (true, false) => format!("{a}ms/{}s", secs(b)),
        (false, true) => format!("{}s/{b}ms", secs(a)),
    }
}

fn limit<T: std::fmt::Display>(used: String, lim: Option<T>) -> String {
    match lim {
        Some(l) => format!("{used}/{l}"),
        None => used,
    }
}

/// What the pane's last line sums up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostLine {
    /// The chat app: this session's cost, then all time.
    Session(fmt::Spend),
    /// `llmux monitor`: what the watched server spent since it started.
    Server,
}

/// How many lines [`lines`] gives `view`: for sizing and scrolling the pane without drawing it.
pub fn line_count(view: &StatusView) -> usize {
    let budgets = if view.budgets.is_empty() {
        0
    } else {
        1 + view.budgets.len()
    };
    view.rows.len() * LINES_PER_ROW + 1 + budgets
}

/// The lines of the pane's content.
pub fn lines(view: &StatusView, cost_line: CostLine, theme: &Theme) -> Vec<Line<'static>> {
    let (mut body, footer) = parts(view, cost_line, theme, usize::MAX);
    body.extend(footer);
    body
}

/// `id` cut to `width` columns: its start and its end with `…` between, since deployments of
/// one group often differ only at the end (`…-eastus2-deployment-a`, `…-deployment-b`).
pub(crate) fn cut(id: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if id.width() <= width {
        return id.to_string();
    }
    let room = width.saturating_sub(1);
    // The end gets the larger half.
    let (head_room, tail_room) = (room / 2, room - room / 2);
    let mut head = String::new();
    let mut used = 0;
    for c in id.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > head_room {
            break;
        }
        head.push(c);
        used += w;
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in id.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > tail_room {
            break;
        }
        tail.push(c);
        used += w;
    }
    tail.reverse();
    format!("{head}…{}", tail.into_iter().collect::<String>())
}

/// The pane's content in `width` columns: the deployments' lines (which scroll), and the
/// totals and budgets (pinned under them). A long group is cut, then dropped, then the
/// deployment id cut, so the requests, error rate and health after them stay in sight.
fn parts(
    view: &StatusView,
    cost_line: CostLine,
    theme: &Theme,
    width: usize,
) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let muted = theme.fg(Role::Muted);
    let fg = theme.fg(Role::Fg);
    let mut out = Vec::new();
    for r in &view.rows {
        let (dot, role) = r.health.dot();
        let err_rate = match r.error_rate {
            Some(e) if r.requests > 0 => format!("{:.0}%", 100.0 * e),
            _ => "–".to_string(),
        };
        let err_style = if r.errors > 0 {
            theme.fg(Role::Error)
        } else {
            fg
        };
        let mut after = vec![
            Span::styled(format!("  {} req ", r.requests), fg),
            Span::styled(format!("{err_rate} err"), err_style),
        ];
        if r.health != Health::Healthy {
            after.push(Span::styled(
                format!("  {}", r.health.describe()),
                theme.fg(role),
            ));
        }
        if r.in_flight > 0 {
            after.push(Span::styled(
                format!("  {} live", r.in_flight),
                theme.fg(Role::Info),
            ));
        }
        let after_width: usize = after.iter().map(Span::width).sum();
        let dot = Span::styled(format!("{dot} "), theme.fg(role));
        let group = format!(" {}", r.group);
        let room = width.saturating_sub(dot.width() + after_width);
        // Columns an id is never cut below, and a cut group needs to say anything.
        const MIN_ID: usize = 12;
        const MIN_GROUP: usize = 5;
        let id_style = fg.add_modifier(Modifier::BOLD);
        let (id_w, group_w) = (r.id.width(), group.width());
        let mut first = vec![dot];
        if id_w + group_w <= room {
            first.push(Span::styled(r.id.clone(), id_style));
            first.push(Span::styled(group, muted));
        } else if id_w + MIN_GROUP <= room {
            // The id whole, the group (also in the models pane) cut.
            first.push(Span::styled(r.id.clone(), id_style));
            first.push(Span::styled(cut(&group, room - id_w), muted));
        } else {
            first.push(Span::styled(cut(&r.id, room.max(MIN_ID)), id_style));
        }
        first.extend(after);
        out.push(Line::from(first));
        let tps = r
            .tokens_per_s
            .map_or("–".to_string(), |t| format!("{t:.0}"));
        let cost = match (r.cost, r.price) {
            (None, None) if r.unpriced == 0 => "$?".to_string(),
            (c, _) => fmt::Spend {
                known: c.unwrap_or_default(),
                unpriced: r.unpriced > 0,
            }
            .to_string(),
        };
        // The cost is never cut: where the line is too wide the throughput's label shortens,
        // then the throughput goes, then the timings keep their p50s only.
        let timings = |full: bool| {
            let (ttft, lat) = if full {
                (
                    pair(r.ttft_p50_ms, r.ttft_p95_ms),
                    pair(r.latency_p50_ms, r.latency_p95_ms),
                )
            } else {
                let one = |v: Option<u64>| v.map_or("–".to_string(), fmt::ms_short);
                (one(r.ttft_p50_ms), one(r.latency_p50_ms))
            };
            vec![
                Span::styled("  ttft ", muted),
                Span::styled(ttft, fg),
                Span::styled(" lat ", muted),
                Span::styled(lat, fg),
            ]
        };
        let throughputs = [
            vec![
                Span::styled(format!(" {tps}"), fg),
                Span::styled(" tok/s ", muted),
            ],
            vec![
                Span::styled(format!(" {tps}"), fg),
                Span::styled("t/s ", muted),
            ],
            vec![Span::styled(" ", muted)],
        ];
        let choices = [(true, 0), (true, 1), (true, 2), (false, 1), (false, 2)];
        let width_of = |spans: &[Span]| spans.iter().map(Span::width).sum::<usize>();
        let fits = |&&(full, t): &&(bool, usize)| {
            width_of(&timings(full)) + width_of(&throughputs[t]) + cost.width() <= width
        };
        let &(full, t) = choices.iter().find(fits).unwrap_or(&(false, 2));
        let mut second = timings(full);
        second.extend(throughputs[t].iter().cloned());
        second.push(Span::styled(cost, fg));
        out.push(Line::from(second));
        out.push(Line::from(vec![
            Span::styled("  rpm ", muted),
            Span::styled(limit(r.rpm_used.to_string(), r.rpm_limit), fg),
            Span::styled(" tpm ", muted),
            Span::styled(
                limit(fmt::count(r.tpm_used), r.tpm_limit.map(fmt::count)),
                fg,
            ),
            Span::styled(" lat ", muted),
            Span::styled(
                sparkline(&r.latency_spark, SPARK_WIDTH),
                theme.fg(Role::Info),
            ),
            Span::styled(" err ", muted),
            Span::styled(
                sparkline(&r.error_spark, SPARK_WIDTH),
                theme.fg(Role::Error),
            ),
        ]));
    }
    let total = theme.fg(Role::Accent).add_modifier(Modifier::BOLD);
    let body = std::mem::take(&mut out);
    out.push(Line::from(match cost_line {
        CostLine::Session(session_cost) => vec![
            Span::styled("session ", muted),
            Span::styled(session_cost.to_string(), total),
            Span::styled("  all time ", muted),
            Span::styled(
                view.earlier_cost.map_or("$?".to_string(), |e| {
                    fmt::Spend {
                        known: e.cost + view.run_cost,
                        unpriced: e.unpriced + view.run_unpriced > 0,
                    }
                    .to_string()
                }),
                fg,
            ),
        ],
        CostLine::Server => vec![
            Span::styled("server since start ", muted),
            Span::styled(
                fmt::Spend {
                    known: view.run_cost,
                    unpriced: view.run_unpriced > 0,
                }
                .to_string(),
                total,
            ),
        ],
    }));
    if !view.budgets.is_empty() {
        out.push(Line::from(Span::styled(
            "budgets: spent/limit per period",
            muted,
        )));
        out.extend(view.budgets.iter().map(|b| budget_line(b, theme)));
    }
    (body, out)
}

/// Lines the totals and budgets take, pinned at the pane's foot.
fn footer_lines(view: &StatusView) -> usize {
    line_count(view) - view.rows.len() * LINES_PER_ROW
}

/// How far (in lines) the deployments can scroll in a pane whose inside is `height` rows.
pub fn max_scroll(view: &StatusView, height: usize) -> usize {
    let body = view.rows.len() * LINES_PER_ROW;
    body.saturating_sub(height.saturating_sub(footer_lines(view)))
}

/// `openai 80% $40.00/$50.00 1d resets 3h`: the percent early, so a narrow pane still shows
/// it (under a `budgets` header line saying what the numbers are).
fn budget_line(b: &BudgetLine, theme: &Theme) -> Line<'static> {
    let muted = theme.fg(Role::Muted);
    let fg = theme.fg(Role::Fg);
    let mut spans = vec![
        Span::styled(b.label.clone(), fg),
        Span::styled(
            format!(" {}%", b.percent()),
            theme.fg(b.role()).add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(" {}/{}", fmt::cost(Some(b.spent)), fmt::cost(Some(b.limit))),
            fg,
        ),
        Span::styled(format!(" {}", b.period), fg),
    ];
    if let Some(ms) = b.resets_in_ms {
        spans.push(Span::styled(
            format!(" resets {}", short_duration(Duration::from_millis(ms))),
            muted,
        ));
    }
    Line::from(spans)
}

/// Draws the pane.
pub fn render(
    view: &StatusView,
    cost_line: CostLine,
    area: Rect,
    buf: &mut Buffer,
    theme: &Theme,
    focused: bool,
    scroll: usize,
) {
    let mut block = super::pane_block(theme, "Metrics", focused);
    let inner = block.inner(area);
    let (body, footer) = parts(view, cost_line, theme, inner.width as usize);
    let height = inner.height as usize;
    let footer_height = footer.len().min(height);
    let body_height = height - footer_height;
    let top = scroll.min(body.len().saturating_sub(body_height));
    let shown = body.len().saturating_sub(top).min(body_height);
    // Deployments (three lines each) out of sight, said on the border as the log says it.
    let above = top.div_ceil(LINES_PER_ROW);
    let below = (body.len() - top - shown).div_ceil(LINES_PER_ROW);
    block = super::with_hidden(block, theme, (above, below), ("more", "more"));
    block.render(area, buf);
    let rows = body[top..top + shown]
        .iter()
        .chain(&footer[..footer_height]);
    for (i, l) in rows.enumerate() {
        super::set_line_clipped(buf, inner.x, inner.y + i as u16, l, inner.width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_cut_in_the_middle_to_exactly_its_width() {
        let id = "mock/azure-gpt-4o-mini-eastus2-deployment-a";
        for width in [8, 12, 21, 22, 30] {
            let c = cut(id, width);
            assert_eq!(c.chars().count(), width, "{c}");
            assert!(c.ends_with('a') && c.starts_with("moc"), "{c}");
        }
        assert_eq!(cut(id, 22), "mock/azure…eployment-a");
        assert_eq!(cut("short", 8), "short");
    }

    #[test]
    fn line_count_is_what_lines_gives() {
        let theme = Theme::builtin_default(super::super::theme::ColorDepth::Mono);
        let mut view = StatusView {
            rows: vec![DeploymentRow::default(); 3],
            ..StatusView::default()
        };
        for budgets in 0..3 {
            view.budgets = (0..budgets)
                .map(|i| BudgetLine {
                    label: format!("b{i}"),
                    spent: Usd::from_pico(1),
                    limit: Usd::from_pico(2),
                    period: "1d".into(),
                    resets_in_ms: None,
                })
                .collect();
            for cost in [CostLine::Session(fmt::Spend::default()), CostLine::Server] {
                assert_eq!(line_count(&view), lines(&view, cost, &theme).len());
            }
        }
    }

    #[test]
    fn sparkline_scales_and_pads() {
        assert_eq!(sparkline(&[0, 1, 2, 4], 6), "  ▁▃▅█");
        assert_eq!(sparkline(&[], 3), "   ");
        assert_eq!(sparkline(&[5, 5], 2), "██");
        assert_eq!(pair(Some(240), Some(410)), "240/410ms");
        assert_eq!(pair(Some(240), Some(1410)), "240ms/1.4s");
        assert_eq!(pair(Some(43), Some(60_000)), "43ms/60.0s");
        assert_eq!(pair(None, Some(1)), "–");
    }
}
