//! Renaming and deleting saved conversations (the TUI's `/rename`, `/delete` and the keys of
//! its conversations list). A session is one file, so both are one filesystem call; a
//! session that was never written (a new conversation) has nothing to move or remove.

use std::io;

use super::session::{SessionStore, safe_name};

impl SessionStore {
    /// Renames session `from` to `to` (made safe for a file name); returns the name used. A
    /// session of that name already there is an error, never overwritten.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<String> {
        let to = safe_name(to);
        let (src, dst) = (self.path_of(from), self.path_of(&to));
        if src == dst {
            return Ok(to);
        }
        if dst.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("a conversation named {to} exists: pick another name"),
            ));
        }
        match std::fs::rename(&src, &dst) {
            Ok(()) => Ok(to),
            // Nothing written yet: only the name changes.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(to),
            Err(e) => Err(e),
        }
    }

    /// Deletes session `name`'s file (none there is not an error).
    pub fn delete(&self, name: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path_of(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
