//! `llmux monitor --url URL`: the metrics panel and routing log of a running `llmux serve`,
//! live and read-only, in the terminal (over SSH too).
//!
//! `client` follows the server's `/llmux/events` feed and turns it into [`Update`]s,
//! reconnecting by itself; the loop here applies them to a [`MonitorState`] and redraws with
//! `view` (the TUI's metrics and routing log panes, from [`crate::widgets`]) at most once a frame, only when something
//! changed. Keys ([`MonitorState::key`]): `q`, `Esc` or `Ctrl+C` quit, `Tab` switches pane,
//! arrows and page keys scroll. The terminal is restored on exit, on panic (ratatui's hook)
//! and on SIGTERM/SIGHUP. Everything the server sends is escaped as it arrives
//! ([`client::decode`]); diagnostics go through [`errln!`](crate::errln).

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod client;
pub mod state;
pub mod view;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use tokio::sync::mpsc;

pub use state::{Focus, KeyOutcome, Link, MonitorState, Note, Tone, Update};
pub use view::render;

use crate::errln;
use crate::secret::Secret;
use crate::widgets::theme::{ColorDepth, Theme};

/// The shortest time between two frames.
const FRAME_INTERVAL: Duration = Duration::from_millis(50);
/// Updates queued between the feed client and the screen.
const UPDATE_BUFFER: usize = 1024;

/// `llmux monitor` arguments.
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// The server's base URL, e.g. http://127.0.0.1:4000.
    #[arg(long)]
    pub url: String,
    /// The server's master key (default: $LLMUX_MASTER_KEY). On the command line it is visible
    /// to other users through `ps`: prefer the variable or --key-file.
    #[arg(long, env = "LLMUX_MASTER_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Read the master key from this file (surrounding whitespace ignored); takes precedence
    /// over --key and $LLMUX_MASTER_KEY.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<std::path::PathBuf>,
    /// The TUI theme to draw in (a built-in one or a file in <config dir>/llmux/themes/).
    #[arg(long)]
    pub theme: Option<String>,
}

/// Runs the monitor until the user quits; returns the exit code.
pub async fn command(args: MonitorArgs) -> u8 {
    let base = args.url.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        errln!("llmux monitor: --url must start with http:// or https://");
        return crate::exit::EXIT_USAGE;
    }
    let key = match master_key(args.key, args.key_file.as_deref()) {
        Ok(key) => key,
        Err(e) => {
            errln!("llmux monitor: {e}");
            return crate::exit::EXIT_USAGE;
        }
    };
    let user_themes = crate::config::config_dir().map(|d| d.join("themes"));
    let (theme, theme_warning) = Theme::load(
        args.theme.as_deref(),
        user_themes.as_deref(),
        ColorDepth::detect(),
    );
    if let Some(w) = theme_warning {
        errln!("llmux monitor: {w}");
    }
    let (tx, rx) = mpsc::channel(UPDATE_BUFFER);
    let feed = tokio::spawn(client::follow(base.clone(), key, tx));
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            feed.abort();
            errln!("llmux monitor: cannot use the terminal: {e}");
            return crate::exit::EXIT_FAILED;
        }
    };
    let result = run(&mut terminal, MonitorState::new(base), &theme, rx).await;
    ratatui::restore();
    feed.abort();
    match result {
        Ok(()) => crate::exit::EXIT_OK,
        Err(e) => {
            errln!("llmux monitor: {e}");
            crate::exit::EXIT_FAILED
        }
    }
}

/// A `--key-file` that gives no key; each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
enum KeyFileError {
    #[error(
        "cannot read the master key from --key-file {}: {source}; give a readable file \
         holding the key",
        path.display()
    )]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--key-file {} is empty: write the server's master key into it", path.display())]
    Empty { path: PathBuf },
}

/// The master key: from `--key-file` when given, else `--key` / `$LLMUX_MASTER_KEY`; `None`
/// when there is none (or it is empty).
fn master_key(
    key: Option<String>,
    key_file: Option<&Path>,
) -> Result<Option<Secret>, KeyFileError> {
    let Some(path) = key_file else {
        return Ok(key.filter(|k| !k.trim().is_empty()).map(Secret::new));
    };
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(KeyFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(Some(Secret::new(key.to_string())))
}

/// Resolves on SIGTERM or SIGHUP (the SSH session went away).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut term), Ok(mut hup)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
}

async fn run(
    terminal: &mut ratatui::DefaultTerminal,
    mut state: MonitorState,
    theme: &Theme,
    mut updates: mpsc::Receiver<Update>,
) -> std::io::Result<()> {
    let mut keys = EventStream::new();
    let mut frame = tokio::time::interval(FRAME_INTERVAL);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stop = terminated();
    futures::pin_mut!(stop);
    let mut dirty = true;
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            key = keys.next() => match key {
                Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => {
                    match state.key(k) {
                        KeyOutcome::Quit => return Ok(()),
                        KeyOutcome::Redraw => dirty = true,
                        KeyOutcome::Ignored => {}
                    }
                }
                // A resize (or anything else) redraws.
                Some(Ok(_)) => dirty = true,
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            update = updates.recv() => match update {
                Some(u) => {
                    state.apply(u);
                    // Drain what else is queued before the next frame.
                    while let Ok(u) = updates.try_recv() {
                        state.apply(u);
                    }
                    dirty = true;
                }
                None => return Ok(()),
            },
            _ = frame.tick(), if dirty => {
                terminal.draw(|f| render(&state, theme, f.area(), f.buffer_mut()))?;
                dirty = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_comes_from_a_file_before_the_option_or_the_variable() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("key");
        std::fs::write(&file, "sk-from-file\n").unwrap_or_else(|e| panic!("{e}"));
        let key = |given: Option<&str>, file: Option<&Path>| {
            master_key(given.map(str::to_string), file)
                .map(|k| k.map(|k| k.expose().to_string()))
                .map_err(|e| e.to_string())
        };
        assert_eq!(key(Some("sk-given"), None), Ok(Some("sk-given".into())));
        assert_eq!(key(Some("  "), None), Ok(None));
        assert_eq!(key(None, None), Ok(None));
        assert_eq!(
            key(Some("sk-given"), Some(&file)),
            Ok(Some("sk-from-file".into()))
        );
        let missing = dir.path().join("none");
        let err = master_key(None, Some(&missing)).unwrap_err();
        assert!(
            matches!(&err, KeyFileError::Unreadable { path, .. } if *path == missing),
            "{err:?}"
        );
        let prefix = format!(
            "cannot read the master key from --key-file {}: ",
            missing.display()
        );
        let err = err.to_string();
        assert!(err.starts_with(&prefix), "{err}");
        assert!(
            err.ends_with("; give a readable file holding the key"),
            "{err}"
        );
        std::fs::write(&file, " \n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            key(None, Some(&file)),
            Err(format!(
                "--key-file {} is empty: write the server's master key into it",
                file.display()
            ))
        );
    }
}
