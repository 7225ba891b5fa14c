//! What the TUI knows of each deployment's limits — its context window (`max_input_tokens`,
//! from `model_info` or the price table) and whether it takes images (the router's own check,
//! `provider::params::takes_whole`) — and the context meter in the composer's title.
//!
//! Attachments ask [`Windows::images_ok`] before an image is sent. The meter
//! ([`composer_title`]) shows the next request's size (the history as it would be sent plus
//! the draft, estimated as the router's context-window check does) against the current
//! group's smallest window: `~12.4k / 128k`, a warning from 80%, and the deployments it no
//! longer fits (the router skips those; past all of them it goes to
//! `context_window_fallbacks`). The history's estimate is cached until the conversation
//! changes.

use crate::config::Config;
use crate::provider::{ChatRequest, ImageSource, Message, Part, Role, params};

/// One deployment's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentLimits {
    pub id: String,
    pub group: String,
    /// Its context window in tokens, when known.
    pub max_input: Option<u64>,
    /// It takes image parts.
    pub images: bool,
}

/// Every deployment's limits, in config order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windows {
    pub deployments: Vec<DeploymentLimits>,
}

impl Windows {
    /// The limits the config states (the router adds the price table's windows at start,
    /// [`Windows::set_max_input`]).
    pub fn of(cfg: &Config) -> Windows {
        let probe = ChatRequest::new(vec![Message::with_parts(
            Role::User,
            vec![Part::Image {
                source: ImageSource::Base64 {
                    media_type: "image/png".into(),
                    data: String::new(),
                },
                detail: None,
            }],
        )]);
        Windows {
            deployments: cfg
                .deployments
                .iter()
                .map(|d| DeploymentLimits {
                    id: d.id.clone(),
                    group: d.group.clone(),
                    max_input: d.max_input_tokens,
                    images: params::takes_whole(d, &probe),
                })
                .collect(),
        }
    }

    /// The window of deployment `id`, as the router knows it.
    pub fn set_max_input(&mut self, id: &str, max_input: Option<u64>) {
        if let Some(d) = self.deployments.iter_mut().find(|d| d.id == id) {
            d.max_input = max_input.or(d.max_input);
        }
    }

    /// The deployments of `group`.
    pub fn of_group<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a DeploymentLimits> {
        self.deployments.iter().filter(move |d| d.group == group)
    }

    /// Whether `group` has a deployment that takes images.
    pub fn takes_images(&self, group: &str) -> bool {
        self.of_group(group).any(|d| d.images)
    }

    /// Whether `group` has a deployment that takes images; else what to do instead.
    pub fn images_ok(&self, group: &str) -> Result<(), String> {
        if self.takes_images(group) {
            return Ok(());
        }
        let mine: Vec<&str> = self.of_group(group).map(|d| d.id.as_str()).collect();
        let mut others: Vec<&str> = self
            .deployments
            .iter()
            .filter(|d| d.images && d.group != group)
            .map(|d| d.group.as_str())
            .collect();
        others.dedup();
        let instead = if others.is_empty() {
            "no group of this config takes them (a model that reads images needs \
             model_info.supports_vision unset or true; mock/ ones never do)"
                .to_string()
        } else {
            format!("send it to {} instead", others.join(", "))
        };
        Err(format!(
            "{group} takes no images: {instead} (none of {} does)",
            mine.join(", ")
        ))
    }
}

/// Share of the smallest window from which the meter warns.
const WARN_AT: f64 = 0.8;

/// Tokens as the meter shows them: `950`, `12.4k`, `128k`, `1.2M`.
fn tokens(n: u64) -> String {
    if (1000..1_000_000).contains(&n) && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        super::fmt::count(n)
    }
}

/// How full the next request would be: the conversation's history as it would be sent, plus
/// the draft (pastes in full). The same estimate the router's context-window check makes.
/// While an answer streams the meter counts the request in flight (the history up to the
/// answer): the next request cannot be sent before it ends, and a figure that changed with
/// every token would redraw the title each frame (bytes over SSH).
/// While a message is edited, the history is what comes before it (the edit replaces it).
pub fn prompt_tokens(app: &super::app::App) -> u64 {
    let position = |id: u64| app.entries.iter().rposition(|e| e.id() == id);
    let streaming = app.inflight.as_ref().and_then(|f| position(f.answer_id));
    let edited = app.editing.as_ref().and_then(|e| position(e.id));
    let end = [streaming, edited]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(app.entries.len());
    let entries = &app.entries[..end];
    let key = (
        entries.len(),
        entries.last().map_or(0, |e| match e {
            crate::store::session::Entry::User(u) => u.text.len(),
            crate::store::session::Entry::Answer(a) => a.text.len() + a.tool_calls.len(),
            crate::store::session::Entry::ToolResult(t) => t.text.len(),
        }),
        // A group that takes no images is sent the history without them.
        app.b.windows.takes_images(app.current_group()),
    );
    let history = match app.b.history_tokens.get() {
        Some((k, n)) if k == key => n,
        _ => {
            let mut messages = crate::store::session::history(entries);
            if !key.2 {
                crate::store::session_history::without_images(&mut messages);
            }
            let n = crate::provider::estimate_prompt_tokens(&messages);
            app.b.history_tokens.set(Some((key, n)));
            n
        }
    };
    let system = app
        .settings
        .system
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .map_or(0, |p| crate::provider::estimate_tokens(p) + 4);
    let history = history + system;
    let draft = app.draft();
    if draft.trim().is_empty() {
        return history;
    }
    let draft = app.b.attach.expand(&draft);
    history + crate::provider::estimate_tokens(&draft) + 4
}

/// The composer's title, and the context meter beside it: `~12.4k / 128k` against the
/// current group's smallest window, a warning near it, and which deployments the request no
/// longer fits. No meter for an empty conversation and draft.
pub fn composer_title(app: &super::app::App) -> (String, Option<ratatui::text::Line<'static>>) {
    use super::theme::Role;
    let group = app.current_group();
    let title = format!("Message → {group}");
    let used = prompt_tokens(app);
    if used == 0 {
        return (title, None);
    }
    let windows: Vec<(&str, u64)> = app
        .b
        .windows
        .of_group(group)
        .filter_map(|d| d.max_input.map(|m| (d.id.as_str(), m)))
        .collect();
    let theme = &app.theme;
    let Some(smallest) = windows.iter().map(|(_, m)| *m).min() else {
        let text = format!(" ~{} tok ", tokens(used));
        return (
            title,
            Some(ratatui::text::Line::styled(text, theme.fg(Role::Muted))),
        );
    };
    let over: Vec<&str> = windows
        .iter()
        .filter(|(_, m)| used > *m)
        .map(|(id, _)| *id)
        .collect();
    let meter = format!("~{} / {}", tokens(used), tokens(smallest));
    let (text, role) = if over.len() == windows.len() {
        (
            format!(" {meter} · too long for every deployment of {group} "),
            Role::Error,
        )
    } else if !over.is_empty() {
        (
            format!(" {meter} · too long for {} ", over.join(", ")),
            Role::Warning,
        )
    } else if used as f64 >= smallest as f64 * WARN_AT {
        (format!(" {meter} · near the limit "), Role::Warning)
    } else {
        (format!(" {meter} "), Role::Muted)
    };
    (
        title,
        Some(ratatui::text::Line::styled(text, theme.fg(role))),
    )
}
