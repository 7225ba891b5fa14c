//! Markdown to styled, wrapped terminal lines: headings, paragraphs with emphasis, lists,
//! quotes, tables, rules, links and fenced code (highlighted per language when `highlight`
//! is on; a streaming answer is rendered without it and highlighted once complete).
//!
//! Input is model text that has already been through `sanitize::escape_controls`; output is
//! `Line`s exactly `width` columns wide or less, so the conversation pane can cache them per
//! message and width and draw any slice of them.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

use super::highlight::Highlighter;
use super::theme::{Role, Theme};

/// Spaces a tab becomes in code.
const TAB: &str = "    ";
/// Narrowest column a table is squeezed to.
const MIN_COL: usize = 3;

pub use super::wrap::{Piece, hard_wrap, push_piece, truncate_pieces, wrap_pieces};

fn to_line(prefix: &[Piece], pieces: Vec<Piece>) -> Line<'static> {
    let spans: Vec<Span<'static>> = prefix
        .iter()
        .cloned()
        .chain(pieces)
        .filter(|(t, _)| !t.is_empty())
        .map(|(t, s)| Span::styled(t, s))
        .collect();
    Line::from(spans)
}

/// A container that indents what is inside it.
#[derive(Debug, Clone)]
struct Container {
    /// The prefix of the first line (a list marker), then `rest`.
    first: Option<Piece>,
    rest: Piece,
}

#[derive(Debug, Default)]
struct TableBuild {
    rows: Vec<Vec<Vec<Piece>>>,
    header_rows: usize,
    cell: Vec<Piece>,
    row: Vec<Vec<Piece>>,
    in_head: bool,
}

struct Renderer<'a> {
    width: usize,
    theme: &'a Theme,
    highlighter: Option<&'a Highlighter>,
    out: Vec<Line<'static>>,
    inline: Vec<Piece>,
    styles: Vec<Style>,
    containers: Vec<Container>,
    lists: Vec<Option<u64>>,
    code: Option<(String, String)>,
    code_blocks: usize,
    table: Option<TableBuild>,
    link: Option<String>,
    heading: Option<HeadingLevel>,
    pending_blank: Option<Vec<Piece>>,
}

impl<'a> Renderer<'a> {
    fn style(&self) -> Style {
        self.styles.last().copied().unwrap_or_default()
    }

    fn push_style(&mut self, f: impl FnOnce(Style) -> Style) {
        let s = f(self.style());
        self.styles.push(s);
    }

    /// The prefix pieces for the next line; consumes a pending list marker.
    fn prefix(&mut self) -> Vec<Piece> {
        let mut p = Vec::new();
        for c in &mut self.containers {
            match c.first.take() {
                Some(first) => p.push(first),
                None => p.push(c.rest.clone()),
            }
        }
        p
    }

    fn prefix_width(&self) -> usize {
        self.containers.iter().map(|c| c.rest.0.width()).sum()
    }

    fn emit(&mut self, pieces: Vec<Piece>) {
        if let Some(prefix) = self.pending_blank.take()
            && !self.out.is_empty()
        {
            self.out.push(to_line(&prefix, Vec::new()));
        }
        let prefix = self.prefix();
        self.out.push(to_line(&prefix, pieces));
    }

    /// A blank line before the next block (never at the end, never doubled).
    fn blank(&mut self) {
        // The blank line keeps the quote bars around it, not list indentation.
        let prefix = self
            .containers
            .iter()
            .filter(|c| !c.rest.0.trim().is_empty())
            .map(|c| c.rest.clone())
            .collect();
        self.pending_blank = Some(prefix);
    }

    fn flush_inline(&mut self) {
        if self.inline.is_empty() {
            return;
        }
        let pieces = std::mem::take(&mut self.inline);
        if let Some(t) = &mut self.table {
            t.cell.extend(pieces);
            return;
        }
        let avail = self.width.saturating_sub(self.prefix_width()).max(1);
        for line in wrap_pieces(&pieces, avail) {
            self.emit(line);
        }
    }

    fn text(&mut self, t: &str) {
        if let Some((_, buf)) = &mut self.code {
            buf.push_str(t);
            return;
        }
        let style = self.style();
        // A tab has no width of its own on a terminal: it would vanish.
        self.inline.push((t.replace('\t', TAB), style));
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => {}
            Tag::Heading { level, .. } => {
                self.flush_inline();
                self.heading = Some(level);
                let th = self.theme;
                self.push_style(|_| {
                    let s = th.fg(Role::Heading).add_modifier(Modifier::BOLD);
                    if level == HeadingLevel::H1 {
                        s.add_modifier(Modifier::UNDERLINED)
                    } else {
                        s
                    }
                });
            }
            Tag::BlockQuote(_) => {
                self.flush_inline();
                let bar = ("▎ ".to_string(), self.theme.fg(Role::Muted));
                self.containers.push(Container {
                    first: None,
                    rest: bar,
                });
                let th = self.theme;
                self.push_style(|s| s.patch(th.fg(Role::Muted)).add_modifier(Modifier::ITALIC));
            }
            Tag::CodeBlock(kind) => {
                self.flush_inline();
                let lang = match kind {
                    CodeBlockKind::Fenced(l) => l.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((lang, String::new()));
            }
            Tag::List(start) => {
                self.flush_inline();
                self.lists.push(start);
            }
            Tag::Item => {
                self.flush_inline();
                let depth = self.lists.len();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    _ => if depth % 2 == 1 { "• " } else { "◦ " }.to_string(),
                };
                let w = marker.width();
                self.containers.push(Container {
                    first: Some((marker, self.theme.fg(Role::Accent))),
                    rest: (" ".repeat(w), Style::new()),
                });
            }
            Tag::Table(_) => {
                self.flush_inline();
                self.table = Some(TableBuild::default());
            }
            Tag::TableHead => {
                if let Some(t) = &mut self.table {
                    t.in_head = true;
                }
            }
            Tag::TableRow | Tag::TableCell => {}
            Tag::Emphasis => self.push_style(|s| s.add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.push_style(|s| s.add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self.push_style(|s| s.add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { dest_url, .. } => {
                self.link = Some(dest_url.to_string());
                let th = self.theme;
                self.push_style(|s| {
                    s.patch(th.fg(Role::Accent))
                        .add_modifier(Modifier::UNDERLINED)
                });
            }
            Tag::Image { dest_url, .. } => {
                self.link = Some(dest_url.to_string());
                self.push_style(|s| s);
                self.text("[image: ");
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => {
                self.flush_inline();
                if self.table.is_none() {
                    self.blank();
                }
            }
            TagEnd::Heading(_) => {
                self.flush_inline();
                self.styles.pop();
                self.heading = None;
                self.blank();
            }
            TagEnd::BlockQuote(_) => {
                self.flush_inline();
                self.styles.pop();
                self.containers.pop();
                self.blank();
            }
            TagEnd::CodeBlock => {
                if let Some((lang, code)) = self.code.take() {
                    self.code_block(&lang, &code);
                    self.blank();
                }
            }
            TagEnd::List(_) => {
                self.flush_inline();
                self.lists.pop();
                self.blank();
            }
            TagEnd::Item => {
                self.flush_inline();
                // An empty item still shows its marker.
                if self.containers.last().is_some_and(|c| c.first.is_some()) {
                    self.emit(Vec::new());
                }
                self.containers.pop();
            }
            TagEnd::TableCell => {
                let pieces = std::mem::take(&mut self.inline);
                if let Some(t) = &mut self.table {
                    t.cell.extend(pieces);
                    let cell = std::mem::take(&mut t.cell);
                    t.row.push(cell);
                }
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                if let Some(t) = &mut self.table {
                    let row = std::mem::take(&mut t.row);
                    t.rows.push(row);
                    if t.in_head {
                        t.header_rows = t.rows.len();
                        t.in_head = false;
                    }
                }
            }
            TagEnd::Table => {
                if let Some(t) = self.table.take() {
                    self.render_table(t);
                    self.blank();
                }
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                self.styles.pop();
            }
            TagEnd::Link => {
                self.styles.pop();
                if let Some(url) = self.link.take() {
                    let shown: String = self
                        .inline
                        .iter()
                        .rev()
                        .take(1)
                        .map(|(t, _)| t.clone())
                        .collect();
                    if !url.is_empty() && shown != url {
                        let muted = self.theme.fg(Role::Muted);
                        self.inline.push((format!(" ({url})"), muted));
                    }
                }
            }
            TagEnd::Image => {
                self.styles.pop();
                self.link = None;
                self.text("]");
            }
            _ => {}
        }
    }

    fn code_block(&mut self, lang: &str, code: &str) {
        self.code_blocks += 1;
        let n = self.code_blocks;
        let muted = self.theme.fg(Role::Muted);
        let code_style = self.theme.fg(Role::Fg);
        let label = if lang.is_empty() {
            String::new()
        } else {
            format!(" {lang}")
        };
        self.emit(vec![(format!("┌─{label} ⟨{n}⟩"), muted)]);
        let code = code.replace('\t', TAB);
        let code = code.strip_suffix('\n').unwrap_or(&code);
        let highlighted = self
            .highlighter
            .and_then(|h| h.highlight(code, lang, self.theme));
        let rows: Vec<Vec<Piece>> = match highlighted {
            Some(rows) => rows,
            None => code
                .split('\n')
                .map(|l| vec![(l.to_string(), code_style)])
                .collect(),
        };
        let gutter = ("│ ".to_string(), muted);
        let avail = self.width.saturating_sub(self.prefix_width() + 2).max(1);
        for row in rows {
            let wrapped = hard_wrap(row, avail);
            for piece_line in wrapped {
                let mut line = vec![gutter.clone()];
                line.extend(piece_line);
                self.emit(line);
            }
        }
        self.emit(vec![("└─".to_string(), muted)]);
    }

    fn render_table(&mut self, t: TableBuild) {
        let ncols = t.rows.iter().map(Vec::len).max().unwrap_or(0);
        if ncols == 0 {
            return;
        }
        let sep_w = 3 * (ncols - 1);
        let avail = self
            .width
            .saturating_sub(self.prefix_width() + sep_w)
            .max(ncols);
        let mut widths = vec![MIN_COL; ncols];
        for row in &t.rows {
            for (i, cell) in row.iter().enumerate() {
                let w: usize = cell.iter().map(|(s, _)| s.width()).sum();
                widths[i] = widths[i].max(w);
            }
        }
        // Squeeze the widest column until the table fits.
        while widths.iter().sum::<usize>() > avail {
            let Some((i, w)) = widths.iter().copied().enumerate().max_by_key(|(_, w)| *w) else {
                break;
            };
            if w <= MIN_COL {
                break;
            }
            widths[i] = w - 1;
        }
        let muted = self.theme.fg(Role::Muted);
        for (ri, row) in t.rows.iter().enumerate() {
            let header = ri < t.header_rows;
            let cells: Vec<Vec<Vec<Piece>>> = (0..ncols)
                .map(|i| {
                    let mut cell = row.get(i).cloned().unwrap_or_default();
                    if header {
                        for (_, s) in &mut cell {
                            *s = s.add_modifier(Modifier::BOLD);
                        }
                    }
                    wrap_pieces(&cell, widths[i])
                })
                .collect();
            let height = cells.iter().map(Vec::len).max().unwrap_or(1);
            for li in 0..height {
                let mut line = Vec::new();
                for (ci, cell) in cells.iter().enumerate() {
                    if ci > 0 {
                        line.push((" │ ".to_string(), muted));
                    }
                    let content = cell.get(li).cloned().unwrap_or_default();
                    let w: usize = content.iter().map(|(s, _)| s.width()).sum();
                    line.extend(content);
                    if ci + 1 < ncols {
                        line.push((" ".repeat(widths[ci].saturating_sub(w)), Style::new()));
                    }
                }
                self.emit(line);
            }
            if header && ri + 1 == t.header_rows {
                let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                self.emit(vec![(rule.join("─┼─"), muted)]);
            }
        }
    }
}

/// Renders markdown to lines at most `width` wide. `highlighter` is `None` while streaming.
pub fn render(
    text: &str,
    width: usize,
    theme: &Theme,
    highlighter: Option<&Highlighter>,
) -> Vec<Line<'static>> {
    let mut r = Renderer {
        width: width.max(1),
        theme,
        highlighter,
        out: Vec::new(),
        inline: Vec::new(),
        styles: vec![theme.fg(Role::Fg)],
        containers: Vec::new(),
        lists: Vec::new(),
        code: None,
        code_blocks: 0,
        table: None,
        link: None,
        heading: None,
        pending_blank: None,
    };
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    for ev in Parser::new_ext(text, opts) {
        match ev {
            Event::Start(tag) => r.start(tag),
            Event::End(tag) => r.end(tag),
            Event::Text(t) => r.text(&t),
            Event::Code(t) => {
                let s = theme.fg(Role::Code);
                r.inline.push((t.replace('\t', TAB), s));
            }
            Event::InlineMath(t) | Event::DisplayMath(t) => r.text(&t),
            Event::Html(t) | Event::InlineHtml(t) => r.text(&t),
            Event::SoftBreak => r.text(" "),
            Event::HardBreak => r.text("\n"),
            Event::Rule => {
                r.flush_inline();
                let w = r.width.saturating_sub(r.prefix_width());
                let muted = theme.fg(Role::Muted);
                r.emit(vec![("─".repeat(w), muted)]);
                r.blank();
            }
            Event::TaskListMarker(done) => r.text(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(t) => r.text(&format!("[{t}]")),
        }
    }
    // An unterminated fence (still streaming) is shown as code so far.
    if let Some((lang, code)) = r.code.take() {
        r.code_block(&lang, &code);
    }
    r.flush_inline();
    r.out
}

/// The fenced and indented code blocks of a markdown text, in order (for copying one).
pub fn code_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for ev in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::CodeBlock(_)) => cur = Some(String::new()),
            Event::Text(t) => {
                if let Some(c) = &mut cur {
                    c.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(c) = cur.take() {
                    out.push(c);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::ColorDepth;

    fn plain(lines: &[Line<'_>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn renders_blocks() {
        let theme = Theme::builtin_default(ColorDepth::Mono);
        let md = "# Title\n\nSome *text* here.\n\n- one\n- two\n  1. deep\n\n> quoted\n\n| a | bb |\n|---|----|\n| 1 | 2 |\n\n```rust\nfn main() {}\n```\n";
        let out = plain(&render(md, 40, &theme, None));
        assert_eq!(
            out,
            [
                "Title",
                "",
                "Some text here.",
                "",
                "• one",
                "• two",
                "  1. deep",
                "",
                "▎ quoted",
                "",
                "a   │ bb",
                "────┼────",
                "1   │ 2",
                "",
                "┌─ rust ⟨1⟩",
                "│ fn main() {}",
                "└─",
            ]
        );
        assert_eq!(code_blocks(md), ["fn main() {}\n"]);
    }

    #[test]
    fn tabs_are_kept_as_spaces() {
        let theme = Theme::builtin_default(ColorDepth::Mono);
        let out = plain(&render("tabs:\there and `a\tb`", 40, &theme, None));
        assert_eq!(out, ["tabs:    here and a    b"]);
    }

    #[test]
    fn nothing_exceeds_the_width() {
        let theme = Theme::builtin_default(ColorDepth::TrueColor);
        let md = "A very long paragraph with words that go on and on past the width, and a `code span`.\n\n```\nlet x = \"a line of code that is much longer than twenty columns\";\n```\n| col one | col two is wide |\n|--|--|\n| x | y y y y y y y y y y y |";
        for l in render(md, 20, &theme, None) {
            assert!(l.width() <= 20, "{l:?}");
        }
    }
}
