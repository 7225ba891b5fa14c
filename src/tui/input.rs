//! Key input: resolves a key press in layers — the open overlay first, then the focused
//! side pane's own keys (arrows, j/k, Enter in the models pane), then the key map
//! (`llmux.keys`), then the composer's text input with Up/Down recall of sent messages.
//! Everything ends in `App` state changes and effects, like the rest of `update`.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_textarea::{Input, Key};

use super::action::{Command, Effect};
use super::app::{App, Focus, Overlay};
use super::keys::KeyCombo;
use super::picker;

impl App {
    pub(crate) fn key(&mut self, ev: KeyEvent) -> Vec<Effect> {
        if ev.kind == KeyEventKind::Release {
            self.unchanged();
            return Vec::new();
        }
        let combo = KeyCombo::from_event(&ev);
        let bound = combo.and_then(|c| self.keymap.lookup(&c));
        if let Some(fx) = self.part_b_key(ev, bound) {
            return fx;
        }
        if self.overlay.is_some() {
            return self.overlay_key(ev, bound);
        }
        // Tab on a `/` command in the composer completes it.
        if self.focus == Focus::Composer
            && ev.code == KeyCode::Tab
            && ev.modifiers.is_empty()
            && self.complete_slash()
        {
            return Vec::new();
        }
        if self.focus != Focus::Composer
            && let Some(fx) = self.pane_key(ev)
        {
            return fx;
        }
        if let Some(cmd) = bound {
            return self.command(cmd);
        }
        // Alt+1..9: copy code block N of the last answer.
        if let KeyCode::Char(c @ '1'..='9') = ev.code
            && ev.modifiers.contains(KeyModifiers::ALT)
        {
            return self.copy_code(c.to_digit(10).map(|d| d as usize));
        }
        self.composer_key(ev)
    }

    fn overlay_key(&mut self, ev: KeyEvent, bound: Option<Command>) -> Vec<Effect> {
        let plain = !ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        if matches!(self.overlay, Some(Overlay::Sessions { .. }))
            && let Some(fx) = self.sessions_list_key(ev)
        {
            return fx;
        }
        let Some(overlay) = &mut self.overlay else {
            return Vec::new();
        };
        match overlay {
            Overlay::Palette(_) => {
                return match self.palette_key(ev) {
                    Some(fx) => fx,
                    None => self.overlay_passthrough(bound),
                };
            }
            Overlay::Picker(p) => match ev.code {
                KeyCode::Esc => self.overlay = None,
                KeyCode::Enter => {
                    if let Some(gi) = p.chosen(&self.groups) {
                        self.overlay = None;
                        self.select_group(gi);
                    }
                }
                KeyCode::Up => p.move_by(&self.groups, -1),
                KeyCode::Down => p.move_by(&self.groups, 1),
                KeyCode::Backspace => {
                    let mut f = p.filter.clone();
                    f.pop();
                    p.set_filter(&self.groups, f);
                }
                // Favorites while the filter is empty; once it has text, digits are text.
                KeyCode::Char(c @ '1'..='9') if plain && p.filter.is_empty() => {
                    let n = c.to_digit(10).map_or(0, |d| d as usize);
                    match picker::favorite(&self.groups, n) {
                        Some(gi) => {
                            self.overlay = None;
                            self.select_group(gi);
                        }
                        None => self.toast(format!("no favorite {n} (llmux.favorites)"), true),
                    }
                }
                KeyCode::Char('u') if ev.modifiers.contains(KeyModifiers::CONTROL) => {
                    p.set_filter(&self.groups, String::new());
                }
                KeyCode::Char(c) if plain => {
                    let mut f = p.filter.clone();
                    f.push(c);
                    p.set_filter(&self.groups, f);
                }
                _ => return self.overlay_passthrough(bound),
            },
            Overlay::Help { scroll } => {
                let max =
                    super::help::max_scroll(&self.keymap, &self.theme, self.shift_enter, self.size);
                match ev.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => self.overlay = None,
                    KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
                    KeyCode::Down | KeyCode::Char('j') => *scroll = (*scroll + 1).min(max),
                    KeyCode::PageUp => *scroll = scroll.saturating_sub(10),
                    KeyCode::PageDown => *scroll = (*scroll + 10).min(max),
                    KeyCode::Home | KeyCode::Char('g') => *scroll = 0,
                    KeyCode::End | KeyCode::Char('G') => *scroll = max,
                    _ => return self.overlay_passthrough(bound),
                }
            }
            Overlay::Sessions {
                list,
                selected,
                query,
                found,
            } => {
                // What the list shows: every session, or those holding the query.
                let names: Vec<&str> = match (query.is_empty(), &*list, &*found) {
                    (true, Some(Ok(l)), _) => l.iter().map(|s| s.name.as_str()).collect(),
                    (false, _, Some(Ok(f))) => f.iter().map(|m| m.session.name.as_str()).collect(),
                    _ => Vec::new(),
                };
                let typing = !ev
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
                match ev.code {
                    // Esc leaves the search first, then the overlay.
                    KeyCode::Esc if !query.is_empty() => {
                        query.clear();
                        *found = None;
                        *selected = 0;
                    }
                    KeyCode::Esc => self.overlay = None,
                    KeyCode::Up => *selected = selected.saturating_sub(1),
                    KeyCode::Down => {
                        *selected = (*selected + 1).min(names.len().saturating_sub(1));
                    }
                    KeyCode::Enter => {
                        if let Some(name) = names.get(*selected) {
                            return vec![Effect::LoadSession(name.to_string())];
                        }
                    }
                    // The matches of the query before stay out of sight (and out of Enter's
                    // reach) until the new query's arrive.
                    KeyCode::Backspace if !query.is_empty() => {
                        query.pop();
                        *selected = 0;
                        *found = None;
                        if !query.is_empty() {
                            return vec![Effect::SearchSessions(query.clone())];
                        }
                    }
                    KeyCode::Char(c) if typing && !c.is_control() => {
                        query.push(c);
                        *selected = 0;
                        *found = None;
                        return vec![Effect::SearchSessions(query.clone())];
                    }
                    _ => return self.overlay_passthrough(bound),
                }
            }
        }
        Vec::new()
    }

    /// Keys an overlay does not use: only quitting and help get through.
    fn overlay_passthrough(&mut self, bound: Option<Command>) -> Vec<Effect> {
        match bound {
            Some(c @ (Command::Quit | Command::Help | Command::Cancel | Command::Palette)) => {
                self.command(c)
            }
            _ => {
                self.unchanged();
                Vec::new()
            }
        }
    }

    /// Keys of the focused side pane (not the composer); `None` when not one of them.
    fn pane_key(&mut self, ev: KeyEvent) -> Option<Vec<Effect>> {
        if self.focus == Focus::Conversation
            && let Some(fx) = self.conversation_key(ev)
        {
            return Some(fx);
        }
        if ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return None;
        }
        let cmd = match ev.code {
            KeyCode::Up | KeyCode::Char('k') => Command::ScrollUp,
            KeyCode::Down | KeyCode::Char('j') => Command::ScrollDown,
            KeyCode::Home | KeyCode::Char('g') => Command::ScrollTop,
            KeyCode::End | KeyCode::Char('G') => Command::ScrollBottom,
            KeyCode::Enter if self.focus == Focus::Models => {
                let rows = picker::visible_rows(&self.groups, "");
                if let Some(r) = rows.get(self.models_selected) {
                    self.select_group(r.group());
                }
                return Some(Vec::new());
            }
            KeyCode::Char('f') if self.focus == Focus::Log => Command::LogFailures,
            KeyCode::Char(c) if self.focus == Focus::Models && c.is_ascii_digit() => {
                let n = c.to_digit(10).map_or(0, |d| d as usize);
                if let Some(gi) = picker::favorite(&self.groups, n) {
                    self.select_group(gi);
                }
                return Some(Vec::new());
            }
            _ => return None,
        };
        Some(self.command(cmd))
    }

    fn composer_key(&mut self, ev: KeyEvent) -> Vec<Effect> {
        if self.focus != Focus::Composer {
            // Typing anywhere goes to the composer.
            match ev.code {
                KeyCode::Char(_)
                    if !ev
                        .modifiers
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
                {
                    self.focus = Focus::Composer;
                }
                _ => {
                    self.unchanged();
                    return Vec::new();
                }
            }
        }
        let empty_or_recalled = self.recall.is_some() || self.draft().is_empty();
        match ev.code {
            KeyCode::Up if empty_or_recalled && !self.sent.is_empty() => {
                let i = match self.recall {
                    Some(i) => i.saturating_sub(1),
                    None => self.sent.len() - 1,
                };
                self.recall = Some(i);
                let text = self.sent[i].clone();
                self.set_composer_text(&text);
                return Vec::new();
            }
            KeyCode::Down if self.recall.is_some() => {
                let next = self.recall.map_or(0, |i| i + 1);
                if next >= self.sent.len() {
                    self.recall = None;
                    self.set_composer_text("");
                } else {
                    self.recall = Some(next);
                    let text = self.sent[next].clone();
                    self.set_composer_text(&text);
                }
                return Vec::new();
            }
            _ => {}
        }
        if let Some(edited) = self.shell_edit(&ev) {
            if edited {
                self.recall = None;
            } else {
                self.unchanged();
            }
            return Vec::new();
        }
        let input = to_input(&ev);
        if self.composer.input(input) {
            self.recall = None;
        }
        Vec::new()
    }

    /// The composer's keys that edit as a shell line does — Ctrl+U deletes to the start of
    /// the line, Ctrl+W the word before the cursor — and Ctrl+Z, which undoes any edit, so no
    /// key clears a draft without a way back. `None` for other keys; else whether the text
    /// changed. (Without these, the text area's own bindings apply: its Ctrl+U is undo and
    /// its Ctrl+J deletes to the start of the line.)
    fn shell_edit(&mut self, ev: &KeyEvent) -> Option<bool> {
        if ev.modifiers != KeyModifiers::CONTROL {
            return None;
        }
        let c = &mut self.composer;
        Some(match ev.code {
            KeyCode::Char('u') => c.delete_line_by_head(),
            KeyCode::Char('w') => {
                let tui_textarea::DataCursor(row, col) = c.cursor();
                if col == 0 {
                    // At the start of a line: join it to the one above, as Backspace does.
                    return Some(c.delete_char());
                }
                let line: Vec<char> = c.lines()[row].chars().collect();
                let mut start = col.min(line.len());
                while start > 0 && line[start - 1].is_whitespace() {
                    start -= 1;
                }
                while start > 0 && !line[start - 1].is_whitespace() {
                    start -= 1;
                }
                for _ in start..col {
                    c.move_cursor(tui_textarea::CursorMove::Back);
                }
                c.delete_str(col - start)
            }
            KeyCode::Char('z') => c.undo(),
            _ => return None,
        })
    }
}

/// A crossterm key as the text area's input.
pub fn to_input(ev: &KeyEvent) -> Input {
    let key = match ev.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Enter => Key::Enter,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Tab => Key::Tab,
        KeyCode::Delete => Key::Delete,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Esc => Key::Esc,
        KeyCode::F(n) => Key::F(n),
        _ => Key::Null,
    };
    Input {
        key,
        ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
        alt: ev.modifiers.contains(KeyModifiers::ALT),
        shift: ev.modifiers.contains(KeyModifiers::SHIFT),
    }
}
