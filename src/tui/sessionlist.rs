//! The conversations list's own keys and what it shows beside each name: F2 renames the
//! selected conversation (typed in the list's top line), Del deletes it (after a yes), and
//! each row gets its date, the model groups it asked and its cost once they are read
//! (`Effect::ListSessions` → `Action::SessionsListed`, then `Action::SessionsSummarized`).
//! Opening a search match remembers the text, so the conversation opens on its first match,
//! highlighted (`find`).

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Effect;
use super::app::{App, Overlay};
use crate::store::session_summary::SessionSummary;

/// What the list knows and does besides the overlay's own state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListExtra {
    /// Each listed conversation's numbers, by name, as they arrive.
    pub details: HashMap<String, SessionSummary>,
    pub edit: Option<ListEdit>,
    /// The text searched for when a match was opened: the conversation opens on it.
    pub open_find: Option<String>,
}

/// A change being made to a listed conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEdit {
    /// Typing its new name.
    Rename { from: String, to: String },
    /// Asking before deleting it.
    Delete(String),
}

impl App {
    /// The names the conversations list shows now, in order.
    fn listed_names(&self) -> Vec<String> {
        let Some(Overlay::Sessions {
            list, query, found, ..
        }) = &self.overlay
        else {
            return Vec::new();
        };
        match (query.is_empty(), list, found) {
            (true, Some(Ok(l)), _) => l.iter().map(|s| s.name.clone()).collect(),
            (false, _, Some(Ok(f))) => f.iter().map(|m| m.session.name.clone()).collect(),
            _ => Vec::new(),
        }
    }

    fn listed_selected(&self) -> Option<String> {
        let Some(Overlay::Sessions { selected, .. }) = &self.overlay else {
            return None;
        };
        self.listed_names().get(*selected).cloned()
    }

    /// Keys of the conversations list for renaming, deleting and opening a match; `None`
    /// for the list's other keys (moving, searching, Enter on a plain row).
    pub(crate) fn sessions_list_key(&mut self, ev: KeyEvent) -> Option<Vec<Effect>> {
        let plain = !ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        match self.list.edit.clone() {
            Some(ListEdit::Rename { from, mut to }) => {
                match ev.code {
                    KeyCode::Esc => self.list.edit = None,
                    KeyCode::Enter => {
                        self.list.edit = None;
                        if to.trim().is_empty() {
                            self.toast("a name is needed", true);
                            return Some(Vec::new());
                        }
                        return Some(vec![Effect::RenameSession { from, to }]);
                    }
                    KeyCode::Backspace => {
                        to.pop();
                        self.list.edit = Some(ListEdit::Rename { from, to });
                    }
                    KeyCode::Char(c) if plain && !c.is_control() => {
                        to.push(c);
                        self.list.edit = Some(ListEdit::Rename { from, to });
                    }
                    _ => {}
                }
                Some(Vec::new())
            }
            Some(ListEdit::Delete(name)) => {
                self.list.edit = None;
                match ev.code {
                    KeyCode::Enter | KeyCode::Char('y') => {
                        if name == self.session {
                            // The one open: a new conversation takes its place.
                            let mut fx = self.delete_current();
                            fx.push(Effect::ListSessions);
                            return Some(fx);
                        }
                        Some(vec![Effect::DeleteSession(name)])
                    }
                    _ => Some(Vec::new()),
                }
            }
            None => match ev.code {
                KeyCode::F(2) => {
                    let name = self.listed_selected()?;
                    self.list.edit = Some(ListEdit::Rename {
                        from: name.clone(),
                        to: name,
                    });
                    Some(Vec::new())
                }
                KeyCode::Delete => {
                    let name = self.listed_selected()?;
                    self.list.edit = Some(ListEdit::Delete(name));
                    Some(Vec::new())
                }
                KeyCode::Enter => {
                    if let Some(Overlay::Sessions { query, .. }) = &self.overlay {
                        self.list.open_find = Some(query.clone()).filter(|q| !q.is_empty());
                    }
                    None
                }
                _ => None,
            },
        }
    }

    /// After a conversation opened: on the match it was opened for.
    pub(crate) fn opened_session(&mut self) {
        if let Some(q) = self.list.open_find.take() {
            self.find_first(&q);
        }
    }
}
