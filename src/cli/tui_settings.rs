//! What the TUI would say about `llmux.keys` and `llmux.theme`, said by `llmux check` instead
//! (the TUI shows it only in a toast that vanishes).
//!
//! The TUI's own key-map and theme loaders judge the settings, so `check` and the TUI never
//! disagree; each finding becomes a [`ConfigWarning`] at the entry it is about.

use std::collections::BTreeMap;

use crate::config::{self, Config, ConfigWarning};
use crate::tui::action::Command;
use crate::tui::keys::KeyMap;
use crate::widgets::theme::{self, ColorDepth, Theme};

/// One warning per `llmux.keys` entry the TUI would not use, and one for a theme it would not
/// load, placed in `text` (the config's own text).
pub fn warnings(cfg: &Config, text: &str) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    for (action, keys) in &cfg.app.keys {
        let one = BTreeMap::from([(action.clone(), keys.clone())]);
        let (_, found) = KeyMap::new(&one);
        let path = format!("llmux.keys.{action}");
        let unknown_action = Command::from_name(action).is_none();
        for message in found {
            let message = if unknown_action {
                let names = Command::ALL.iter().map(|c| c.name());
                match config::closest(action, names) {
                    Some(near) => format!("{message} (did you mean {near}?)"),
                    None => format!("{message}; the actions are listed in the help (F1)"),
                }
            } else {
                message
            };
            out.push(config::warning_at(text, &path, unknown_action, message));
        }
    }
    if let Some(name) = cfg.app.theme.as_deref() {
        let user_dir = config::config_dir().map(|d| d.join("themes"));
        let (_, found) = Theme::load(Some(name), user_dir.as_deref(), ColorDepth::TrueColor);
        if let Some(message) = found {
            let names = theme::available(user_dir.as_deref());
            let near = config::closest(name, names.iter().map(String::as_str))
                .map(|n| format!("did you mean {n}? "))
                .unwrap_or_default();
            let message = format!(
                "llmux.theme: {message} ({near}themes: {})",
                names.join(", ")
            );
            out.push(config::warning_at(text, "llmux.theme", false, message));
        }
    }
    out
}
