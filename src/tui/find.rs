//! Search in the conversation: `/` with the conversation focused, type (the view jumps to the
//! match nearest the end as you type), Enter to keep it, `n` / `N` for the next (newer) and
//! previous (older) match, Esc to end it. Matches are found in the lines as drawn (what you
//! see is what is searched) and highlighted there, the one looked at in another colour; the
//! pane's bottom border says `search: word · 3/7 · n N`.
//!
//! Opening a match from the conversations list (Ctrl+O, type, Enter) starts a search for the
//! same text in the opened conversation, at its first match.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Effect;
use super::app::{App, Focus};
use super::conversation::Ctx;

/// A search in the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Find {
    pub query: String,
    /// The query is being typed (keys go to it).
    pub typing: bool,
    /// The match looked at: (entry, line).
    pub current: Option<(usize, usize)>,
}

impl App {
    /// Every line of the conversation (as drawn at the pane's width) holding `query`,
    /// ignoring case, in order.
    pub fn find_matches(&self, query: &str) -> Vec<(usize, usize)> {
        let needle = query.to_lowercase();
        if needle.is_empty() {
            return Vec::new();
        }
        let width = self.areas().conversation.width.saturating_sub(2);
        let ctx = Ctx {
            theme: &self.theme,
            highlighter: &self.highlighter,
        };
        let mut out = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            for (n, line) in self.view.lines(e, width, ctx).iter().enumerate() {
                let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
                if text.to_lowercase().contains(&needle) {
                    out.push((i, n));
                }
            }
        }
        out
    }

    /// Keys while searching; `None` for the keys search leaves to the conversation.
    pub(crate) fn find_key(&mut self, ev: KeyEvent) -> Option<Vec<Effect>> {
        let plain = !ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        let typing = self.find.as_ref().is_some_and(|f| f.typing);
        if typing {
            let f = self.find.as_mut()?;
            match ev.code {
                KeyCode::Esc => self.find = None,
                KeyCode::Enter => {
                    f.typing = false;
                    if f.query.is_empty() {
                        self.find = None;
                    }
                }
                KeyCode::Backspace => {
                    f.query.pop();
                    self.jump_to(Jump::Last);
                }
                KeyCode::Char(c) if plain && !c.is_control() => {
                    f.query.push(c);
                    self.jump_to(Jump::Last);
                }
                _ => return None,
            }
            return Some(Vec::new());
        }
        if !plain {
            return None;
        }
        match ev.code {
            KeyCode::Char('/') => {
                self.find = Some(Find {
                    typing: true,
                    ..Find::default()
                });
            }
            KeyCode::Char('n') if self.find.is_some() => self.jump_to(Jump::Next),
            KeyCode::Char('N') if self.find.is_some() => self.jump_to(Jump::Prev),
            KeyCode::Esc if self.find.is_some() && self.view.selected.is_none() => {
                self.find = None;
            }
            _ => return None,
        }
        Some(Vec::new())
    }

    /// Moves to a match and scrolls it into sight.
    pub(crate) fn jump_to(&mut self, jump: Jump) {
        let Some(f) = &self.find else { return };
        let matches = self.find_matches(&f.query);
        let here = f.current;
        let next = match (jump, here) {
            _ if matches.is_empty() => None,
            (Jump::First, _) => matches.first().copied(),
            (Jump::Last, _) | (Jump::Next | Jump::Prev, None) => matches.last().copied(),
            (Jump::Next, Some(h)) => matches
                .iter()
                .find(|m| **m > h)
                .or(matches.first())
                .copied(),
            (Jump::Prev, Some(h)) => matches
                .iter()
                .rev()
                .find(|m| **m < h)
                .or(matches.last())
                .copied(),
        };
        if let Some(f) = &mut self.find {
            f.current = next;
        }
        match next {
            Some((entry, line)) => self.reveal(entry, line),
            None if !matches.is_empty() => {}
            None => {
                if !self.find.as_ref().is_some_and(|f| f.query.is_empty()) {
                    self.toast("no match in this conversation", true);
                }
            }
        }
    }

    /// Starts a search for `query` at its first match (a match opened from the list).
    pub(crate) fn find_first(&mut self, query: &str) {
        self.find = Some(Find {
            query: query.to_string(),
            typing: false,
            current: None,
        });
        self.focus = Focus::Conversation;
        self.jump_to(Jump::First);
    }

    /// The conversation's bottom border while searching: `search: word▏` while typing,
    /// `search: word · 3/7 · n N · Esc` after.
    pub fn find_footer(&self) -> Option<String> {
        let f = self.find.as_ref()?;
        let q = crate::sanitize::escape_controls(&f.query).into_owned();
        if f.typing {
            return Some(format!(" /{q}▏ Enter keeps · Esc ends "));
        }
        let matches = self.find_matches(&f.query);
        let at = f
            .current
            .and_then(|c| matches.iter().position(|m| *m == c))
            .map_or("-".to_string(), |i| (i + 1).to_string());
        Some(format!(
            " search: {q} · {at}/{} · n newer N older · Esc ",
            matches.len()
        ))
    }
}

/// Where [`App::jump_to`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jump {
    First,
    Last,
    Next,
    Prev,
}
