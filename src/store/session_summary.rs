//! What the conversations list says of each saved conversation besides its name, date and
//! first words: the model groups it asked, its messages and what it cost (every branch's
//! answers, `unpriced` when one had no known price). Read off the UI loop (each file is
//! parsed whole), after the list itself shows.

use std::io;

use crate::money::Usd;

use super::session::{AnswerState, Entry, LoadedSession, SessionStore};

/// A saved conversation in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSummary {
    /// The groups asked, in the order first asked.
    pub models: Vec<String>,
    /// Your messages (on the branch shown).
    pub messages: usize,
    /// What its priced answers cost.
    pub spent: Usd,
    /// Some answer's cost was not known.
    pub unpriced: bool,
}

/// The numbers of a loaded conversation.
pub fn summarize(s: &LoadedSession) -> SessionSummary {
    let mut out = SessionSummary::default();
    for e in &s.entries {
        if let Entry::User(u) = e {
            out.messages += 1;
            if !out.models.contains(&u.group) {
                out.models.push(u.group.clone());
            }
        }
    }
    for e in s.entries.iter().chain(s.branches.entries()) {
        if let Entry::Answer(a) = e {
            match a.cost {
                Some(c) => out.spent += c,
                None if a.state == AnswerState::Done || a.usage.is_some() => out.unpriced = true,
                None => {}
            }
        }
    }
    out
}

impl SessionStore {
    /// The numbers of session `name`.
    pub fn summary(&self, name: &str) -> io::Result<SessionSummary> {
        self.load(name).map(|s| summarize(&s))
    }
}
