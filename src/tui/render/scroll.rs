//! Which rows moved together between two frames: a scroll region (DECSTBM) moves them in the
//! terminal for a few bytes where drawing them again would cost every inked cell (the
//! conversation following an answer at full width, a page turned).

use ratatui::buffer::{Buffer, Cell};

use super::is_plain_blank;

/// A scroll region is used when it spares drawing at least this many cells (it costs about
/// as many bytes).
const SCROLL_MIN_CELLS: usize = 24;

/// Rows `top..=bottom` (of the whole width) move by `by` rows: up when positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Scroll {
    pub(super) top: u16,
    pub(super) bottom: u16,
    pub(super) by: i16,
}

/// The scroll that spares the most drawing, if it spares more than it costs. Rows are
/// compared by hash (a collision costs only bytes: the cells are diffed after the move), and
/// a row to draw costs its inked cells.
pub(super) fn find_scroll(prev: &Buffer, next: &Buffer) -> Option<Scroll> {
    use std::hash::{Hash, Hasher};
    let area = next.area;
    let h = usize::from(area.height);
    let w = usize::from(area.width);
    if h < 3 || w == 0 {
        return None;
    }
    let hashes = |b: &Buffer| -> Vec<u64> {
        b.content
            .chunks(w)
            .map(|row| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                row.hash(&mut hasher);
                hasher.finish()
            })
            .collect()
    };
    let (old, new) = (hashes(prev), hashes(next));
    let ink: Vec<usize> = next
        .content
        .chunks(w)
        .map(|row| row.iter().filter(|c| !is_plain_blank(c)).count())
        .collect();
    // What drawing each row costs without a scroll.
    let plain: Vec<usize> = (0..h)
        .map(|y| if new[y] == old[y] { 0 } else { ink[y] })
        .collect();
    let mut best: Option<(usize, Scroll)> = None;
    for k in 1..h {
        for up in [true, false] {
            let src = |y: usize| if up { y + k } else { y.wrapping_sub(k) };
            let matches = |y: usize| src(y) < h && new[y] == old[src(y)];
            // Runs of rows y where next[y] == prev[y ± k].
            let mut y = 0;
            while y < h {
                if !matches(y) {
                    y += 1;
                    continue;
                }
                let start = y;
                while y < h && matches(y) {
                    y += 1;
                }
                let (first, last) = (start, y - 1);
                let s = if up {
                    Scroll {
                        top: first as u16,
                        bottom: (last + k) as u16,
                        by: k as i16,
                    }
                } else {
                    Scroll {
                        top: (first - k) as u16,
                        bottom: last as u16,
                        by: -(k as i16),
                    }
                };
                // Rows of the region: matched ones cost nothing; the vacated ones their ink.
                let (top, bottom) = (usize::from(s.top), usize::from(s.bottom));
                let before: usize = plain[top..=bottom].iter().sum();
                let after: usize = (top..=bottom)
                    .filter(|r| !(first..=last).contains(r))
                    .map(|r| ink[r])
                    .sum();
                let spared = before.saturating_sub(after);
                if spared >= SCROLL_MIN_CELLS && best.is_none_or(|(b, _)| spared > b) {
                    best = Some((spared, s));
                }
            }
        }
    }
    best.map(|(_, s)| widen(prev, next, s))
}

/// Cells of the rows `s` covers that differ once `s` is done (vacated rows read as blank).
fn scroll_cost(prev: &Buffer, next: &Buffer, s: Scroll) -> usize {
    let w = usize::from(next.area.width);
    fn row(b: &Buffer, w: usize, y: usize) -> &[Cell] {
        &b.content[y * w..(y + 1) * w]
    }
    let k = usize::from(s.by.unsigned_abs());
    let (top, bottom) = (usize::from(s.top), usize::from(s.bottom));
    (top..=bottom)
        .map(|y| {
            let src = if s.by > 0 {
                (y + k <= bottom).then(|| y + k)
            } else {
                (y >= top + k).then(|| y - k)
            };
            let new = row(next, w, y);
            match src {
                Some(sy) => new
                    .iter()
                    .zip(row(prev, w, sy))
                    .filter(|(a, b)| a != b)
                    .count(),
                None => new.iter().filter(|c| !is_plain_blank(c)).count(),
            }
        })
        .sum()
}

/// Takes into the region the rows past the matching ones that the move brings closer: the
/// line an answer was still writing moves up with the others, and only its new words are
/// drawn.
fn widen(prev: &Buffer, next: &Buffer, mut s: Scroll) -> Scroll {
    let h = next.area.height;
    loop {
        let wider = if s.by > 0 {
            if s.bottom + 1 >= h {
                break;
            }
            Scroll {
                bottom: s.bottom + 1,
                ..s
            }
        } else {
            if s.top == 0 {
                break;
            }
            Scroll {
                top: s.top - 1,
                ..s
            }
        };
        // Compared over the same rows: the wider region's, unmoved rows counted for `s`.
        let extra = if s.by > 0 { wider.bottom } else { wider.top };
        let w = usize::from(next.area.width);
        let at = usize::from(extra) * w;
        let unmoved = next.content[at..at + w]
            .iter()
            .zip(&prev.content[at..at + w])
            .filter(|(a, b)| a != b)
            .count();
        if scroll_cost(prev, next, wider) < scroll_cost(prev, next, s) + unmoved {
            s = wider;
        } else {
            break;
        }
    }
    s
}
