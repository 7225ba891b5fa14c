//! The IO behind the chat commands (`/role`, `/theme`, `/rename`, `/delete`), for the effect
//! runner: each reads or changes files and returns the action that reports it. Kept apart
//! from `runtime` so the commands' IO is in one place and testable without a terminal.

use std::path::Path;

use super::action::Action;
use super::theme::{self, ColorDepth, Theme};
use crate::store::session::SessionStore;

/// Reads role `name` from `dir` (`<config dir>/llmux/roles`).
pub fn load_role(dir: Option<&Path>, name: &str) -> Action {
    Action::RoleLoaded(match dir {
        Some(d) => crate::roles::load(d, name).map_err(|e| e.to_string()),
        None => Err(crate::roles::RoleError::NoDir.to_string()),
    })
}

/// Loads theme `name` (a built-in one or `<name>.yaml` in `user_dir`); an unknown or broken
/// one is an error, and the theme shown stays.
pub fn load_theme(user_dir: Option<&Path>, name: &str, depth: ColorDepth) -> Action {
    let known = theme::available(user_dir);
    if !known.iter().any(|n| n == name) {
        return Action::ThemeLoaded(Err(format!(
            "no theme {name:?}: themes are {}",
            known.join(", ")
        )));
    }
    let (t, warning) = Theme::load(Some(name), user_dir, depth);
    Action::ThemeLoaded(match warning {
        Some(w) => Err(w),
        None => Ok(Box::new(t)),
    })
}

/// Renames session `from` to `to`.
pub fn rename(store: Option<&SessionStore>, from: &str, to: &str) -> Action {
    Action::SessionRenamed {
        from: from.to_string(),
        result: match store {
            Some(s) => s.rename(from, to).map_err(|e| e.to_string()),
            None => Err("no data directory".to_string()),
        },
    }
}

/// Deletes session `name`.
pub fn delete(store: Option<&SessionStore>, name: &str) -> Action {
    Action::SessionDeleted {
        name: name.to_string(),
        result: match store {
            Some(s) => s.delete(name).map_err(|e| e.to_string()),
            None => Err("no data directory".to_string()),
        },
    }
}

/// Reads the numbers of the sessions `names` on a blocking thread and sends them back as
/// one `Action::SessionsSummarized` (a file that cannot be read is left out).
pub fn summarize(store: SessionStore, names: Vec<String>, tx: tokio::sync::mpsc::Sender<Action>) {
    tokio::task::spawn_blocking(move || {
        let found: Vec<_> = names
            .into_iter()
            .filter_map(|n| store.summary(&n).ok().map(|s| (n, s)))
            .collect();
        let _ = tx.blocking_send(Action::SessionsSummarized(found));
    });
}
