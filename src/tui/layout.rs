//! Where each pane goes. At 160x48 (anything at least [`WIDE_MIN`]) everything is visible: the
//! models pane on the left; conversation, live output and composer in the middle; metrics
//! over the routing log on the right. Smaller terminals fold the side panes away; each can be
//! toggled back and then shares the space under the conversation.

use ratatui::layout::Rect;

/// The smallest size that shows every pane at once.
pub const WIDE_MIN: (u16, u16) = (120, 32);
/// Width of the models pane when wide.
const MODELS_W: u16 = 34;
/// Width of the metrics and routing log column when wide.
const SIDE_W: u16 = 54;
/// Height of the live output pane when wide (borders included).
const LIVE_H: u16 = 7;
/// Tallest the composer grows (borders included), wide and narrow.
const COMPOSER_MAX_WIDE: u16 = 10;
const COMPOSER_MAX_NARROW: u16 = 6;
/// The conversation keeps at least this many rows when side panes share its column.
const CONVERSATION_MIN: u16 = 5;
/// Rows each deployment takes in the metrics pane, and the pane's fixed rows.
const METRICS_ROWS_PER_DEPLOYMENT: u16 = 3;
const METRICS_FIXED_ROWS: u16 = 3;

/// Which side panes are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visible {
    pub models: bool,
    pub metrics: bool,
    pub log: bool,
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

pub fn is_wide(width: u16, height: u16) -> bool {
    width >= WIDE_MIN.0 && height >= WIDE_MIN.1
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

/// Lays out `area`. `composer_lines` is the draft's line count, `deployments` the number of
/// rows the metrics pane lists.
pub fn areas(area: Rect, vis: Visible, composer_lines: u16, deployments: u16) -> Areas {
    let wide = is_wide(area.width, area.height);
    let (body, status) = split_v(area, area.height.saturating_sub(1));
    if wide {
        let (models, rest) = if vis.models {
            let (l, r) = split_h(body, MODELS_W);
            (Some(l), r)
        } else {
            (None, body)
        };
        let (center, side) = if vis.metrics || vis.log {
            let (c, s) = split_h(rest, rest.width.saturating_sub(SIDE_W));
            (c, Some(s))
        } else {
            (rest, None)
        };
        let (metrics, log) = match side {
            Some(s) if vis.metrics && vis.log => {
                let want = deployments * METRICS_ROWS_PER_DEPLOYMENT + METRICS_FIXED_ROWS;
                let (m, l) = split_v(s, want.min(s.height * 3 / 5));
                (Some(m), Some(l))
            }
            Some(s) if vis.metrics => (Some(s), None),
            Some(s) => (None, Some(s)),
            None => (None, None),
        };
        let composer_h = (composer_lines + 2).clamp(3, COMPOSER_MAX_WIDE);
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
    let composer_h = (composer_lines + 2).clamp(3, COMPOSER_MAX_NARROW);
    let (upper, composer) = split_v(body, body.height.saturating_sub(composer_h));
    let (main, live) = split_v(upper, upper.height.saturating_sub(1));
    let shown = [vis.models, vis.metrics, vis.log];
    let n = shown.iter().filter(|s| **s).count() as u16;
    if n == 0 {
        return Areas {
            wide,
            models: None,
            conversation: main,
            live,
            composer,
            metrics: None,
            log: None,
            status,
        };
    }
    let conv_h = (main.height / 2).max(CONVERSATION_MIN).min(main.height);
    let (conversation, mut rest) = split_v(main, conv_h);
    let each = rest.height / n;
    let mut rects = [None, None, None];
    let mut left = n;
    for (i, on) in shown.iter().enumerate() {
        if *on {
            left -= 1;
            let h = if left == 0 { rest.height } else { each };
            let (r, after) = split_v(rest, h);
            rects[i] = Some(r);
            rest = after;
        }
    }
    Areas {
        wide,
        models: rects[0],
        conversation,
        live,
        composer,
        metrics: rects[1],
        log: rects[2],
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_shows_everything_and_narrow_folds() {
        let all = Visible {
            models: true,
            metrics: true,
            log: true,
        };
        let a = areas(Rect::new(0, 0, 160, 48), all, 1, 4);
        assert!(a.wide && a.models.is_some() && a.metrics.is_some() && a.log.is_some());
        assert_eq!(a.status, Rect::new(0, 47, 160, 1));
        assert_eq!(a.conversation.width, 160 - MODELS_W - SIDE_W);
        let none = Visible {
            models: false,
            metrics: false,
            log: false,
        };
        let b = areas(Rect::new(0, 0, 80, 24), none, 1, 4);
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
            1,
            4,
        );
        let (m, l) = (c.metrics.unwrap(), c.log.unwrap());
        assert_eq!(c.conversation.height + m.height + l.height, 19);
    }
}
