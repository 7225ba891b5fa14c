//! The F1 help overlay: every bindable command with its keys (from the live key map, so
//! `llmux.keys` changes show here) and description, then the keys that are fixed.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use super::action::Command;
use super::keys::KeyMap;
use super::theme::{Role, Theme};

/// Widest the overlay gets.
const WIDTH: u16 = 100;
/// Width of the keys column and of the action names column.
const KEY_COL: usize = 24;
const NAME_COL: usize = 18;

/// Keys that are not commands (they depend on where the focus is).
const FIXED: &[(&str, &str)] = &[
    ("Alt+1..9", "copy code block N of the last answer"),
    (
        "Ctrl+U / Ctrl+W",
        "message: delete to line start / word before",
    ),
    ("Ctrl+Z", "message: undo the last edit"),
    ("Up / Down", "in an empty message: recall sent messages"),
    ("↑↓ j k Home End", "scroll the focused pane"),
    (
        "↑↓ (conversation)",
        "select a message; e edit (a new branch), y copy",
    ),
    (
        "←→ (conversation)",
        "switch branch at the message; d deletes last exchange",
    ),
    ("f (routing log)", "failures only / everything"),
    ("1..9 (picker)", "pick a favorite model"),
    ("Tab after @", "complete a file path (@path attaches it)"),
    ("Enter (models pane)", "use the selected model"),
];

/// The lines of the help text for an overlay `width` columns wide inside. The action names
/// (what `llmux.keys` rebinds) show only where every description still fits beside them:
/// on a narrow terminal, whole descriptions matter more. `shift_enter`: the terminal tells
/// Shift+Enter from Enter (else Shift+Enter is not listed, and a line says why).
pub fn lines(keymap: &KeyMap, theme: &Theme, width: u16, shift_enter: bool) -> Vec<Line<'static>> {
    let key_style = theme.fg(Role::Accent).add_modifier(Modifier::BOLD);
    let muted = theme.fg(Role::Muted);
    let longest = Command::ALL
        .iter()
        .map(|c| c.describe().chars().count())
        .chain(FIXED.iter().map(|(_, d)| d.chars().count()))
        .max()
        .unwrap_or(0);
    let name_col = if usize::from(width) >= KEY_COL + NAME_COL + longest {
        NAME_COL
    } else {
        0
    };
    let mut out = Vec::new();
    for c in Command::ALL {
        let keys: Vec<String> = keymap
            .shown_keys(c, shift_enter)
            .iter()
            .map(ToString::to_string)
            .collect();
        let keys = if keys.is_empty() {
            "-".to_string()
        } else {
            keys.join(", ")
        };
        out.push(Line::from(vec![
            Span::styled(format!("{keys:<KEY_COL$}"), key_style),
            Span::styled(format!("{:<name_col$}", name_of(c, name_col)), muted),
            Span::styled(c.describe().to_string(), theme.fg(Role::Fg)),
        ]));
    }
    out.push(Line::default());
    for (k, d) in FIXED {
        out.push(Line::from(vec![
            Span::styled(format!("{k:<KEY_COL$}"), key_style),
            Span::styled(" ".repeat(name_col), muted),
            Span::styled(d.to_string(), theme.fg(Role::Fg)),
        ]));
    }
    out.push(Line::default());
    if !shift_enter {
        out.push(Line::from(Span::styled(
            format!(
                "This terminal sends Shift+Enter as Enter: {} adds a line.",
                keymap.newline_label(false).replace('/', " or ")
            ),
            muted,
        )));
    }
    let rebind = if name_col > 0 {
        "Rebind under llmux.keys in config.yaml: action name → key, e.g. next_model: \"f5\""
    } else {
        "Rebind under llmux.keys in config.yaml (action names show when wider)"
    };
    out.push(Line::from(Span::styled(rebind, muted)));
    out.push(Line::default());
    out.push(Line::from(Span::styled(
        "Commands: type in the message (Tab completes; //text sends /text)",
        muted,
    )));
    for c in super::slash::COMMANDS {
        out.push(Line::from(vec![
            Span::styled(format!("{:<KEY_COL$}", c.usage()), key_style),
            Span::styled(" ".repeat(name_col), muted),
            Span::styled(c.help.to_string(), theme.fg(Role::Fg)),
        ]));
    }
    out
}

/// A command's action name, or nothing when the names column is hidden.
fn name_of(c: Command, name_col: usize) -> &'static str {
    if name_col > 0 { c.name() } else { "" }
}

/// The overlay's text for `area`, and its width and height there.
fn laid_out(
    keymap: &KeyMap,
    theme: &Theme,
    area: Rect,
    shift_enter: bool,
) -> (Vec<Line<'static>>, u16, u16) {
    let width = WIDTH.min(area.width.saturating_sub(2));
    let lines = lines(keymap, theme, width.saturating_sub(2), shift_enter);
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    (lines, width, height)
}

/// The furthest the overlay scrolls in a `size` terminal: the last line at its bottom (so
/// a run of Down past the end does not have to be walked back).
pub fn max_scroll(keymap: &KeyMap, theme: &Theme, shift_enter: bool, size: (u16, u16)) -> usize {
    let (lines, _, height) = laid_out(keymap, theme, Rect::new(0, 0, size.0, size.1), shift_enter);
    lines
        .len()
        .saturating_sub(height.saturating_sub(2) as usize)
}

/// Draws the overlay centered in `area`.
pub fn render(
    keymap: &KeyMap,
    shift_enter: bool,
    scroll: usize,
    area: Rect,
    buf: &mut Buffer,
    theme: &Theme,
) {
    let (lines, width, height) = laid_out(keymap, theme, area, shift_enter);
    let rect = super::view::centered(area, width, height);
    let hint = " ↑↓ PgUp PgDn Home End scroll · Esc close ";
    let inner = super::view::overlay_frame(buf, theme, rect, ("Keys", true), hint);
    super::view::render_scrolled(buf, inner, &lines, scroll);
}
