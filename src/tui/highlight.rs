//! Code highlighting with syntect (pure-Rust regexes, no onig). The syntax definitions load
//! once, lazily, on a background thread started at launch so the first frame never waits for
//! them; the colours come from the current base16 theme, mapped onto TextMate scopes the way
//! base16 editor themes do.

use std::str::FromStr;
use std::sync::OnceLock;

use ratatui::style::{Modifier, Style};
use syntect::easy::HighlightLines;
use syntect::highlighting::{
    Color as SynColor, FontStyle, ScopeSelectors, StyleModifier, Theme as SynTheme, ThemeItem,
    ThemeSettings,
};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

use super::theme::Theme;

static SYNTAXES: OnceLock<SyntaxSet> = OnceLock::new();

fn syntaxes() -> &'static SyntaxSet {
    SYNTAXES.get_or_init(SyntaxSet::load_defaults_newlines)
}

/// Starts loading the syntax definitions on a background thread.
pub fn warm_up() {
    if SYNTAXES.get().is_none() {
        // If the thread cannot start, the first code block loads them instead.
        let _ = std::thread::Builder::new()
            .name("llmux-syntaxes".into())
            .spawn(|| {
                syntaxes();
            });
    }
}

/// Scopes → base16 slot, and whether the scope is shown in italics.
const SCOPE_MAP: &[(&str, usize, bool)] = &[
    ("comment, punctuation.definition.comment", 0x3, true),
    ("string, constant.other.symbol, markup.inserted", 0xB, false),
    (
        "constant.numeric, constant.language, constant.character, constant.other",
        0x9,
        false,
    ),
    (
        "keyword, storage, storage.type, storage.modifier, keyword.control",
        0xE,
        false,
    ),
    ("keyword.operator, punctuation", 0x5, false),
    (
        "entity.name.function, support.function, meta.function-call variable.function",
        0xD,
        false,
    ),
    (
        "entity.name.type, entity.name.class, support.type, support.class, entity.other.inherited-class",
        0xA,
        false,
    ),
    (
        "variable.language, entity.name.tag, markup.deleted",
        0x8,
        false,
    ),
    (
        "entity.other.attribute-name, variable.parameter",
        0x9,
        false,
    ),
    (
        "support.constant, constant.character.escape, string.regexp",
        0xC,
        false,
    ),
    ("markup.heading, entity.name.section", 0xD, false),
];

/// Highlights code in the colours of one theme.
#[derive(Debug, Clone)]
pub struct Highlighter {
    theme: Option<SynTheme>,
}

impl Highlighter {
    /// A highlighter for `theme`; a monochrome theme highlights nothing.
    pub fn new(theme: &Theme) -> Highlighter {
        if theme.is_mono() {
            return Highlighter { theme: None };
        }
        let c = |slot: usize| {
            let (r, g, b) = theme.base[slot];
            SynColor {
                r,
                g,
                b,
                a: u8::MAX,
            }
        };
        let mut scopes = Vec::new();
        for (sel, slot, italic) in SCOPE_MAP {
            if let Ok(scope) = ScopeSelectors::from_str(sel) {
                scopes.push(ThemeItem {
                    scope,
                    style: StyleModifier {
                        foreground: Some(c(*slot)),
                        background: None,
                        font_style: italic.then_some(FontStyle::ITALIC),
                    },
                });
            }
        }
        let syn = SynTheme {
            name: Some(theme.name.clone()),
            author: None,
            settings: ThemeSettings {
                foreground: Some(c(0x5)),
                background: Some(c(0x0)),
                ..ThemeSettings::default()
            },
            scopes,
        };
        Highlighter { theme: Some(syn) }
    }

    /// The code as lines of styled pieces, or `None` when the language is unknown (or the
    /// theme is monochrome). Tabs must already be expanded.
    pub fn highlight(
        &self,
        code: &str,
        lang: &str,
        theme: &Theme,
    ) -> Option<Vec<Vec<(String, Style)>>> {
        let syn_theme = self.theme.as_ref()?;
        let lang = lang.split([',', ' ']).next().unwrap_or("").trim();
        if lang.is_empty() {
            return None;
        }
        let set = syntaxes();
        let syntax = set
            .find_syntax_by_token(lang)
            .or_else(|| set.find_syntax_by_name(lang))?;
        let mut h = HighlightLines::new(syntax, syn_theme);
        let mut out = Vec::new();
        for line in LinesWithEndings::from(code) {
            let pieces = h.highlight_line(line, set).ok()?;
            let mut row = Vec::with_capacity(pieces.len());
            for (st, text) in pieces {
                let text = text.trim_end_matches(['\n', '\r']);
                if text.is_empty() {
                    continue;
                }
                let fg = st.foreground;
                let mut style = Style::new().fg(theme.degrade_rgb(fg.r, fg.g, fg.b));
                if st.font_style.contains(FontStyle::ITALIC) {
                    style = style.add_modifier(Modifier::ITALIC);
                }
                row.push((text.to_string(), style));
            }
            out.push(row);
        }
        Some(out)
    }
}
