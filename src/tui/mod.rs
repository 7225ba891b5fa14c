//! The terminal UI: chat with a model group, switch groups with one key, and watch the
//! routing (attempts, retries, cooldowns, fallbacks), the metrics and the cost live.
//!
//! Data flow (DESIGN.md §4): keys, router events and effect results arrive as
//! [`action::Action`]s on one channel (`runtime`); [`app::App::update`] changes the state and
//! returns [`action::Effect`]s, which the runner performs (start or drop a request, append to
//! the session file, copy with OSC 52, run `$EDITOR`); the loop draws with [`view::draw`] when
//! something changed, at most every 16 ms. Panes are modules: `conversation`, `picker`,
//! `metrics` (and `statsview`, its usage stats view), `routelog`, `help`, `sessions`, `live`,
//! and the small ones in `view`; `metrics`, `routelog` and the theme are shared with `llmux monitor`
//! from [`crate::widgets`].

pub mod action;
pub mod app;
pub mod attach;
pub mod branch;
pub mod chatio;
pub mod clipboard;
pub mod commands;
pub mod compare;
pub mod compare_view;
pub mod context;
pub mod conversation;
pub mod find;
pub mod glyphs;
pub mod help;
pub mod highlight;
pub mod input;
pub mod inspect;
pub mod keys;
pub mod layout;
pub mod live;
pub mod markdown;
pub mod palette;
pub mod panes;
pub mod part_b;
pub mod picker;
pub mod render;
pub mod runtime;
pub mod sessionlist;
pub mod sessions;
pub mod slash;
pub mod statsview;
pub mod terminal;
pub mod toolblock;
pub mod turn;
pub mod view;
pub mod wirefile;

// The panes `llmux monitor` draws too, shared with it from `crate::widgets`; named here as
// the TUI's own so its modules keep reading `super::theme`, `super::metrics`, ….
pub use crate::widgets::{fmt, metrics, routelog, theme, wrap};

use std::path::Path;
use std::time::SystemTime;

use tokio::time::Instant;

use crate::exit::{EXIT_FAILED, EXIT_OK};
use crate::store::session::{LoadedSession, SessionStore};

pub use app::App;

/// Opens the TUI: loads the config (`--config`, `$LLMUX_CONFIG`, the config dir, else the
/// demo), reopens `--session NAME` (else the most recent conversation), and runs until quit.
/// Returns the process exit code.
pub async fn run(config: Option<&Path>, session: Option<String>) -> u8 {
    let cfg = match crate::startup::load_config(config, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let config_warnings = cfg.warnings.len();
    // The inspector's wire capture: on for the TUI only (`serve` and `ask` capture nothing).
    let options = crate::router::RouterOptions {
        capture: Some(std::sync::Arc::new(crate::router::capture::Capture::new())),
        ..crate::router::RouterOptions::default()
    };
    let router = match crate::startup::build_router_in_tui(cfg, options) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let cfg = router.config().clone();
    highlight::warm_up();
    let depth = theme::ColorDepth::detect();
    let user_themes = crate::config::config_dir().map(|d| d.join("themes"));
    let (theme, theme_warning) =
        theme::Theme::load(cfg.app.theme.as_deref(), user_themes.as_deref(), depth);
    let (mut app, mut warnings) = App::new(&cfg, theme, Instant::now(), SystemTime::now);
    app.ascii = glyphs::ascii_wanted();
    for d in router.deployments() {
        app.b.windows.set_max_input(&d.id, d.max_input_tokens);
    }
    app.slash.themes = theme::available(user_themes.as_deref());
    app.slash.roles = crate::roles::default_dir()
        .map(|d| crate::roles::list(&d))
        .unwrap_or_default();
    if let Some(p) = crate::config::default_config_path() {
        app.config_path = home_relative(&p);
    }
    warnings.extend(theme_warning);
    if config_warnings > 0 {
        warnings.push(format!(
            "{config_warnings} config warning(s): run `llmux check`"
        ));
    }
    let store = SessionStore::default_location();
    let loaded = open_session(store.as_ref(), session.as_deref());
    match loaded {
        Ok(Some(s)) => app.load_session(s),
        Ok(None) => {}
        Err(e) => warnings.push(e),
    }
    if !warnings.is_empty() {
        app.toast(warnings.join("; "), true);
    }
    let log_handle = router.clone();
    let outcome = runtime::run_loop(router, app, store, cfg.app.mouse).await;
    log_handle.close().await;
    match outcome {
        Ok(()) => EXIT_OK,
        Err(e) => {
            runtime::leave();
            eprintln!("llmux: terminal error: {e}");
            EXIT_FAILED
        }
    }
}

/// `path` with the home directory written `~`.
fn home_relative(path: &Path) -> String {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    match home.as_deref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

/// `--session NAME` (created when new), else the most recently used conversation.
fn open_session(
    store: Option<&SessionStore>,
    name: Option<&str>,
) -> Result<Option<LoadedSession>, String> {
    let Some(store) = store else {
        return Ok(None);
    };
    let name = match name {
        Some(n) => n.to_string(),
        None => match store.list() {
            Ok(list) => match list.into_iter().next() {
                Some(latest) => latest.name,
                None => return Ok(None),
            },
            Err(e) => return Err(format!("cannot list sessions: {e}")),
        },
    };
    store
        .load(&name)
        .map(Some)
        .map_err(|e| format!("cannot open session {name}: {e}"))
}
