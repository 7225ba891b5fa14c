//! The terminal itself: put in TUI mode (raw, alternate screen, bracketed paste, keyboard
//! enhancement where it is offered, mouse only if asked for) and given back on exit and on a
//! panic, which also saves the draft; frames go out through [`Screen`] in one write each.

use std::io::{BufWriter, Stdout, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    KeyboardEnhancementFlags, PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};

use crate::store::session::{Record, SessionStore};

use super::app::App;
use super::render::Screen;
use super::view;

/// Output buffer for one frame (written in one go, so a frame crosses SSH whole).
const OUT_BUFFER: usize = 64 * 1024;

/// The terminal: where frames go, and what it shows ([`render::Screen`]).
pub(super) struct Term {
    out: BufWriter<Stdout>,
    screen: Screen,
    /// A frame's bytes, reused.
    bytes: Vec<u8>,
}

impl Term {
    /// Takes the terminal back after a program ran in it (`$EDITOR`): TUI mode again, and the
    /// next frame drawn whole.
    pub(super) fn resume(&mut self) {
        let _ = enable_raw_mode();
        let _ = execute!(
            std::io::stdout(),
            EnterAlternateScreen,
            EnableBracketedPaste,
            cursor::Hide
        );
        enhance_keyboard(&mut std::io::stdout());
        self.screen.invalidate();
    }

    /// Writes `bytes` to the terminal at once, between frames (an OSC 52 copy).
    pub(super) fn write_now(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.out.flush()
    }

    /// Sends the bytes that bring the terminal to `app`'s frame.
    pub(super) fn draw(&mut self, app: &App) -> std::io::Result<()> {
        let area = ratatui::layout::Rect::new(0, 0, app.size.0, app.size.1);
        let mut buf = ratatui::buffer::Buffer::empty(area);
        view::draw(app, area, &mut buf);
        self.bytes.clear();
        self.screen.frame(&buf, &mut self.bytes);
        self.out.write_all(&self.bytes)?;
        self.out.flush()
    }
}

/// The keyboard enhancement flags were pushed (and are popped on the way out).
static KEYBOARD_PUSHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks the terminal to tell keys apart that legacy encoding merges (kitty keyboard protocol,
/// crossterm's `PushKeyboardEnhancementFlags`) where it says it can, so Shift+Enter arrives as
/// itself and adds a line. Returns whether it did. Must run before the event reader starts: the
/// query reads the terminal's answer from stdin.
fn enhance_keyboard(out: &mut impl Write) -> bool {
    if !matches!(
        crossterm::terminal::supports_keyboard_enhancement(),
        Ok(true)
    ) {
        return false;
    }
    let pushed = execute!(
        out,
        PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
    )
    .is_ok();
    KEYBOARD_PUSHED.store(pushed, std::sync::atomic::Ordering::Relaxed);
    pushed
}

/// What the panic hook needs to save the draft.
static PANIC_DRAFT: Mutex<Option<(PathBuf, String)>> = Mutex::new(None);

pub(super) fn set_panic_draft(path: Option<PathBuf>, draft: String) {
    let mut guard = match PANIC_DRAFT.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    *guard = path.map(|p| (p, draft));
}

/// Puts the terminal in TUI mode: raw, alternate screen, bracketed paste, keyboard
/// enhancement where supported, mouse only if asked for. Returns the terminal and whether
/// Shift+Enter can be told from Enter.
pub(super) fn enter(mouse: bool) -> std::io::Result<(Term, bool)> {
    enable_raw_mode()?;
    let mut out = std::io::stdout();
    execute!(
        out,
        EnterAlternateScreen,
        EnableBracketedPaste,
        cursor::Hide
    )?;
    let enhanced = enhance_keyboard(&mut out);
    if mouse {
        execute!(out, EnableMouseCapture)?;
    }
    let term = Term {
        out: BufWriter::with_capacity(OUT_BUFFER, std::io::stdout()),
        screen: Screen::new(),
        bytes: Vec::with_capacity(OUT_BUFFER),
    };
    Ok((term, enhanced))
}

/// Gives the terminal back; every step is tried even if one fails (the terminal may be gone).
pub fn leave() {
    let mut out = std::io::stdout();
    if KEYBOARD_PUSHED.swap(false, std::sync::atomic::Ordering::Relaxed) {
        let _ = execute!(out, PopKeyboardEnhancementFlags);
    }
    let _ = execute!(
        out,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
}

pub(super) fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave();
        let saved = match PANIC_DRAFT.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if let Some((path, draft)) = saved
            && !draft.is_empty()
        {
            let mut w = SessionStore::new(path.parent().map(PathBuf::from).unwrap_or_default())
                .writer(path.file_stem().and_then(|s| s.to_str()).unwrap_or("draft"));
            let _ = w.append(&Record::Draft { text: draft });
        }
        previous(info);
    }));
}
