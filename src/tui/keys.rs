//! The key map: key descriptions (`ctrl+n`, `alt+enter`, `f1`, `shift+tab`) to [`Command`]s.
//!
//! Built from the defaults (DESIGN.md §5) with `llmux.keys` layered over them: each entry maps
//! a command name to one key or several separated by commas, or to `none` to unbind it. Bad
//! names and keys become warnings shown at start; the defaults stay in force for them.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Command;

/// A key with its modifiers, normalized so that the same press always compares equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyCombo {
    pub code: KeyCodeKey,
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
}

/// The subset of key codes bindings can name (ordered, so maps print stably).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCodeKey {
    Char(char),
    F(u8),
    Enter,
    Esc,
    Tab,
    Backspace,
    Delete,
    Insert,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
}

impl KeyCombo {
    /// Normalizes a crossterm key event; `None` for keys no binding can name.
    pub fn from_event(ev: &KeyEvent) -> Option<KeyCombo> {
        let m = ev.modifiers;
        let mut shift = m.contains(KeyModifiers::SHIFT);
        let code = match ev.code {
            KeyCode::Char(c) => {
                // The character already carries its case; Shift adds nothing to compare.
                shift = false;
                KeyCodeKey::Char(c.to_ascii_lowercase())
            }
            KeyCode::F(n) => KeyCodeKey::F(n),
            KeyCode::Enter => KeyCodeKey::Enter,
            KeyCode::Esc => KeyCodeKey::Esc,
            KeyCode::Tab => KeyCodeKey::Tab,
            KeyCode::BackTab => {
                shift = true;
                KeyCodeKey::Tab
            }
            KeyCode::Backspace => KeyCodeKey::Backspace,
            KeyCode::Delete => KeyCodeKey::Delete,
            KeyCode::Insert => KeyCodeKey::Insert,
            KeyCode::Up => KeyCodeKey::Up,
            KeyCode::Down => KeyCodeKey::Down,
            KeyCode::Left => KeyCodeKey::Left,
            KeyCode::Right => KeyCodeKey::Right,
            KeyCode::Home => KeyCodeKey::Home,
            KeyCode::End => KeyCodeKey::End,
            KeyCode::PageUp => KeyCodeKey::PageUp,
            KeyCode::PageDown => KeyCodeKey::PageDown,
            _ => return None,
        };
        Some(KeyCombo {
            code,
            ctrl: m.contains(KeyModifiers::CONTROL),
            alt: m.contains(KeyModifiers::ALT),
            shift,
        })
    }

    /// Parses `ctrl+n`, `alt+enter`, `shift+tab`, `f1`, `pgup`, `esc`, `space`, `?`.
    pub fn parse(text: &str) -> Result<KeyCombo, String> {
        let text = text.trim().to_ascii_lowercase();
        let mut parts: Vec<&str> = text.split('+').collect();
        // `ctrl++` and `+` name the plus key.
        if text.ends_with("++") || text == "+" {
            parts.retain(|p| !p.is_empty());
            parts.push("+");
        }
        let Some(key) = parts.pop().filter(|k| !k.is_empty()) else {
            return Err(format!("{text:?}: no key"));
        };
        let mut combo = KeyCombo {
            code: KeyCodeKey::Esc,
            ctrl: false,
            alt: false,
            shift: false,
        };
        for m in parts {
            match m {
                "ctrl" | "control" | "c" => combo.ctrl = true,
                "alt" | "meta" | "option" | "m" => combo.alt = true,
                "shift" | "s" => combo.shift = true,
                other => return Err(format!("{text:?}: unknown modifier {other:?}")),
            }
        }
        combo.code = match key {
            "enter" | "return" | "cr" => KeyCodeKey::Enter,
            "esc" | "escape" => KeyCodeKey::Esc,
            "tab" => KeyCodeKey::Tab,
            "backtab" => {
                combo.shift = true;
                KeyCodeKey::Tab
            }
            "backspace" | "bs" => KeyCodeKey::Backspace,
            "delete" | "del" => KeyCodeKey::Delete,
            "insert" | "ins" => KeyCodeKey::Insert,
            "up" => KeyCodeKey::Up,
            "down" => KeyCodeKey::Down,
            "left" => KeyCodeKey::Left,
            "right" => KeyCodeKey::Right,
            "home" => KeyCodeKey::Home,
            "end" => KeyCodeKey::End,
            "pageup" | "pgup" => KeyCodeKey::PageUp,
            "pagedown" | "pgdn" | "pgdown" => KeyCodeKey::PageDown,
            "space" => KeyCodeKey::Char(' '),
            k if k.len() > 1 && k.starts_with('f') => match k[1..].parse::<u8>() {
                Ok(n) if (1..=24).contains(&n) => KeyCodeKey::F(n),
                _ => return Err(format!("{text:?}: unknown key {k:?}")),
            },
            k => {
                let mut chars = k.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        if combo.shift && c.is_ascii_alphabetic() && !combo.ctrl && !combo.alt {
                            // `shift+a` is typed as `A`, which is text, not a binding.
                            return Err(format!("{text:?}: shift+letter is text"));
                        }
                        combo.shift = false;
                        KeyCodeKey::Char(c)
                    }
                    _ => return Err(format!("{text:?}: unknown key {k:?}")),
                }
            }
        };
        Ok(combo)
    }
}

impl fmt::Display for KeyCombo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl+")?;
        }
        if self.alt {
            f.write_str("Alt+")?;
        }
        if self.shift {
            f.write_str("Shift+")?;
        }
        match self.code {
            KeyCodeKey::Char(' ') => f.write_str("Space"),
            KeyCodeKey::Char(c) => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCodeKey::F(n) => write!(f, "F{n}"),
            KeyCodeKey::Enter => f.write_str("Enter"),
            KeyCodeKey::Esc => f.write_str("Esc"),
            KeyCodeKey::Tab => f.write_str("Tab"),
            KeyCodeKey::Backspace => f.write_str("Backspace"),
            KeyCodeKey::Delete => f.write_str("Del"),
            KeyCodeKey::Insert => f.write_str("Ins"),
            KeyCodeKey::Up => f.write_str("Up"),
            KeyCodeKey::Down => f.write_str("Down"),
            KeyCodeKey::Left => f.write_str("Left"),
            KeyCodeKey::Right => f.write_str("Right"),
            KeyCodeKey::Home => f.write_str("Home"),
            KeyCodeKey::End => f.write_str("End"),
            KeyCodeKey::PageUp => f.write_str("PgUp"),
            KeyCodeKey::PageDown => f.write_str("PgDn"),
        }
    }
}

/// The default keys of each command (DESIGN.md §5).
pub fn default_keys(c: Command) -> &'static [&'static str] {
    match c {
        Command::Quit => &["ctrl+q"],
        Command::Send => &["enter"],
        Command::Newline => &["alt+enter", "ctrl+j", "shift+enter"],
        Command::NextModel => &["ctrl+n"],
        Command::PrevModel => &["ctrl+b"],
        Command::OpenPicker => &["ctrl+p"],
        Command::Cancel => &["esc", "ctrl+c"],
        Command::Regenerate => &["ctrl+r"],
        Command::CopyLast => &["ctrl+y"],
        Command::CopyCode => &["ctrl+k"],
        Command::NewConversation => &["ctrl+l"],
        Command::OpenSessions => &["ctrl+o"],
        Command::Help => &["f1"],
        Command::FocusNext => &["tab"],
        Command::FocusPrev => &["shift+tab"],
        Command::ToggleModels => &["f2"],
        Command::ToggleMetrics => &["f3"],
        Command::ToggleLog => &["f4"],
        Command::LogFailures => &["f8"],
        Command::ScrollUp => &["ctrl+up"],
        Command::ScrollDown => &["ctrl+down"],
        Command::PageUp => &["pageup"],
        Command::PageDown => &["pagedown"],
        Command::ScrollTop => &["ctrl+home"],
        Command::ScrollBottom => &["ctrl+end"],
        Command::EditExternal => &["ctrl+e"],
        Command::ToggleStats => &["f5"],
        Command::StatsWindow => &["f6"],
        Command::StatsGroup => &["f7"],
        Command::Palette => &["ctrl+x"],
        Command::Compare => &["ctrl+t"],
        Command::Inspect => &["ctrl+g"],
    }
}

/// Keys to commands.
#[derive(Debug, Clone, Default)]
pub struct KeyMap {
    bindings: BTreeMap<KeyCombo, Command>,
}

impl KeyMap {
    /// The defaults with `overrides` (command name → keys) layered over them, and one
    /// warning per entry that could not be used.
    pub fn new(overrides: &BTreeMap<String, String>) -> (KeyMap, Vec<String>) {
        let mut warnings = Vec::new();
        let mut per_command: BTreeMap<Command, Vec<KeyCombo>> = BTreeMap::new();
        for c in Command::ALL {
            let keys = default_keys(c)
                .iter()
                .filter_map(|k| KeyCombo::parse(k).ok());
            per_command.insert(c, keys.collect());
        }
        for (name, keys) in overrides {
            let Some(c) = Command::from_name(name) else {
                warnings.push(format!("llmux.keys: unknown action {name:?}"));
                continue;
            };
            if keys.trim() == "none" {
                per_command.insert(c, Vec::new());
                continue;
            }
            let parsed: Result<Vec<KeyCombo>, String> =
                keys.split(',').map(KeyCombo::parse).collect();
            match parsed {
                Ok(p) => {
                    // A key given to this command is taken from any other.
                    for other in per_command.values_mut() {
                        other.retain(|k| !p.contains(k));
                    }
                    per_command.insert(c, p);
                }
                Err(e) => warnings.push(format!("llmux.keys.{name}: {e}")),
            }
        }
        let mut bindings = BTreeMap::new();
        for (c, keys) in per_command {
            for k in keys {
                bindings.insert(k, c);
            }
        }
        (KeyMap { bindings }, warnings)
    }

    pub fn lookup(&self, combo: &KeyCombo) -> Option<Command> {
        self.bindings.get(combo).copied()
    }

    /// The keys bound to a command, as shown to the user (`Ctrl+N`), in a stable order.
    pub fn keys_of(&self, c: Command) -> Vec<KeyCombo> {
        self.bindings
            .iter()
            .filter(|(_, v)| **v == c)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The keys of a command as the help shows them; `shift_enter` says whether the terminal
    /// reports Shift+Enter apart from Enter (the kitty keyboard protocol): where it does not,
    /// Shift+Enter sends, so it is not offered as a key.
    pub fn shown_keys(&self, c: Command, shift_enter: bool) -> Vec<KeyCombo> {
        let shift_enter_key = KeyCombo {
            code: KeyCodeKey::Enter,
            ctrl: false,
            alt: false,
            shift: true,
        };
        let mut keys = self.keys_of(c);
        if !shift_enter {
            keys.retain(|k| *k != shift_enter_key);
        }
        keys
    }

    /// The newline keys for the composer's title: Shift+Enter where the terminal tells it apart,
    /// else the others (`Alt+Enter/Ctrl+J`).
    pub fn newline_label(&self, shift_enter: bool) -> String {
        let keys = self.shown_keys(Command::Newline, shift_enter);
        if let Some(k) = keys.iter().find(|k| shift_enter && k.shift) {
            return k.to_string();
        }
        // The defaults' order (Alt+Enter before Ctrl+J), then any other.
        let mut ordered: Vec<KeyCombo> = default_keys(Command::Newline)
            .iter()
            .filter_map(|d| KeyCombo::parse(d).ok())
            .filter(|k| keys.contains(k))
            .collect();
        let rest: Vec<KeyCombo> = keys.into_iter().filter(|k| !ordered.contains(k)).collect();
        ordered.extend(rest);
        match ordered.len() {
            0 => "-".to_string(),
            _ => ordered
                .iter()
                .take(2)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("/"),
        }
    }

    /// The first key of a command as text, or `-` when unbound.
    pub fn label(&self, c: Command) -> String {
        let keys = self.keys_of(c);
        // Prefer the default key's spelling where it is still bound.
        for d in default_keys(c) {
            if let Ok(k) = KeyCombo::parse(d)
                && keys.contains(&k)
            {
                return k.to_string();
            }
        }
        keys.first()
            .map_or_else(|| "-".to_string(), ToString::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn parses_and_matches_events() {
        let (map, w) = KeyMap::new(&BTreeMap::new());
        assert!(w.is_empty());
        let k = |code, m| KeyCombo::from_event(&ev(code, m)).and_then(|c| map.lookup(&c));
        assert_eq!(
            k(KeyCode::Char('n'), KeyModifiers::CONTROL),
            Some(Command::NextModel)
        );
        assert_eq!(
            k(KeyCode::BackTab, KeyModifiers::SHIFT),
            Some(Command::FocusPrev)
        );
        assert_eq!(k(KeyCode::Enter, KeyModifiers::ALT), Some(Command::Newline));
        assert_eq!(k(KeyCode::F(1), KeyModifiers::NONE), Some(Command::Help));
        assert_eq!(k(KeyCode::Char('n'), KeyModifiers::NONE), None);
        assert_eq!(map.label(Command::CopyLast), "Ctrl+Y");
    }

    #[test]
    fn overrides_rebind_unbind_and_warn() {
        let mut o = BTreeMap::new();
        o.insert("next_model".to_string(), "f5, ctrl+j".to_string());
        o.insert("regenerate".to_string(), "none".to_string());
        o.insert("fly".to_string(), "ctrl+x".to_string());
        o.insert("help".to_string(), "hyper+h".to_string());
        let (map, w) = KeyMap::new(&o);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(
            map.lookup(&KeyCombo::parse("f5").unwrap()),
            Some(Command::NextModel)
        );
        assert_eq!(map.lookup(&KeyCombo::parse("ctrl+n").unwrap()), None);
        assert_eq!(map.lookup(&KeyCombo::parse("ctrl+r").unwrap()), None);
        assert_eq!(map.label(Command::Help), "F1");
        assert!(KeyCombo::parse("shift+a").is_err());
    }
}
