//! The model picker: model groups with their deployments, each deployment with a health dot
//! (healthy, cooling with seconds left, failing), the strategy, fallbacks and prices. Shown as
//! a side pane (wide terminals) and as the Ctrl+P overlay with a filter typed as you go; 1..9
//! pick a favorite while the filter is empty (once it has text, digits are text), Enter takes
//! the row under the cursor (`▶`, the one cursor marker; the current group carries `✓`).
//!
//! Ranking: a group or alias named exactly as typed comes first, then names that start with
//! it, then fuzzy matches; a group's row outranks one of its deployments at the same rank, so
//! a partial match on a deployment id never beats a group's exact name.
//!
//! Groups come from the config once ([`GroupInfo`]); health and prices from the latest
//! `StatusView`. Selection logic is pure and tested; rendering reads the state.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use crate::config::Config;

use super::fmt;
use super::metrics::StatusView;
use super::theme::{Role, Theme};

/// Most favorites the number keys reach.
pub const MAX_FAVORITES: usize = 9;
/// Widest the overlay gets.
const OVERLAY_WIDTH: u16 = 76;

/// A model group as the picker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    /// `model_group_alias` names that lead to this group.
    pub aliases: Vec<String>,
    pub deployments: Vec<String>,
    pub fallbacks: Vec<String>,
    /// 1-based favorite number.
    pub favorite: Option<usize>,
}

/// The groups of a config, in order, with favorites numbered as `llmux.favorites` lists them.
pub fn groups_of(cfg: &Config) -> Vec<GroupInfo> {
    cfg.groups
        .iter()
        .map(|g| GroupInfo {
            name: g.clone(),
            aliases: cfg
                .router
                .model_group_alias
                .iter()
                .filter(|(_, to)| *to == g)
                .map(|(alias, _)| alias.clone())
                .collect(),
            deployments: cfg.group_deployments(g).map(|d| d.id.clone()).collect(),
            fallbacks: cfg.router.fallbacks.get(g).cloned().unwrap_or_default(),
            favorite: cfg
                .app
                .favorites
                .iter()
                .take(MAX_FAVORITES)
                .position(|f| cfg.resolve_group(f) == Some(g.as_str()))
                .map(|i| i + 1),
        })
        .collect()
}

/// One visible row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Group(usize),
    Deployment(usize, usize),
}

impl Row {
    pub fn group(self) -> usize {
        match self {
            Row::Group(g) | Row::Deployment(g, _) => g,
        }
    }
}

/// The overlay's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PickerState {
    pub filter: String,
    /// Index into the visible rows.
    pub selected: usize,
}

/// Whether `needle`'s characters appear in order in `hay` (case-insensitive); the score
/// favours consecutive runs and matches at the start.
pub fn fuzzy_score(needle: &str, hay: &str) -> Option<i64> {
    if needle.is_empty() {
        return Some(0);
    }
    let hay: Vec<char> = hay.to_lowercase().chars().collect();
    let mut score = 0i64;
    let mut pos = 0usize;
    let mut last: Option<usize> = None;
    for n in needle.to_lowercase().chars() {
        let found = hay[pos..].iter().position(|c| *c == n)? + pos;
        score += 1;
        if last.is_some_and(|l| l + 1 == found) {
            score += 5;
        }
        if found == 0
            || hay
                .get(found.wrapping_sub(1))
                .is_some_and(|c| !c.is_alphanumeric())
        {
            score += 3;
        }
        last = Some(found);
        pos = found + 1;
    }
    Some(score)
}

/// How well a name matches the filter: exact beats prefix beats fuzzy (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    Fuzzy(i64),
    Prefix,
    Exact,
}

/// How `name` matches `filter`, if at all.
pub fn match_name(filter: &str, name: &str) -> Option<Match> {
    let (f, n) = (filter.to_lowercase(), name.to_lowercase());
    if f == n {
        Some(Match::Exact)
    } else if n.starts_with(&f) {
        Some(Match::Prefix)
    } else {
        fuzzy_score(&f, &n).map(Match::Fuzzy)
    }
}

/// A row's rank under a filter: its match, then groups before deployments at the same match.
type Rank = (Match, bool);

fn group_rank(g: &GroupInfo, filter: &str) -> Option<Rank> {
    std::iter::once(&g.name)
        .chain(&g.aliases)
        .filter_map(|n| match_name(filter, n))
        .max()
        .map(|m| (m, true))
}

fn row_rank(groups: &[GroupInfo], filter: &str, row: Row) -> Option<Rank> {
    match row {
        Row::Group(g) => group_rank(&groups[g], filter),
        Row::Deployment(g, d) => match_name(filter, &groups[g].deployments[d]).map(|m| (m, false)),
    }
}

/// The rows the filter lets through: a group whose name (or an alias) matches shows all its
/// deployments; a deployment that matches shows with its group. With a filter, groups come in
/// the order of their best row's rank (config order among equals).
pub fn visible_rows(groups: &[GroupInfo], filter: &str) -> Vec<Row> {
    let mut blocks: Vec<(Option<Rank>, Vec<Row>)> = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let group_hit = group_rank(g, filter);
        let deps: Vec<usize> = (0..g.deployments.len())
            .filter(|di| group_hit.is_some() || match_name(filter, &g.deployments[*di]).is_some())
            .collect();
        if group_hit.is_some() || !deps.is_empty() {
            let mut rows = vec![Row::Group(gi)];
            rows.extend(deps.into_iter().map(|di| Row::Deployment(gi, di)));
            let best = rows
                .iter()
                .filter_map(|r| row_rank(groups, filter, *r))
                .max();
            blocks.push((best, rows));
        }
    }
    if !filter.is_empty() {
        // Stable: equal ranks keep the config's order.
        blocks.sort_by_key(|b| std::cmp::Reverse(b.0));
    }
    blocks.into_iter().flat_map(|(_, rows)| rows).collect()
}

impl PickerState {
    /// Opens with the current group selected.
    pub fn open(groups: &[GroupInfo], current: usize) -> PickerState {
        let rows = visible_rows(groups, "");
        PickerState {
            filter: String::new(),
            selected: rows
                .iter()
                .position(|r| *r == Row::Group(current))
                .unwrap_or(0),
        }
    }

    /// Types into the filter; the cursor jumps to the best match.
    pub fn set_filter(&mut self, groups: &[GroupInfo], filter: String) {
        self.filter = filter;
        let rows = visible_rows(groups, &self.filter);
        let best = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| row_rank(groups, &self.filter, *r).map(|rank| (i, rank)))
            .max_by_key(|(i, rank)| (*rank, std::cmp::Reverse(*i)));
        self.selected = best.map_or(0, |(i, _)| i);
    }

    pub fn move_by(&mut self, groups: &[GroupInfo], delta: i64) {
        let n = visible_rows(groups, &self.filter).len();
        if n == 0 {
            self.selected = 0;
            return;
        }
        self.selected = (self.selected as i64 + delta).rem_euclid(n as i64) as usize;
    }

    /// The group the selection is in.
    pub fn chosen(&self, groups: &[GroupInfo]) -> Option<usize> {
        visible_rows(groups, &self.filter)
            .get(self.selected)
            .map(|r| r.group())
    }
}

/// The group a favorite number picks.
pub fn favorite(groups: &[GroupInfo], n: usize) -> Option<usize> {
    groups.iter().position(|g| g.favorite == Some(n))
}

/// The cursor's marker, in front of the row it is on; the current group's mark, after its name.
pub const CURSOR: &str = "▶ ";
pub const CURRENT: &str = " ✓";

/// The lines of the list. The row `selected` (the cursor) starts with [`CURSOR`] and is
/// highlighted; the current group ends in [`CURRENT`]. `compact` (the side pane) leaves out
/// the strategy and shows health instead of the price when a deployment is not healthy.
#[allow(clippy::too_many_arguments)]
pub fn list_lines(
    groups: &[GroupInfo],
    rows: &[Row],
    status: &StatusView,
    current: usize,
    selected: Option<usize>,
    strategy: &str,
    theme: &Theme,
    compact: bool,
) -> Vec<Line<'static>> {
    let muted = theme.fg(Role::Muted);
    let fg = theme.fg(Role::Fg);
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let cursor = if selected == Some(i) { CURSOR } else { "  " };
        let mut spans = vec![Span::styled(cursor, theme.fg(Role::Accent))];
        match *row {
            Row::Group(gi) => {
                let g = &groups[gi];
                let fav = g.favorite.map_or("  ".to_string(), |n| format!("{n} "));
                spans.push(Span::styled(fav, theme.fg(Role::Info)));
                let name_style = if gi == current {
                    theme.fg(Role::Accent).add_modifier(Modifier::BOLD)
                } else {
                    fg.add_modifier(Modifier::BOLD)
                };
                spans.push(Span::styled(g.name.clone(), name_style));
                if gi == current {
                    spans.push(Span::styled(CURRENT, theme.fg(Role::Accent)));
                }
                if !compact {
                    if !g.aliases.is_empty() {
                        spans.push(Span::styled(
                            format!(" (alias {})", g.aliases.join(", ")),
                            muted,
                        ));
                    }
                    spans.push(Span::styled(format!("  {strategy}"), muted));
                }
                if !g.fallbacks.is_empty() {
                    spans.push(Span::styled(
                        format!(" ↪ {}", g.fallbacks.join(", ")),
                        muted,
                    ));
                }
            }
            Row::Deployment(gi, di) => {
                let id = &groups[gi].deployments[di];
                let row = status.row(id);
                let health = row.map(|r| r.health).unwrap_or_default();
                let (dot, role) = health.dot();
                let indent = if compact { "" } else { "    " };
                spans.push(Span::styled(format!("{indent}{dot} "), theme.fg(role)));
                spans.push(Span::styled(id.clone(), fg));
                let healthy = health == super::metrics::Health::Healthy;
                if !compact || healthy {
                    let price =
                        row.and_then(|r| r.price)
                            .map_or("price ?".to_string(), |(i, o)| {
                                let out = fmt::per_million(o);
                                if compact {
                                    format!(
                                        "{}/{}",
                                        fmt::per_million(i),
                                        out.trim_start_matches('$')
                                    )
                                } else {
                                    format!("{}/{out} per M", fmt::per_million(i))
                                }
                            });
                    spans.push(Span::styled(format!(" {price}"), muted));
                }
                if !healthy {
                    spans.push(Span::styled(
                        format!(" {}", health.describe()),
                        theme.fg(role),
                    ));
                }
            }
        }
        let mut line = Line::from(spans);
        if selected == Some(i) {
            line = line.style(theme.selected());
        }
        out.push(line);
    }
    out
}

/// Draws the side pane (no filter; the selection shows only when focused).
#[allow(clippy::too_many_arguments)]
pub fn render_pane(
    groups: &[GroupInfo],
    status: &StatusView,
    current: usize,
    selected: usize,
    strategy: &str,
    area: Rect,
    buf: &mut Buffer,
    theme: &Theme,
    focused: bool,
) {
    let block = super::view::pane_block(theme, &format!("Models · {strategy}"), focused);
    let inner = block.inner(area);
    block.render(area, buf);
    let rows = visible_rows(groups, "");
    let sel = focused.then_some(selected);
    let mut lines = list_lines(groups, &rows, status, current, sel, strategy, theme, true);
    // A deployment that is not healthy keeps its state in sight ("rpm limit 58s",
    // "cooling 8s"): its id is cut to make room. A healthy one keeps its id whole where it
    // fits (its price may run off the edge), and cut to fit where it does not. Ids are cut in
    // the middle: deployments of a group often differ only at the end.
    let width = inner.width as usize;
    for (line, row) in lines.iter_mut().zip(&rows) {
        let Row::Deployment(gi, di) = *row else {
            continue;
        };
        if line.spans.len() <= 2 {
            continue;
        }
        let unhealthy = status
            .row(&groups[gi].deployments[di])
            .is_some_and(|r| r.health != super::metrics::Health::Healthy);
        let through_id: usize = line.spans[..3].iter().map(|s| s.width()).sum();
        let over = if unhealthy {
            line.width().saturating_sub(width)
        } else {
            through_id.saturating_sub(width)
        };
        if over > 0 {
            if !unhealthy {
                // Its price has no room left: the id ends the line (not cut again at the edge).
                line.spans.truncate(3);
            }
            let id = &mut line.spans[2];
            let keep = id.width().saturating_sub(over).max(MIN_ID_SHOWN);
            id.content = super::metrics::cut(&id.content, keep).into();
        }
    }
    let skip = scroll_for(selected, lines.len(), inner.height as usize);
    for (i, l) in lines
        .iter()
        .skip(skip)
        .take(inner.height as usize)
        .enumerate()
    {
        super::view::set_line_clipped(buf, inner.x, inner.y + i as u16, l, inner.width);
    }
}

/// Columns of a deployment id the side pane never cuts below.
const MIN_ID_SHOWN: usize = 8;

/// The first row to show so `selected` stays visible.
fn scroll_for(selected: usize, len: usize, height: usize) -> usize {
    if height == 0 || len <= height {
        0
    } else {
        selected.saturating_sub(height - 1).min(len - height)
    }
}

/// Draws the overlay centered in `area`.
#[allow(clippy::too_many_arguments)]
pub fn render_overlay(
    state: &PickerState,
    groups: &[GroupInfo],
    status: &StatusView,
    current: usize,
    strategy: &str,
    area: Rect,
    buf: &mut Buffer,
    theme: &Theme,
) {
    let rows = visible_rows(groups, &state.filter);
    let lines = list_lines(
        groups,
        &rows,
        status,
        current,
        Some(state.selected),
        strategy,
        theme,
        false,
    );
    let width = OVERLAY_WIDTH.min(area.width.saturating_sub(2));
    let height = (lines.len() as u16 + 5)
        .min(area.height.saturating_sub(2))
        .max(6);
    let rect = super::view::centered(area, width, height);
    Clear.render(rect, buf);
    let block = super::view::pane_block(theme, "Pick a model", true).title_bottom(Line::from(
        Span::styled(
            " type to filter · ↑↓ · Enter picks · 1-9 favorites · Esc close ",
            theme.fg(Role::Muted),
        ),
    ));
    let inner = block.inner(rect);
    block.style(theme.base_style()).render(rect, buf);
    if inner.height == 0 {
        return;
    }
    let filter = Line::from(vec![
        Span::styled("filter: ", theme.fg(Role::Muted)),
        Span::styled(state.filter.clone(), theme.fg(Role::Accent)),
        Span::styled("▏", theme.fg(Role::Accent)),
    ]);
    buf.set_line(inner.x, inner.y, &filter, inner.width);
    let list_h = inner.height.saturating_sub(1) as usize;
    if rows.is_empty() {
        let none = Line::from(Span::styled("no model matches", theme.fg(Role::Muted)));
        buf.set_line(inner.x, inner.y + 1, &none, inner.width);
        return;
    }
    let skip = scroll_for(state.selected, lines.len(), list_h);
    for (i, l) in lines.iter().skip(skip).take(list_h).enumerate() {
        super::view::set_line_clipped(buf, inner.x, inner.y + 1 + i as u16, l, inner.width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Vec<GroupInfo> {
        let g = |n: &str, d: &[&str], fav| GroupInfo {
            name: n.into(),
            aliases: vec![],
            deployments: d.iter().map(|s| s.to_string()).collect(),
            fallbacks: vec![],
            favorite: fav,
        };
        vec![
            g("fast", &["fast-steady", "fast-flaky"], Some(1)),
            g("smart", &["smart-slow"], Some(2)),
            g("local", &["local-small"], None),
        ]
    }

    #[test]
    fn filter_selects_best_match() {
        let gs = groups();
        let mut p = PickerState::open(&gs, 0);
        assert_eq!(p.chosen(&gs), Some(0));
        p.set_filter(&gs, "sm".into());
        assert_eq!(p.chosen(&gs), Some(1));
        p.set_filter(&gs, "flaky".into());
        assert_eq!(
            visible_rows(&gs, "flaky"),
            [Row::Group(0), Row::Deployment(0, 1)]
        );
        assert_eq!(p.chosen(&gs), Some(0));
        p.set_filter(&gs, "lcl".into());
        assert_eq!(p.chosen(&gs), Some(2));
        p.set_filter(&gs, "zzz".into());
        assert_eq!(p.chosen(&gs), None);
        assert_eq!(favorite(&gs, 2), Some(1));
    }
}
