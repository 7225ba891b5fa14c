//! Turning frames into as few bytes as the terminal needs: over SSH every byte crosses the
//! network, and a streaming answer must cost little more than its own text.
//!
//! [`Screen`] keeps what the terminal shows (the last frame, as a `Buffer`) and the terminal's
//! pen (colours and attributes); each new frame becomes bytes in [`Screen::frame`]:
//! - rows that moved up or down together across the whole width (the conversation following an
//!   answer at 80x24, a page scrolled) are moved by the terminal in a scroll region (DECSTBM
//!   and line feeds or reverse index) instead of being drawn again;
//! - only cells that look different are written (a blank with a different foreground does
//!   not), the cursor moves by the shortest way (none, a few unchanged cells written over,
//!   CUF, CUP), colours and attributes are set only where they change, also from one frame to
//!   the next, and runs of blanks are erased (ECH, EL) rather than written;
//! - only frames large enough to tear are wrapped in a synchronized update.
//!
//! Nothing here knows about panes; `runtime` calls it with the buffer `view::draw` filled.

use std::fmt::Write as _;

use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use unicode_width::UnicodeWidthStr;

mod scroll;
use scroll::{Scroll, find_scroll};

/// Frames with more bytes than this are wrapped in a synchronized update (BSU/ESU).
const SYNC_MIN: usize = 256;
/// Blank runs at least this long are erased with ECH instead of written.
const ERASE_MIN: usize = 6;
/// Unchanged cells written over rather than jumped over with a cursor move (at most).
const BRIDGE_MAX: u16 = 3;
/// Attributes that show on a blank cell (a blank with others looks like any other blank).
const VISIBLE_ON_BLANK: Modifier = Modifier::REVERSED
    .union(Modifier::UNDERLINED)
    .union(Modifier::CROSSED_OUT);

/// The terminal's current colours and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pen {
    fg: Color,
    bg: Color,
    modifier: Modifier,
}

impl Pen {
    const RESET: Pen = Pen {
        fg: Color::Reset,
        bg: Color::Reset,
        modifier: Modifier::empty(),
    };

    fn of(cell: &Cell) -> Pen {
        Pen {
            fg: cell.fg,
            bg: cell.bg,
            modifier: cell.modifier,
        }
    }
}

/// What the terminal shows, and how to bring it to the next frame.
#[derive(Debug)]
pub struct Screen {
    /// The last frame sent (`None`: unknown, the next frame clears and draws everything).
    shown: Option<Buffer>,
    pen: Pen,
    /// Where the cursor is, when known.
    cursor: Option<(u16, u16)>,
}

impl Default for Screen {
    fn default() -> Self {
        Screen::new()
    }
}

impl Screen {
    pub fn new() -> Screen {
        Screen {
            shown: None,
            pen: Pen::RESET,
            cursor: None,
        }
    }

    /// Forgets what the terminal shows (another program drew on it): the next frame is drawn
    /// whole.
    pub fn invalidate(&mut self) {
        self.shown = None;
    }

    /// Appends to `out` the bytes that turn the terminal from the last frame into `next`.
    pub fn frame(&mut self, next: &Buffer, out: &mut Vec<u8>) {
        let start = out.len();
        let mut body = String::new();
        let mut prev = match self.shown.take() {
            Some(p) if p.area == next.area => p,
            _ => {
                // Unknown or resized: clear, then everything that is not blank is drawn.
                body.push_str("\x1b[0m\x1b[2J");
                self.pen = Pen::RESET;
                self.cursor = None;
                Buffer::empty(next.area)
            }
        };
        if let Some(s) = find_scroll(&prev, next) {
            self.scroll(&mut prev, s, next, &mut body);
        }
        self.draw_changes(&prev, next, &mut body);
        if body.len() > SYNC_MIN {
            out.extend_from_slice(b"\x1b[?2026h");
            out.extend_from_slice(body.as_bytes());
            out.extend_from_slice(b"\x1b[?2026l");
        } else {
            out.extend_from_slice(body.as_bytes());
        }
        debug_assert!(out.len() >= start);
        self.shown = Some(next.clone());
    }

    /// Moves rows `s.top..=s.bottom` by `s.by` (up when positive) in a scroll region, and
    /// the same in `prev`, whose vacated rows become blanks in the pen's background.
    fn scroll(&mut self, prev: &mut Buffer, s: Scroll, next: &Buffer, out: &mut String) {
        let area = prev.area;
        // The vacated rows take the pen's background (BCE): use the one they will show.
        let vacated_row = if s.by > 0 { s.bottom } else { s.top };
        let bg = next[(area.x + area.width - 1, area.y + vacated_row)].bg;
        // (the foreground stays: only the background colours the new rows)
        self.set_pen(
            Pen {
                bg,
                fg: self.pen.fg,
                modifier: self.pen.modifier - VISIBLE_ON_BLANK,
            },
            out,
        );
        let n = s.by.unsigned_abs();
        let _ = write!(out, "\x1b[{};{}r", s.top + 1, s.bottom + 1);
        if s.by > 0 {
            let _ = write!(out, "\x1b[{};1H", s.bottom + 1);
            out.extend(std::iter::repeat_n('\n', usize::from(n)));
        } else {
            let _ = write!(out, "\x1b[{};1H", s.top + 1);
            for _ in 0..n {
                out.push_str("\x1bM");
            }
        }
        out.push_str("\x1b[r");
        self.cursor = None;
        // The same move in what the terminal shows.
        let w = usize::from(area.width);
        let row = |y: u16| usize::from(y) * w;
        let blank = {
            let mut c = Cell::default();
            c.bg = bg;
            c.fg = self.pen.fg;
            c
        };
        let (top, bottom, n) = (s.top, s.bottom, n);
        if s.by > 0 {
            for y in top..=bottom {
                if y + n <= bottom {
                    let src = row(y + n);
                    let dst = row(y);
                    for i in 0..w {
                        prev.content[dst + i] = prev.content[src + i].clone();
                    }
                } else {
                    for i in 0..w {
                        prev.content[row(y) + i] = blank.clone();
                    }
                }
            }
        } else {
            for y in (top..=bottom).rev() {
                if y >= top + n {
                    let src = row(y - n);
                    let dst = row(y);
                    for i in 0..w {
                        prev.content[dst + i] = prev.content[src + i].clone();
                    }
                } else {
                    for i in 0..w {
                        prev.content[row(y) + i] = blank.clone();
                    }
                }
            }
        }
    }

    fn draw_changes(&mut self, prev: &Buffer, next: &Buffer, out: &mut String) {
        let area = next.area;
        let right = area.x + area.width;
        let updates: Vec<(u16, u16, &Cell)> = prev
            .diff(next)
            .into_iter()
            .filter(|(x, y, c)| !looks_same(prev, next, *x, *y, c))
            .collect();
        // Runs of blanks to erase, and runs of cells to write (contiguous, in one pen; the
        // cell after a wide character stays with it).
        let mut erase: Vec<(u16, u16, usize, Color)> = Vec::new();
        let mut runs: Vec<Vec<(u16, u16, &Cell)>> = Vec::new();
        let mut i = 0;
        while i < updates.len() {
            let (x, y, cell) = updates[i];
            if is_plain_blank(cell) {
                // (blanks already right count too: erasing them again costs nothing)
                let n = (x..right)
                    .take_while(|bx| {
                        let c = &next[(*bx, y)];
                        is_plain_blank(c) && c.bg == cell.bg
                    })
                    .count();
                if n >= ERASE_MIN {
                    erase.push((x, y, n, cell.bg));
                    while updates
                        .get(i)
                        .is_some_and(|(ux, uy, _)| *uy == y && *ux < x + n as u16)
                    {
                        i += 1;
                    }
                    continue;
                }
            }
            let joins = runs
                .last()
                .and_then(|r| r.last())
                .is_some_and(|(lx, ly, lc)| {
                    let end = lx + lc.symbol().width().max(1) as u16;
                    *ly == y && ((x == end && Pen::of(lc) == Pen::of(cell)) || x < end)
                });
            match runs.last_mut() {
                Some(run) if joins => run.push((x, y, cell)),
                _ => runs.push(vec![(x, y, cell)]),
            }
            i += 1;
        }
        for (x, y, n, bg) in erase {
            self.move_to(x, y, next, out);
            // (attributes such as reverse must not colour the erased cells)
            self.set_pen(
                Pen {
                    bg,
                    fg: self.pen.fg,
                    modifier: self.pen.modifier - VISIBLE_ON_BLANK,
                },
                out,
            );
            if x + n as u16 == right {
                out.push_str("\x1b[K");
            } else {
                let _ = write!(out, "\x1b[{n}X");
            }
        }
        // Runs in one pen go together (a colour is set once, not at every border): the
        // pen the terminal has first, then in the order they appear.
        let mut pens: Vec<Pen> = Vec::new();
        for run in &runs {
            let p = Pen::of(run[0].2);
            if !pens.contains(&p) {
                pens.push(p);
            }
        }
        if let Some(i) = pens.iter().position(|p| *p == self.pen) {
            let p = pens.remove(i);
            pens.insert(0, p);
        }
        for pen in pens {
            for run in runs.iter().filter(|r| Pen::of(r[0].2) == pen) {
                for &(x, y, cell) in run {
                    self.move_to(x, y, next, out);
                    self.set_pen(Pen::of(cell), out);
                    out.push_str(cell.symbol());
                    let w = cell.symbol().width().max(1) as u16;
                    self.cursor = if x + w < right {
                        Some((x + w, y))
                    } else {
                        // At the last column the cursor's position depends on the terminal.
                        None
                    };
                }
            }
        }
    }

    /// Puts the cursor at (`x`, `y`) the shortest way.
    fn move_to(&mut self, x: u16, y: u16, next: &Buffer, out: &mut String) {
        if self.cursor == Some((x, y)) {
            return;
        }
        if let Some((cx, cy)) = self.cursor
            && cy == y
            && cx < x
        {
            // A few cells that are already right, written again in the current pen.
            let gap = x - cx;
            let bridge = gap <= BRIDGE_MAX
                && (cx..x).all(|gx| {
                    let c = &next[(gx, y)];
                    Pen::of(c) == self.pen && c.symbol().len() == 1 && c.symbol().is_ascii()
                });
            if bridge {
                for gx in cx..x {
                    out.push_str(next[(gx, y)].symbol());
                }
            } else if gap == 1 {
                out.push_str("\x1b[C");
            } else {
                let _ = write!(out, "\x1b[{gap}C");
            }
        } else if x == 0 {
            let _ = write!(out, "\x1b[{}H", y + 1);
        } else {
            let _ = write!(out, "\x1b[{};{}H", y + 1, x + 1);
        }
        self.cursor = Some((x, y));
    }

    /// Sets the pen, saying only what changes.
    fn set_pen(&mut self, want: Pen, out: &mut String) {
        if want == self.pen {
            return;
        }
        let mut params: Vec<String> = Vec::new();
        let mut have = self.pen;
        let removed = have.modifier - want.modifier;
        if !removed.is_empty() {
            // Some attributes go: start from a clean pen.
            params.push("0".into());
            have = Pen::RESET;
        }
        for (m, code) in [
            (Modifier::BOLD, "1"),
            (Modifier::DIM, "2"),
            (Modifier::ITALIC, "3"),
            (Modifier::UNDERLINED, "4"),
            (Modifier::SLOW_BLINK, "5"),
            (Modifier::RAPID_BLINK, "6"),
            (Modifier::REVERSED, "7"),
            (Modifier::HIDDEN, "8"),
            (Modifier::CROSSED_OUT, "9"),
        ] {
            if want.modifier.contains(m) && !have.modifier.contains(m) {
                params.push(code.into());
            }
        }
        if want.fg != have.fg {
            params.push(color_param(want.fg, false));
        }
        if want.bg != have.bg {
            params.push(color_param(want.bg, true));
        }
        if !params.is_empty() {
            let _ = write!(out, "\x1b[{}m", params.join(";"));
        }
        self.pen = want;
    }
}

/// The SGR parameter for a colour.
fn color_param(c: Color, bg: bool) -> String {
    let base = if bg { 40 } else { 30 };
    let bright = if bg { 100 } else { 90 };
    match c {
        Color::Reset => format!("{}", base + 9),
        Color::Black => format!("{base}"),
        Color::Red => format!("{}", base + 1),
        Color::Green => format!("{}", base + 2),
        Color::Yellow => format!("{}", base + 3),
        Color::Blue => format!("{}", base + 4),
        Color::Magenta => format!("{}", base + 5),
        Color::Cyan => format!("{}", base + 6),
        Color::Gray => format!("{}", base + 7),
        Color::DarkGray => format!("{bright}"),
        Color::LightRed => format!("{}", bright + 1),
        Color::LightGreen => format!("{}", bright + 2),
        Color::LightYellow => format!("{}", bright + 3),
        Color::LightBlue => format!("{}", bright + 4),
        Color::LightMagenta => format!("{}", bright + 5),
        Color::LightCyan => format!("{}", bright + 6),
        Color::White => format!("{}", bright + 7),
        Color::Indexed(i) => format!("{};5;{i}", base + 8),
        Color::Rgb(r, g, b) => format!("{};2;{r};{g};{b}", base + 8),
    }
}

/// A space whose attributes do not show.
fn is_plain_blank(c: &Cell) -> bool {
    c.symbol() == " " && (c.modifier & VISIBLE_ON_BLANK).is_empty()
}

/// An update that changes nothing the eye sees: a blank over a blank of the same background
/// (outside a wide character's shadow).
fn looks_same(prev: &Buffer, next: &Buffer, x: u16, y: u16, cell: &Cell) -> bool {
    let old = &prev[(x, y)];
    if !(is_plain_blank(cell) && is_plain_blank(old) && old.bg == cell.bg) {
        return false;
    }
    x == prev.area.x
        || (prev[(x - 1, y)].symbol().width() <= 1 && next[(x - 1, y)].symbol().width() <= 1)
}

/// Shows `bytes` as readable text (tests and benchmarks).
pub fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\x1b', "⎋")
}

/// The whole-screen area of a `width` x `height` terminal.
pub fn area(width: u16, height: u16) -> Rect {
    Rect::new(0, 0, width, height)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Style;
    use ratatui::text::Line;

    fn buf(lines: &[&str]) -> Buffer {
        let w = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16;
        let mut b = Buffer::empty(area(w, lines.len() as u16));
        for (y, l) in lines.iter().enumerate() {
            b.set_line(0, y as u16, &Line::from(*l), w);
        }
        b
    }

    /// Replays `bytes` on a tiny terminal model (what tmux or xterm would show) over `before`.
    fn replay(before: &Buffer, bytes: &[u8]) -> Vec<String> {
        let a = before.area;
        let (w, h) = (usize::from(a.width), usize::from(a.height));
        let mut grid: Vec<Vec<String>> = (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| before[(x as u16, y as u16)].symbol().to_string())
                    .collect()
            })
            .collect();
        let (mut cx, mut cy) = (0usize, 0usize);
        let (mut top, mut bottom) = (0usize, h - 1);
        let s = String::from_utf8(bytes.to_vec()).unwrap();
        let mut it = s.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\x1b' => match it.next() {
                    Some('[') => {
                        let mut p = String::new();
                        let mut fin = ' ';
                        for d in it.by_ref() {
                            if d.is_ascii_alphabetic() {
                                fin = d;
                                break;
                            }
                            p.push(d);
                        }
                        let nums: Vec<usize> =
                            p.split(';').map(|n| n.parse().unwrap_or(0)).collect();
                        let n1 = nums.first().copied().unwrap_or(0).max(1);
                        match fin {
                            'H' => {
                                cy = nums.first().copied().unwrap_or(1).max(1) - 1;
                                cx = nums.get(1).copied().unwrap_or(1).max(1) - 1;
                            }
                            'C' => cx += n1,
                            'X' => (cx..(cx + n1).min(w)).for_each(|x| grid[cy][x] = " ".into()),
                            'K' => (cx..w).for_each(|x| grid[cy][x] = " ".into()),
                            'J' => grid.iter_mut().flatten().for_each(|c| *c = " ".into()),
                            'r' => {
                                if p.is_empty() {
                                    (top, bottom) = (0, h - 1);
                                } else {
                                    (top, bottom) = (nums[0] - 1, nums[1] - 1);
                                }
                                (cx, cy) = (0, 0);
                            }
                            'm' | 'h' | 'l' => {}
                            other => panic!("unexpected CSI {p}{other}"),
                        }
                    }
                    Some('M') => {
                        if cy == top {
                            grid.remove(bottom);
                            grid.insert(top, vec![" ".into(); w]);
                        } else {
                            cy -= 1;
                        }
                    }
                    other => panic!("unexpected ESC {other:?}"),
                },
                '\n' => {
                    if cy == bottom {
                        grid.remove(top);
                        grid.insert(bottom, vec![" ".into(); w]);
                    } else {
                        cy += 1;
                    }
                }
                c => {
                    grid[cy][cx] = c.to_string();
                    let cw = c.to_string().width();
                    for k in 1..cw {
                        grid[cy][cx + k] = String::new();
                    }
                    cx = (cx + cw).min(w - 1);
                }
            }
        }
        grid.into_iter().map(|r| r.concat()).collect()
    }

    fn text(b: &Buffer) -> Vec<String> {
        let w = b.area.width;
        (0..b.area.height)
            .map(|y| {
                let mut s = String::new();
                let mut x = 0;
                while x < w {
                    let sym = b[(x, y)].symbol();
                    s.push_str(sym);
                    x += sym.width().max(1) as u16;
                }
                s
            })
            .collect()
    }

    #[test]
    fn the_first_frame_clears_and_draws_then_only_changes_are_sent() {
        let mut s = Screen::new();
        let a = buf(&["hello     ", "          ", "world     "]);
        let mut out = Vec::new();
        s.frame(&a, &mut out);
        assert_eq!(
            replay(&Buffer::empty(a.area), &out),
            text(&a),
            "{}",
            printable(&out)
        );
        let b = buf(&["hello     ", "          ", "worlds    "]);
        let mut out = Vec::new();
        s.frame(&b, &mut out);
        // (the cursor was left just there)
        assert_eq!(printable(&out), "s");
        let mut out = Vec::new();
        s.frame(&b, &mut out);
        assert!(out.is_empty(), "nothing changed: {}", printable(&out));
    }

    #[test]
    fn lines_moving_up_across_the_width_are_scrolled_not_redrawn() {
        let rows: Vec<String> = (0..12)
            .map(|i| format!("line {i:02} of the text"))
            .collect();
        let before: Vec<&str> = rows[0..10].iter().map(String::as_str).collect();
        let after: Vec<&str> = rows[1..11].iter().map(String::as_str).collect();
        let (a, b) = (buf(&before), buf(&after));
        let mut s = Screen::new();
        s.frame(&a, &mut Vec::new());
        let mut out = Vec::new();
        s.frame(&b, &mut out);
        assert_eq!(replay(&a, &out), text(&b), "{}", printable(&out));
        assert!(out.len() < 50, "{} bytes: {}", out.len(), printable(&out));
        // And down (a page up).
        let mut out = Vec::new();
        s.frame(&a, &mut out);
        assert_eq!(replay(&b, &out), text(&a), "{}", printable(&out));
        assert!(out.len() < 50, "{} bytes: {}", out.len(), printable(&out));
    }

    #[test]
    fn the_line_being_written_moves_up_with_the_others() {
        let mut before: Vec<String> = (0..8).map(|i| format!("line {i} of the answer")).collect();
        before.push("and the last one is st".into());
        before.push(format!("{:40}", ""));
        let mut after: Vec<String> = before[1..8].to_vec();
        after.push("and the last one is still being written".into());
        after.push("here".into());
        after.push(format!("{:40}", ""));
        let (a, b) = (
            buf(&before.iter().map(String::as_str).collect::<Vec<_>>()),
            buf(&after.iter().map(String::as_str).collect::<Vec<_>>()),
        );
        let mut s = Screen::new();
        s.frame(&a, &mut Vec::new());
        let mut out = Vec::new();
        s.frame(&b, &mut out);
        assert_eq!(replay(&a, &out), text(&b), "{}", printable(&out));
        let shown = printable(&out);
        assert!(!shown.contains("and the last"), "drawn again: {shown}");
        assert!(shown.contains("ill being written"), "{shown}");
    }

    #[test]
    fn blank_runs_are_erased_and_colours_are_set_once() {
        let mut s = Screen::new();
        let a = buf(&["a long line of text here", "x"]);
        s.frame(&a, &mut Vec::new());
        let mut b = buf(&["a                       ", "y"]);
        b.set_style(Rect::new(0, 1, 1, 1), Style::new().fg(Color::Red));
        let mut out = Vec::new();
        s.frame(&b, &mut out);
        assert_eq!(printable(&out), "⎋[1;3H⎋[K⎋[2H⎋[31my");
        assert_eq!(replay(&a, &out), text(&b));
        // The pen is remembered from frame to frame.
        let mut c = b.clone();
        c.set_string(0, 1, "z", Style::new().fg(Color::Red));
        let mut out = Vec::new();
        s.frame(&c, &mut out);
        assert_eq!(printable(&out), "⎋[2Hz");
    }

    #[test]
    fn wide_characters_replaced_by_narrow_ones_leave_nothing_behind() {
        let mut s = Screen::new();
        let a = buf(&["日本語 ok  "]);
        s.frame(&a, &mut Vec::new());
        let b = buf(&["abc    ok  "]);
        let mut out = Vec::new();
        s.frame(&b, &mut out);
        assert_eq!(replay(&a, &out), text(&b), "{}", printable(&out));
    }
}
