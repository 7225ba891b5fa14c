//! Moving through the conversation's messages and changing its past: with the conversation
//! focused, Up/Down select a message; `e` (or Enter) puts a message of yours back in the
//! composer, and sending it starts a new branch from there (the old branch is kept, as
//! `store::branches` keeps it); Left/Right switch between the branches at the selected
//! message (`branch 2/3` shows on it); `d` deletes the last exchange; `y` copies the
//! selected message. Like the rest of `update`, state changes and effects only.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::{Command, Effect};
use super::app::{App, Focus};
use super::attach::{Attachment, expand_files, folded, mentions};
use crate::store::session::{Entry, Image, Record};

/// An earlier message being edited in the composer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editing {
    /// The message edited.
    pub id: u64,
    /// What the composer held before, given back after the edit is sent or dropped.
    pub draft_before: String,
    /// The message's images: each goes again while its `[image …]` line is in the text.
    pub images: Vec<Image>,
}

impl App {
    /// Keys of the focused conversation; `None` for the others (scrolling and the rest).
    pub(crate) fn conversation_key(&mut self, ev: KeyEvent) -> Option<Vec<Effect>> {
        if let Some(fx) = self.find_key(ev) {
            return Some(fx);
        }
        if ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return None;
        }
        let fx = match ev.code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.select_by(-1);
                Vec::new()
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.select_by(1);
                Vec::new()
            }
            KeyCode::Esc if self.view.selected.is_some() => {
                self.view.selected = None;
                Vec::new()
            }
            KeyCode::Enter | KeyCode::Char('e') if self.view.selected.is_some() => {
                self.edit_selected();
                Vec::new()
            }
            KeyCode::Left | KeyCode::Char('[') | KeyCode::Char('h') => self.switch_branch(-1),
            KeyCode::Right | KeyCode::Char(']') | KeyCode::Char('l') => self.switch_branch(1),
            KeyCode::Char('d') | KeyCode::Delete => self.drop_last_exchange(),
            KeyCode::Char('y') if self.view.selected.is_some() => {
                let text = self.view.selected.and_then(|i| match self.entries.get(i) {
                    Some(Entry::User(u)) => Some(u.text.clone()),
                    Some(Entry::Answer(a)) => Some(a.text.clone()),
                    _ => None,
                });
                match text.filter(|t| !t.is_empty()) {
                    Some(t) => vec![Effect::Copy(t)],
                    None => {
                        self.toast("nothing to copy in this message", true);
                        Vec::new()
                    }
                }
            }
            _ => return None,
        };
        Some(fx)
    }

    /// Selects the message `step` away (user messages and answers); past the last one, the
    /// selection ends and the view follows the end again.
    fn select_by(&mut self, step: i64) {
        let messages: Vec<usize> = (0..self.entries.len())
            .filter(|&i| !matches!(self.entries[i], Entry::ToolResult(_)))
            .collect();
        if messages.is_empty() {
            self.unchanged();
            return;
        }
        let pos = self
            .view
            .selected
            .and_then(|s| messages.iter().position(|&i| i == s));
        let next = match (pos, step < 0) {
            (None, true) => messages.len() as i64 - 1,
            (None, false) => {
                self.unchanged();
                return;
            }
            (Some(p), _) => p as i64 + step,
        };
        if next >= messages.len() as i64 {
            self.view.selected = None;
            self.view.scroll_bottom();
            return;
        }
        let i = messages[next.max(0) as usize];
        self.view.selected = Some(i);
        self.reveal(i, 0);
    }

    /// Scrolls the conversation so line `line` of entry `i` shows.
    pub(crate) fn reveal(&mut self, i: usize, line: usize) {
        let area = self.areas().conversation;
        let (w, h) = (
            area.width.saturating_sub(2),
            area.height.saturating_sub(2 + self.pinned_lines()) as usize,
        );
        let ctx = super::conversation::Ctx {
            theme: &self.theme,
            highlighter: &self.highlighter,
        };
        self.view.reveal(&self.entries, w, h, (i, line), ctx);
    }

    /// The selected message of yours into the composer, to be sent as a new branch.
    fn edit_selected(&mut self) {
        let Some(i) = self.view.selected else { return };
        let Some(Entry::User(u)) = self.entries.get(i) else {
            self.toast(
                "only your own messages can be edited: select one with ↑↓",
                true,
            );
            return;
        };
        let (id, text, images) = (u.id, u.text.clone(), u.images.clone());
        let draft_before = match self.editing.take() {
            Some(e) => {
                // Another message instead: the first one's folded files go with its text.
                let dropped = self.draft();
                self.b.attach.forget_in(&dropped);
                e.draft_before
            }
            None => self.draft(),
        };
        self.editing = Some(Editing {
            id,
            draft_before,
            images,
        });
        // Its files show folded, as in the conversation, and go whole again.
        let shown = self.b.attach.fold_files(&text);
        self.set_composer_text(&shown);
        self.focus = Focus::Composer;
        let cancel = self.keymap.label(Command::Cancel);
        self.toast(
            format!(
                "editing: Enter sends it as a new branch (the old one is kept) · {cancel} stops"
            ),
            false,
        );
    }

    /// Esc while editing: the composer gets its text back. `false` when not editing.
    pub(crate) fn stop_editing(&mut self) -> bool {
        let Some(e) = self.editing.take() else {
            return false;
        };
        let dropped = self.draft();
        self.b.attach.forget_in(&dropped);
        self.set_composer_text(&e.draft_before);
        self.toast("edit dropped", false);
        true
    }

    /// Sends the edited message as a new branch from where the original stood. `@path`s
    /// typed into it are read first (by the runner), as a new message's are; the files it was
    /// sent with are in its text and not read again.
    pub(crate) fn resend_edit(&mut self) -> Vec<Effect> {
        if self.editing.is_none() {
            return self.send();
        }
        if self.refused_while_streaming() {
            return Vec::new();
        }
        let draft = self.draft();
        // A large paste folded in the composer goes out whole (as a new message's would).
        let text = self.b.attach.expand(&draft);
        if text.trim().is_empty() {
            self.unchanged();
            return Vec::new();
        }
        // Only paths typed into the edit: the ones the message was sent with are in its text
        // already (or were deleted from it on purpose).
        let had = self
            .editing
            .as_ref()
            .and_then(|ed| self.entries.iter().find(|e| e.id() == ed.id))
            .map_or_else(Vec::new, |e| match e {
                Entry::User(u) => mentions(&folded(&u.text)),
                _ => Vec::new(),
            });
        let paths: Vec<String> = mentions(&folded(&draft))
            .into_iter()
            .filter(|p| !had.contains(p))
            .collect();
        if !paths.is_empty() {
            return vec![Effect::ReadAttachments { text, paths }];
        }
        self.send_edit(text, Vec::new())
    }

    /// The edit `text` goes, with `files` (read from the `@path`s typed into it) after it.
    pub(crate) fn send_edit(&mut self, text: String, files: Vec<Attachment>) -> Vec<Effect> {
        let Some(ed) = self.editing.take() else {
            return self.send();
        };
        let Some(at) = self.entries.iter().position(|e| e.id() == ed.id) else {
            // The message went (another branch shown, deleted): a plain message then.
            let (full, images) = expand_files(&text, files);
            let typed = self.draft();
            self.b.attach.forget_in(&typed);
            return self.send_message(full, images);
        };
        let mut fx = vec![Effect::Persist(Record::Fork { replaces: ed.id })];
        self.branches.cut(&mut self.entries, at);
        self.view.selected = None;
        let (text, added) = expand_files(&text, files);
        let kept: Vec<Image> = ed
            .images
            .into_iter()
            .filter(|i| text.contains(&i.marker()))
            .collect();
        // The file holds the kept images already, with the message edited: named, not
        // written again (a few MB each).
        let recorded = kept
            .iter()
            .map(|i| i.kept_from(ed.id))
            .chain(added.iter().cloned())
            .collect();
        let images = kept.into_iter().chain(added).collect();
        let typed = self.draft();
        fx.extend(self.send_message_recorded(text, images, recorded));
        self.b.attach.forget_in(&typed);
        self.set_composer_text(&ed.draft_before);
        let n = self.branches.alternatives(&self.entries, at).len();
        self.toast(
            format!("branch {n}/{n} · the old one is kept: select the message, ←→ switch"),
            false,
        );
        fx
    }

    /// The user message a branch switch acts on: the selected one, or the one the selected
    /// answer answers.
    fn branch_point(&self) -> Option<usize> {
        let sel = self.view.selected?;
        (0..=sel)
            .rev()
            .find(|&i| matches!(self.entries.get(i), Some(Entry::User(_))))
    }

    /// Shows the branch `step` away at the selected message.
    fn switch_branch(&mut self, step: i64) -> Vec<Effect> {
        let Some(at) = self.branch_point() else {
            self.toast("select a message with ↑↓ first", true);
            return Vec::new();
        };
        let alts = self.branches.alternatives(&self.entries, at);
        if alts.len() < 2 {
            self.toast(
                "no other branch here: edit a message (e) to start one",
                true,
            );
            return Vec::new();
        }
        if self.inflight.is_some() {
            self.toast("an answer is still streaming", true);
            return Vec::new();
        }
        let here = self.entries[at].id();
        let pos = alts.iter().position(|&id| id == here).unwrap_or(0) as i64;
        let n = alts.len() as i64;
        let target = alts[(pos + step).rem_euclid(n) as usize];
        let leaf = self.branches.newest_leaf(target);
        if !self.branches.select(&mut self.entries, leaf) {
            self.toast("that branch cannot be found", true);
            return Vec::new();
        }
        self.view.selected = Some(at);
        self.reveal(at, 0);
        let k = alts.iter().position(|&id| id == target).unwrap_or(0) + 1;
        self.toast(format!("branch {k}/{n}"), false);
        vec![Effect::Persist(Record::Branch { leaf })]
    }

    /// Deletes the last exchange (your last message and what answered it).
    fn drop_last_exchange(&mut self) -> Vec<Effect> {
        if self.inflight.is_some() {
            let cancel = self.keymap.label(Command::Cancel);
            self.toast(
                format!("an answer is still streaming · {cancel} cancels it first"),
                true,
            );
            return Vec::new();
        }
        let Some(at) = self
            .entries
            .iter()
            .rposition(|e| matches!(e, Entry::User(_)))
        else {
            self.toast("nothing to delete", true);
            return Vec::new();
        };
        let id = self.entries[at].id();
        self.entries.truncate(at);
        self.view.selected = None;
        self.view.scroll_bottom();
        self.toast("deleted the last exchange", false);
        vec![Effect::Persist(Record::Drop { id })]
    }

    /// `branch 2/3 · ←→` for each message where the conversation branches.
    pub fn branch_labels(&self) -> Vec<(usize, String)> {
        if self.branches.is_empty() {
            return Vec::new();
        }
        (0..self.entries.len())
            .filter_map(|i| {
                let alts = self.branches.alternatives(&self.entries, i);
                let here = self.entries[i].id();
                let k = alts.iter().position(|&id| id == here)? + 1;
                (alts.len() > 1).then(|| (i, format!(" branch {k}/{} ←→ ", alts.len())))
            })
            .collect()
    }
}

impl App {
    /// What the conversation pane draws over its entries.
    pub fn conversation_decor(&self) -> super::conversation::Decor {
        super::conversation::Decor {
            pinned: super::conversation::settings_line(&self.settings, &self.theme),
            selected: self
                .view
                .selected
                .filter(|_| self.focus == Focus::Conversation),
            labels: self.branch_labels(),
            find: self
                .find
                .as_ref()
                .map(|f| f.query.to_lowercase())
                .filter(|q| !q.is_empty()),
            current: self.find.as_ref().and_then(|f| f.current),
            footer: self.find_footer(),
        }
    }
}
