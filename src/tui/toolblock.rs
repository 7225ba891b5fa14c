//! Tool calls and tool results in the conversation, as collapsed one-line blocks:
//! `▸ tool call get_weather({"city":"Paris"…})` and `◂ tool result get_weather: 18°C…`,
//! never raw JSON across the pane.
//!
//! A [`ToolCall`] of an answer or a [`ToolResult`] entry enters with the pane's width and
//! leaves as one [`Line`], cut to the width with `…`; whitespace runs (pretty-printed JSON)
//! fold to one space and control characters are escaped.

use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

use crate::provider::ToolCall;
use crate::sanitize::escape_controls;
use crate::store::session::ToolResult;

use super::theme::{Role, Theme};
use super::wrap::{Piece, truncate_pieces};

/// The marker of a tool call.
const CALL_MARKER: &str = "▸ tool call ";
/// The marker of a tool result.
const RESULT_MARKER: &str = "◂ tool result ";
/// The marker of a failed tool result.
const ERROR_MARKER: &str = "◂ tool error ";
/// Shown where a block was cut.
const ELLIPSIS: &str = "…";
/// At most this much of a long argument or result text is looked at for the one line.
const PREVIEW_CHARS: usize = 400;

/// `text` on one line: escaped, whitespace runs folded to a space, at most
/// [`PREVIEW_CHARS`] characters (with `…` when longer).
fn one_line(text: &str) -> String {
    let head: String = text.chars().take(PREVIEW_CHARS).collect();
    let mut out =
        escape_controls(&head.split_whitespace().collect::<Vec<_>>().join(" ")).into_owned();
    if text.chars().nth(PREVIEW_CHARS).is_some() {
        out.push_str(ELLIPSIS);
    }
    out
}

/// Pieces cut to `width` columns, ending in `…` when something was cut.
fn fit(pieces: Vec<Piece>, width: usize) -> Line<'static> {
    let total: usize = pieces.iter().map(|(t, _)| t.width()).sum();
    let pieces = if total > width && width > 0 {
        let style = pieces.last().map(|(_, s)| *s).unwrap_or_default();
        let mut cut = truncate_pieces(pieces, width.saturating_sub(ELLIPSIS.width()));
        cut.push((ELLIPSIS.to_string(), style));
        cut
    } else {
        pieces
    };
    Line::from(
        pieces
            .into_iter()
            .map(|(t, s)| Span::styled(t, s))
            .collect::<Vec<_>>(),
    )
}

/// One tool call of an answer.
pub fn call_line(call: &ToolCall, width: usize, theme: &Theme) -> Line<'static> {
    let accent = theme.fg(Role::Accent);
    let name = if call.name.is_empty() {
        "?".to_string()
    } else {
        escape_controls(&call.name).into_owned()
    };
    fit(
        vec![
            (CALL_MARKER.to_string(), accent),
            (name, accent.add_modifier(Modifier::BOLD)),
            (
                format!("({})", one_line(&call.arguments)),
                theme.fg(Role::Muted),
            ),
        ],
        width,
    )
}

/// One tool result.
pub fn result_line(result: &ToolResult, width: usize, theme: &Theme) -> Line<'static> {
    let (marker, role) = if result.is_error {
        (ERROR_MARKER, Role::Error)
    } else {
        (RESULT_MARKER, Role::Info)
    };
    let who = escape_controls(result.name.as_deref().unwrap_or(&result.tool_call_id)).into_owned();
    fit(
        vec![
            (marker.to_string(), theme.fg(role)),
            (who, theme.fg(role).add_modifier(Modifier::BOLD)),
            (
                format!(": {}", one_line(&result.text)),
                theme.fg(Role::Muted),
            ),
        ],
        width,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::ColorDepth;

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn a_call_is_one_line_cut_to_the_width() {
        let theme = Theme::builtin_default(ColorDepth::Mono);
        let call = ToolCall {
            id: "c1".into(),
            name: "get_weather".into(),
            arguments: "{\n  \"city\": \"Paris\",\n  \"unit\": \"celsius\"\n}".into(),
        };
        let wide = text(&call_line(&call, 200, &theme));
        assert_eq!(
            wide,
            "▸ tool call get_weather({ \"city\": \"Paris\", \"unit\": \"celsius\" })"
        );
        let narrow = call_line(&call, 30, &theme);
        assert_eq!(text(&narrow), "▸ tool call get_weather({ \"ci…");
        assert_eq!(narrow.width(), 30);
    }

    #[test]
    fn results_name_the_tool_and_escape_control_characters() {
        let theme = Theme::builtin_default(ColorDepth::Mono);
        let r = ToolResult {
            id: 1,
            tool_call_id: "c1".into(),
            name: None,
            text: "ok \x1b[2J".into(),
            is_error: true,
        };
        assert_eq!(
            text(&result_line(&r, 80, &theme)),
            "◂ tool error c1: ok \\x1b[2J"
        );
    }
}
