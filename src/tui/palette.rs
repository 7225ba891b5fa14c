//! The command palette (Ctrl+X, `palette` in `llmux.keys`): every `/` command of the
//! [`slash::COMMANDS`] table and every bindable action with its keys, in one list filtered
//! as you type. Enter runs the row: an action at once, a command without arguments at once,
//! a command with arguments goes into the composer (`/model `) for its argument, with Tab
//! completion there.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use super::action::{Command, Effect};
use super::app::{App, Focus, Overlay};
use super::keys::KeyMap;
use super::slash::{self, SlashCommand};
use super::theme::{Role, Theme};

/// Widest the palette gets.
const WIDTH: u16 = 96;
/// Width of the name column.
const NAME_COL: usize = 22;

/// One row of the palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Slash(&'static SlashCommand),
    Action(Command),
}

impl Item {
    /// What the first column shows: `/model NAME`, or the action's `llmux.keys` name.
    pub fn label(&self) -> String {
        match self {
            Item::Slash(c) => c.usage(),
            Item::Action(c) => c.name().to_string(),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Item::Slash(c) => c.help,
            Item::Action(c) => c.describe(),
        }
    }
}

/// Every row, commands first.
pub fn items() -> Vec<Item> {
    let mut v: Vec<Item> = slash::COMMANDS.iter().map(Item::Slash).collect();
    v.extend(
        Command::ALL
            .into_iter()
            .filter(|c| *c != Command::Palette)
            .map(Item::Action),
    );
    v
}

/// The palette's filter and selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaletteState {
    pub filter: String,
    pub selected: usize,
}

impl PaletteState {
    /// The rows the filter lets through: each of its words is in the row's name or its
    /// description (ignoring case); those matched by name first.
    pub fn shown(&self) -> Vec<Item> {
        let words: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let mut found: Vec<(bool, Item)> = items()
            .into_iter()
            .filter_map(|i| {
                let hay = format!("{} {}", i.label(), i.describe()).to_lowercase();
                let name = i.label().to_lowercase();
                words
                    .iter()
                    .all(|w| hay.contains(w.as_str()))
                    .then(|| (!words.iter().all(|w| name.contains(w.as_str())), i))
            })
            .collect();
        // Rows whose name matches first (stable: the table's order within each).
        found.sort_by_key(|(by_description, _)| *by_description);
        found.into_iter().map(|(_, i)| i).collect()
    }
}

impl App {
    /// A key while the palette is open: `None` when the palette does not use it.
    pub(crate) fn palette_key(&mut self, ev: crossterm::event::KeyEvent) -> Option<Vec<Effect>> {
        use crossterm::event::KeyCode;
        let Some(Overlay::Palette(mut p)) = self.overlay.take() else {
            return None;
        };
        let fx = self.palette_key_on(&mut p, ev);
        if fx.as_ref().is_none_or(|_| ev.code != KeyCode::Enter) {
            self.overlay = Some(Overlay::Palette(p));
        }
        fx
    }

    fn palette_key_on(
        &mut self,
        p: &mut PaletteState,
        ev: crossterm::event::KeyEvent,
    ) -> Option<Vec<Effect>> {
        use crossterm::event::{KeyCode, KeyModifiers};
        let plain = !ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        let n = p.shown().len();
        match ev.code {
            KeyCode::Up => p.selected = p.selected.saturating_sub(1),
            KeyCode::Down => p.selected = (p.selected + 1).min(n.saturating_sub(1)),
            KeyCode::Backspace => {
                p.filter.pop();
                p.selected = 0;
            }
            KeyCode::Char('u') if ev.modifiers.contains(KeyModifiers::CONTROL) => {
                p.filter.clear();
                p.selected = 0;
            }
            KeyCode::Char(c) if plain && !c.is_control() => {
                p.filter.push(c);
                p.selected = 0;
            }
            KeyCode::Enter => {
                let item = p.shown().get(p.selected).copied()?;
                return Some(self.run_item(item));
            }
            _ => return None,
        }
        Some(Vec::new())
    }

    /// Runs a palette row.
    fn run_item(&mut self, item: Item) -> Vec<Effect> {
        match item {
            Item::Action(c) => self.command(c),
            Item::Slash(c) if !c.args.is_empty() && !c.args.starts_with('[') => {
                // The argument is typed in the composer, with completion.
                self.focus = Focus::Composer;
                self.set_composer_text(&format!("/{} ", c.name));
                Vec::new()
            }
            Item::Slash(c) => self.run_slash(c, "").1,
        }
    }
}

/// Draws the palette centered in `area`.
pub fn render(
    p: &PaletteState,
    keymap: &KeyMap,
    shift_enter: bool,
    area: Rect,
    buf: &mut Buffer,
    theme: &Theme,
) {
    let shown = p.shown();
    let width = WIDTH.min(area.width.saturating_sub(2));
    // The filter line and the rows, in a border.
    let height = (shown.len().max(1) as u16 + 3).min(area.height.saturating_sub(2));
    let rect = super::view::centered(area, width, height);
    let hint = " type to filter · ↑↓ · Enter run · Esc close ";
    let inner = super::view::overlay_frame(buf, theme, rect, ("Commands", true), hint);
    if inner.height == 0 {
        return;
    }
    let accent = theme.fg(Role::Accent);
    let filter = Line::from(vec![
        Span::styled("> ", accent),
        Span::styled(
            crate::sanitize::escape_controls(&p.filter).into_owned(),
            theme.fg(Role::Fg),
        ),
        Span::styled("▏", accent),
    ]);
    super::view::set_line_clipped(buf, inner.x, inner.y, &filter, inner.width);
    let rows = Rect {
        y: inner.y + 1,
        height: inner.height - 1,
        ..inner
    };
    if shown.is_empty() {
        let l = Line::from(Span::styled(
            "nothing matches (Backspace to change the filter)",
            theme.fg(Role::Muted),
        ));
        super::view::set_line_clipped(buf, rows.x, rows.y, &l, rows.width);
        return;
    }
    let h = usize::from(rows.height);
    let skip = p.selected.saturating_sub(h.saturating_sub(1));
    let w = usize::from(rows.width);
    for (i, item) in shown.iter().enumerate().skip(skip).take(h) {
        let keys = match item {
            Item::Action(c) => keymap
                .shown_keys(*c, shift_enter)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            Item::Slash(_) => String::new(),
        };
        let name_style = match item {
            Item::Slash(_) => accent.add_modifier(Modifier::BOLD),
            Item::Action(_) => theme.fg(Role::Fg),
        };
        let label = item.label();
        let used = NAME_COL.max(label.chars().count() + 1);
        // A gap of two before the keys; a cut description ends in `…`.
        let desc_w = w.saturating_sub(used + keys.chars().count() + 2);
        let full = item.describe();
        let desc: String = if full.chars().count() > desc_w {
            let mut d: String = full.chars().take(desc_w.saturating_sub(1)).collect();
            d.push('…');
            d
        } else {
            full.to_string()
        };
        let pad = w.saturating_sub(used + desc.chars().count() + keys.chars().count());
        let mut line = Line::from(vec![
            Span::styled(format!("{label:<used$}"), name_style),
            Span::styled(desc, theme.fg(Role::Fg)),
            Span::raw(" ".repeat(pad)),
            Span::styled(keys, theme.fg(Role::Muted)),
        ]);
        if i == p.selected {
            line = line.style(theme.selected());
        }
        let y = rows.y + (i - skip) as u16;
        super::view::set_line_clipped(buf, rows.x, y, &line, rows.width);
    }
}

/// Most completion rows shown above the composer.
const COMPLETIONS_SHOWN: usize = 8;

/// Above the composer while it holds a `/` command: what Tab completes to (commands with
/// their help, group, role or theme names), the row a run of Tabs is on highlighted.
pub fn render_completions(app: &App, composer: Rect, buf: &mut Buffer) {
    let Some(c) = app.slash_candidates() else {
        return;
    };
    let theme = &app.theme;
    let text = app.draft();
    let typed = &text[c.start.min(text.len())..];
    let (lines, title): (Vec<Line>, String) = if c.items.is_empty() {
        let what = if c.command {
            format!("no command /{typed}: {}", slash::names())
        } else {
            format!("nothing starts with {typed:?}")
        };
        (
            vec![Line::from(Span::styled(what, theme.fg(Role::Error)))],
            " / commands ".to_string(),
        )
    } else {
        let chosen = app
            .slash
            .cycle
            .as_ref()
            .filter(|cy| cy.shown == text)
            .map(|cy| cy.index);
        let name_w = c
            .items
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0)
            + 2;
        let skip = chosen.map_or(0, |i| (i + 1).saturating_sub(COMPLETIONS_SHOWN));
        let lines = c
            .items
            .iter()
            .enumerate()
            .skip(skip)
            .take(COMPLETIONS_SHOWN)
            .map(|(i, (name, note))| {
                let prefix = if c.command { "/" } else { "" };
                let mut l = Line::from(vec![
                    Span::styled(
                        format!("{prefix}{:<name_w$}", escape(name)),
                        theme.fg(Role::Accent).add_modifier(Modifier::BOLD),
                    ),
                    Span::styled(escape(note), theme.fg(Role::Muted)),
                ]);
                if chosen == Some(i) {
                    l = l.style(theme.selected());
                }
                l
            })
            .collect();
        let more = c.items.len().saturating_sub(COMPLETIONS_SHOWN);
        let title = if more > 0 {
            format!(" Tab completes · {more} more ")
        } else {
            " Tab completes ".to_string()
        };
        (lines, title)
    };
    let width = composer.width.min(
        lines
            .iter()
            .map(|l| l.width() as u16 + 2)
            .max()
            .unwrap_or(0)
            .max(title.chars().count() as u16 + 4),
    );
    let height = (lines.len() as u16 + 2).min(composer.y);
    if height < 3 {
        return;
    }
    let rect = Rect::new(composer.x, composer.y - height, width, height);
    Clear.render(rect, buf);
    let block = ratatui::widgets::Block::bordered()
        .border_type(ratatui::widgets::BorderType::Rounded)
        .border_style(theme.border(false))
        .title(Span::styled(title, theme.fg(Role::Muted)))
        .style(theme.base_style());
    let inner = block.inner(rect);
    block.render(rect, buf);
    for (i, l) in lines.iter().take(usize::from(inner.height)).enumerate() {
        super::view::set_line_clipped(buf, inner.x, inner.y + i as u16, l, inner.width);
    }
}

fn escape(s: &str) -> String {
    crate::sanitize::escape_controls(s).into_owned()
}
