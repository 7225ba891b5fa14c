//! Where each pane goes: a simple responsive rule.
//!
//! The conversation is the main pane: wherever side panes stand beside it (terminals at least
//! [`WIDE_MIN`]), it keeps at least [`MAIN_SHARE`] of the width. The side panes share the rest:
//! the metrics and routing log column on the right, the models column on the left. When the
//! rest is narrower than both want, both shrink (the right column to [`SIDE_SHARED_MIN`], the
//! models to [`MODELS_MIN`]); below that the models column folds (by default it is only shown
//! where it fits, from 180 columns; F2 puts it back on top of the right column, which alone
//! is shown down to [`SIDE_MIN`], from 100 columns). Smaller
//! terminals stack the panes that are toggled on under the conversation. Wherever panes are
//! stacked, each gets at least [`PANE_MIN_H`] rows (a border and one row) or folds: models
//! first, then metrics, the routing log last.

use ratatui::layout::Rect;

/// The smallest size where side panes stand beside the conversation.
pub const WIDE_MIN: (u16, u16) = (100, 28);
/// The conversation's least share of the width where side panes stand beside it.
pub const MAIN_SHARE: (u16, u16) = (3, 5);
/// Width the models column wants, and the least it is shown at.
const MODELS_W: u16 = 34;
pub const MODELS_MIN: u16 = 24;
/// Width the metrics and routing log column wants, and the least it is shown at.
const SIDE_W: u16 = 54;
pub const SIDE_MIN: u16 = 40;
/// The least the right column shrinks to for the models column to stand beside it.
pub const SIDE_SHARED_MIN: u16 = 48;
/// Height of the live output pane when wide (borders included).
const LIVE_H: u16 = 7;
/// Tallest the composer grows (borders included), wide and narrow.
const COMPOSER_MAX_WIDE: u16 = 10;
const COMPOSER_MAX_NARROW: u16 = 6;
/// The conversation keeps at least this many rows when side panes share its column.
const CONVERSATION_MIN: u16 = 5;
/// The fewest rows a stacked pane is drawn with: its border and one row.
pub const PANE_MIN_H: u16 = 3;
/// Rows each deployment takes in the metrics pane, and the pane's fixed rows.
const METRICS_ROWS_PER_DEPLOYMENT: u16 = 3;
const METRICS_FIXED_ROWS: u16 = 3;

/// Which side panes are shown (or wanted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visible {
    pub models: bool,
    pub metrics: bool,
    pub log: bool,
}

/// A side pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Models,
    Metrics,
    Log,
}

impl Pane {
    fn index(self) -> usize {
        match self {
            Pane::Models => 0,
            Pane::Metrics => 1,
            Pane::Log => 2,
        }
    }
}

/// What the panes hold, for the heights they want.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wants {
    /// The pane turned on last: it folds after the others.
    pub keep: Option<Pane>,
    /// Lines in the composer's draft.
    pub composer_lines: u16,
    /// Deployment rows the metrics pane lists (3 lines each).
    pub deployments: u16,
    /// Rows the models pane lists.
    pub models_rows: u16,
}

/// The rectangle of every pane (`None` when folded away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub wide: bool,
    pub models: Option<Rect>,
    pub conversation: Rect,
    /// A bordered pane when wide; one row without border when narrow.
    pub live: Rect,
    pub composer: Rect,
    pub metrics: Option<Rect>,
    pub log: Option<Rect>,
    pub status: Rect,
}

impl Areas {
    /// The side panes actually drawn.
    pub fn shown(&self) -> Visible {
        Visible {
            models: self.models.is_some(),
            metrics: self.metrics.is_some(),
            log: self.log.is_some(),
        }
    }
}

pub fn is_wide(width: u16, height: u16) -> bool {
    width >= WIDE_MIN.0 && height >= WIDE_MIN.1
}

/// Columns left beside the conversation at `width`.
pub fn side_room(width: u16) -> u16 {
    let main = (u32::from(width) * u32::from(MAIN_SHARE.0)).div_ceil(u32::from(MAIN_SHARE.1));
    width.saturating_sub(main as u16)
}

/// The side panes shown when none was toggled: metrics and routing log wherever they stand
/// beside the conversation, the models column only where it fits next to them.
pub fn default_visible(width: u16, height: u16) -> Visible {
    let wide = is_wide(width, height);
    Visible {
        models: wide && side_room(width) >= SIDE_SHARED_MIN + MODELS_MIN,
        metrics: wide,
        log: wide,
    }
}

fn split_v(r: Rect, top: u16) -> (Rect, Rect) {
    let top = top.min(r.height);
    (
        Rect { height: top, ..r },
        Rect {
            y: r.y + top,
            height: r.height - top,
            ..r
        },
    )
}

fn split_h(r: Rect, left: u16) -> (Rect, Rect) {
    let left = left.min(r.width);
    (
        Rect { width: left, ..r },
        Rect {
            x: r.x + left,
            width: r.width - left,
            ..r
        },
    )
}

/// Widths of the models and the right column in `room` columns (0: not beside).
fn column_widths(room: u16, models: bool, right: bool) -> (u16, u16) {
    match (models, right) {
        (false, false) => (0, 0),
        (true, false) => (room.min(MODELS_W), 0),
        (false, true) => (0, room.min(SIDE_W)),
        (true, true) if room >= MODELS_W + SIDE_W => (MODELS_W, SIDE_W),
        (true, true) if room >= MODELS_MIN + SIDE_SHARED_MIN => {
            // Both shrink, each in proportion to how far it can.
            let cut = MODELS_W + SIDE_W - room;
            let (m_slack, s_slack) = (MODELS_W - MODELS_MIN, SIDE_W - SIDE_SHARED_MIN);
            let m_cut =
                (u32::from(cut) * u32::from(m_slack)).div_ceil(u32::from(m_slack + s_slack)) as u16;
            (MODELS_W - m_cut, SIDE_W - (cut - m_cut))
        }
        // No room for both columns: the models pane goes on top of the right column.
        (true, true) => (0, room.min(SIDE_W)),
    }
}

/// Splits `r` top to bottom among the panes that are on (models, metrics, log), each wanting
/// `want` rows (0: an equal share); the last one shown takes what is left. A pane that would
/// get fewer than [`PANE_MIN_H`] rows folds instead: models first, then metrics, then the
/// log, the pane `keep` last.
fn stack(r: Rect, on: [bool; 3], want: [u16; 3], keep: Option<Pane>) -> [Option<Rect>; 3] {
    let mut on = on;
    let keep = keep.map(Pane::index);
    while on.iter().filter(|x| **x).count() as u16 * PANE_MIN_H > r.height {
        let fold = (0..3)
            .find(|i| on[*i] && Some(*i) != keep)
            .or_else(|| on.iter().position(|x| *x));
        match fold {
            Some(i) => on[i] = false,
            None => break,
        }
    }
    let shown: Vec<usize> = (0..3).filter(|i| on[*i]).collect();
    let mut out = [None; 3];
    let mut rest = r;
    for (k, &i) in shown.iter().enumerate() {
        let after = (shown.len() - k - 1) as u16;
        let h = if after == 0 {
            rest.height
        } else {
            let most = rest.height - after * PANE_MIN_H;
            let h = if want[i] > 0 {
                want[i]
            } else {
                rest.height / (after + 1)
            };
            h.clamp(PANE_MIN_H, most)
        };
        let (pane, below) = split_v(rest, h);
        out[i] = Some(pane);
        rest = below;
    }
    out
}

/// Lays out `area` with the side panes of `vis` that fit (see the module docs).
pub fn areas(area: Rect, vis: Visible, wants: Wants) -> Areas {
    let wide = is_wide(area.width, area.height);
    let (body, status) = split_v(area, area.height.saturating_sub(1));
    if wide {
        let right = vis.metrics || vis.log;
        let (models_w, right_w) = column_widths(side_room(body.width), vis.models, right);
        let (models_col, rest) = split_h(body, models_w);
        let (center, right_col) = split_h(rest, rest.width - right_w);
        let stacked_models = vis.models && models_w == 0;
        let metrics_want = (wants.deployments * METRICS_ROWS_PER_DEPLOYMENT + METRICS_FIXED_ROWS)
            .min(right_col.height * 3 / 5);
        let models_want = (wants.models_rows + 2).min(right_col.height / 3);
        let [stacked, metrics, log] = if right {
            stack(
                right_col,
                [stacked_models, vis.metrics, vis.log],
                [models_want, metrics_want, 0],
                wants.keep,
            )
        } else {
            [None; 3]
        };
        let models = if models_w > 0 {
            Some(models_col)
        } else {
            stacked
        };
        let composer_h = (wants.composer_lines + 2).clamp(3, COMPOSER_MAX_WIDE);
        let (upper, composer) = split_v(center, center.height.saturating_sub(composer_h));
        let (conversation, live) = split_v(upper, upper.height.saturating_sub(LIVE_H));
        return Areas {
            wide,
            models,
            conversation,
            live,
            composer,
            metrics,
            log,
            status,
        };
    }
    let composer_h = (wants.composer_lines + 2).clamp(3, COMPOSER_MAX_NARROW);
    let (upper, composer) = split_v(body, body.height.saturating_sub(composer_h));
    let (main, live) = split_v(upper, upper.height.saturating_sub(1));
    let on = [vis.models, vis.metrics, vis.log];
    let (conversation, [models, metrics, log]) = if on.iter().any(|x| *x) {
        let conv_h = (main.height / 2).max(CONVERSATION_MIN).min(main.height);
        let (conversation, rest) = split_v(main, conv_h);
        (conversation, stack(rest, on, [0; 3], wants.keep))
    } else {
        (main, [None; 3])
    };
    Areas {
        wide,
        models,
        conversation,
        live,
        composer,
        metrics,
        log,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Visible = Visible {
        models: true,
        metrics: true,
        log: true,
    };
    const NONE: Visible = Visible {
        models: false,
        metrics: false,
        log: false,
    };

    fn wants() -> Wants {
        Wants {
            keep: None,
            composer_lines: 1,
            deployments: 4,
            models_rows: 7,
        }
    }

    #[test]
    fn wide_shows_everything_and_narrow_folds() {
        let a = areas(Rect::new(0, 0, 200, 48), ALL, wants());
        assert!(a.wide && a.models.is_some() && a.metrics.is_some() && a.log.is_some());
        assert_eq!(a.models.unwrap().x, 0);
        assert_eq!(a.status, Rect::new(0, 47, 200, 1));
        let b = areas(Rect::new(0, 0, 80, 24), NONE, wants());
        assert!(!b.wide && b.models.is_none());
        assert_eq!(b.conversation, Rect::new(0, 0, 80, 19));
        assert_eq!(b.live, Rect::new(0, 19, 80, 1));
        assert_eq!(b.composer, Rect::new(0, 20, 80, 3));
        let c = areas(
            Rect::new(0, 0, 80, 24),
            Visible {
                models: false,
                metrics: true,
                log: true,
            },
            wants(),
        );
        let (m, l) = (c.metrics.unwrap(), c.log.unwrap());
        assert_eq!(c.conversation.height + m.height + l.height, 19);
    }

    /// The complaint: at 120x40 the conversation was 32 columns and the metrics 54.
    #[test]
    fn the_conversation_keeps_three_fifths_of_the_width_wherever_panes_stand_beside_it() {
        for width in [100, 110, 120, 140, 159, 160, 180, 200, 240] {
            for vis in [ALL, default_visible(width, 40)] {
                let a = areas(Rect::new(0, 0, width, 40), vis, wants());
                assert!(a.wide);
                assert!(
                    u32::from(a.conversation.width) * 5 >= u32::from(width) * 3,
                    "{width}: conversation {} wide",
                    a.conversation.width
                );
                let side = a.metrics.or(a.log).expect("the right column shows");
                assert!(side.width >= SIDE_MIN, "{width}: {side:?}");
                if let Some(m) = a.models
                    && m.x == 0
                {
                    assert!(m.width >= MODELS_MIN, "{width}: {m:?}");
                    assert!(side.width >= SIDE_SHARED_MIN, "{width}: {side:?}");
                }
                let used = a.conversation.width
                    + side.width
                    + a.models.filter(|m| m.x == 0).map_or(0, |m| m.width);
                assert_eq!(used, width, "{width}: every column is used");
            }
        }
        // Models get their own column only from 180 columns; asked for below, they go on top
        // of the right column.
        assert!(!default_visible(179, 40).models && default_visible(180, 40).models);
        let a = areas(Rect::new(0, 0, 120, 40), ALL, wants());
        let (m, met) = (a.models.unwrap(), a.metrics.unwrap());
        assert_eq!((m.x, m.width), (met.x, met.width));
        assert!(m.y < met.y);
    }

    #[test]
    fn stacked_panes_too_small_for_a_row_fold_instead_of_drawing_empty_boxes() {
        for (w, h) in [
            (60, 20),
            (60, 16),
            (80, 24),
            (100, 27),
            (120, 28),
            (200, 30),
        ] {
            let a = areas(Rect::new(0, 0, w, h), ALL, wants());
            for r in [a.models, a.metrics, a.log].into_iter().flatten() {
                assert!(r.height >= PANE_MIN_H, "{w}x{h}: {r:?}");
            }
        }
        // 60x20: 8 rows under the conversation hold two panes; the models pane folds.
        let a = areas(Rect::new(0, 0, 60, 20), ALL, wants());
        assert_eq!(
            a.shown(),
            Visible {
                models: false,
                metrics: true,
                log: true
            }
        );
        // The pane turned on last stays.
        let keep = Wants {
            keep: Some(Pane::Models),
            ..wants()
        };
        let a = areas(Rect::new(0, 0, 60, 20), ALL, keep);
        assert_eq!(
            a.shown(),
            Visible {
                models: true,
                metrics: false,
                log: true
            }
        );
    }
}
