//! A conversation's branches: editing an earlier message and sending it again starts a new
//! branch from there; the old one is kept and can be switched back to.
//!
//! The conversation is a tree of entries. The branch shown (the *path*) is the plain list of
//! entries everything else uses (the history sent, the view, the session search), so the
//! common case — no branches — costs nothing. [`Branches`] keeps the entries off the path,
//! each with its parent (an entry on the path has the entry before it as its parent).
//!
//! In the session file a branch is three records ([`super::session::Record`]): `fork`
//! (the next message replaces message `replaces`: the path is cut there), `branch` (the path
//! now ends at entry `leaf`) and `drop` (entries from `id` on are deleted). Files without them
//! are one branch, as before.

use super::session::Entry;

/// The entries off the path, with their parents (`None`: the conversation's first entry).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Branches {
    pub off: Vec<(Option<u64>, Entry)>,
}

impl Branches {
    pub fn is_empty(&self) -> bool {
        self.off.is_empty()
    }

    /// Moves `path[at..]` off the path (they stay reachable as a branch).
    pub fn cut(&mut self, path: &mut Vec<Entry>, at: usize) {
        if at >= path.len() {
            return;
        }
        let mut parent = at.checked_sub(1).map(|i| path[i].id());
        for e in path.drain(at..) {
            let id = e.id();
            self.off.push((parent, e));
            parent = Some(id);
        }
    }

    /// The parent of entry `id`: `Some(None)` for a first entry, `None` when unknown.
    fn parent_of(&self, path: &[Entry], id: u64) -> Option<Option<u64>> {
        if let Some(k) = path.iter().position(|e| e.id() == id) {
            return Some(k.checked_sub(1).map(|p| path[p].id()));
        }
        self.off.iter().find(|(_, e)| e.id() == id).map(|(p, _)| *p)
    }

    /// Makes the path run from the first entry to `leaf`; `false` (nothing changed) when
    /// `leaf` is not in this conversation.
    pub fn select(&mut self, path: &mut Vec<Entry>, leaf: u64) -> bool {
        let mut chain = Vec::new();
        let mut cur = Some(leaf);
        while let Some(id) = cur {
            if chain.contains(&id) {
                return false;
            }
            chain.push(id);
            match self.parent_of(path, id) {
                Some(p) => cur = p,
                None => return false,
            }
        }
        chain.reverse();
        let keep = path
            .iter()
            .zip(&chain)
            .take_while(|(e, id)| e.id() == **id)
            .count();
        self.cut(path, keep);
        for id in &chain[keep..] {
            match self.off.iter().position(|(_, e)| e.id() == *id) {
                Some(i) => path.push(self.off.remove(i).1),
                None => return false,
            }
        }
        true
    }

    /// The newest entry at the end of `id`'s branch (following the newest child each time).
    pub fn newest_leaf(&self, id: u64) -> u64 {
        let mut cur = id;
        while let Some(child) = self
            .off
            .iter()
            .filter(|(p, _)| *p == Some(cur))
            .map(|(_, e)| e.id())
            .max()
        {
            cur = child;
        }
        cur
    }

    /// The user messages that stand where `path[at]` stands (same parent), itself included,
    /// oldest first: more than one means the conversation branches there.
    pub fn alternatives(&self, path: &[Entry], at: usize) -> Vec<u64> {
        let Some(Entry::User(u)) = path.get(at) else {
            return Vec::new();
        };
        let parent = at.checked_sub(1).map(|p| path[p].id());
        let mut ids: Vec<u64> = self
            .off
            .iter()
            .filter(|(p, e)| *p == parent && matches!(e, Entry::User(_)))
            .map(|(_, e)| e.id())
            .collect();
        ids.push(u.id);
        ids.sort_unstable();
        ids
    }

    /// An entry off the path.
    pub fn entry_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.off.iter_mut().map(|(_, e)| e).find(|e| e.id() == id)
    }

    /// Every entry off the path.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.off.iter().map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::session::{Answer, UserMessage};

    fn user(id: u64) -> Entry {
        Entry::User(UserMessage {
            id,
            text: format!("q{id}"),
            group: "g".into(),
            images: Vec::new(),
        })
    }
    fn answer(id: u64) -> Entry {
        Entry::Answer(Answer {
            id,
            ..Answer::default()
        })
    }
    fn ids(path: &[Entry]) -> Vec<u64> {
        path.iter().map(Entry::id).collect()
    }

    #[test]
    fn cut_then_select_switches_between_branches() {
        let mut path = vec![user(1), answer(2), user(3), answer(4)];
        let mut b = Branches::default();
        // Message 3 edited: a new branch from answer 2.
        b.cut(&mut path, 2);
        path.push(user(5));
        path.push(answer(6));
        assert_eq!(b.alternatives(&path, 2), [3, 5]);
        assert_eq!(b.alternatives(&path, 0), [1]);
        // Back to the first branch.
        let leaf = b.newest_leaf(3);
        assert_eq!(leaf, 4);
        assert!(b.select(&mut path, leaf));
        assert_eq!(ids(&path), [1, 2, 3, 4]);
        assert_eq!(b.alternatives(&path, 2), [3, 5]);
        assert!(b.select(&mut path, 6));
        assert_eq!(ids(&path), [1, 2, 5, 6]);
        assert!(!b.select(&mut path, 99));
        assert_eq!(ids(&path), [1, 2, 5, 6]);
        // The first message edited: a branch with no parent.
        b.cut(&mut path, 0);
        path.push(user(7));
        assert_eq!(b.alternatives(&path, 0), [1, 7]);
        assert!(b.select(&mut path, b.newest_leaf(1)));
        assert_eq!(ids(&path), [1, 2, 5, 6]);
    }
}
