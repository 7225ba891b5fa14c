//! How llmux opens and reads its own files under the data dir (sessions, the request log).
//!
//! They are private: directories are created 0700 and files 0600, and existing ones are
//! tightened to that when opened (conversations and routing history are nobody else's).
//! Appends always start a line of their own: a file whose last line was cut short by a crash
//! gets its newline first, so the torn line is the only one lost. And lines are read as bytes
//! ([`byte_lines`]): a line that is not UTF-8 (a write cut inside a multi-byte character) is
//! that line's problem, never the file's.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Mode of a directory llmux keeps data in.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of a file llmux keeps data in.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) 0700, or tightens it to 0700 when it exists.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(PRIVATE_DIR_MODE);
    builder.create(dir)?;
    tighten(dir, PRIVATE_DIR_MODE);
    Ok(())
}

/// Opens `path` for appending, creating it 0600 in a private directory (see
/// [`private_dir`]), tightening an existing one, and ending a torn last line so the first
/// write starts a line of its own.
pub fn open_append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    let mut options = OpenOptions::new();
    options.create(true).read(true).append(true);
    #[cfg(unix)]
    options.mode(PRIVATE_FILE_MODE);
    let mut file = options.open(path)?;
    tighten(path, PRIVATE_FILE_MODE);
    if ends_inside_a_line(&mut file)? {
        file.write_all(b"\n")?;
    }
    Ok(file)
}

/// Takes group and other permissions away from an existing file or directory (a file
/// written before llmux made its files private). A path llmux does not own stays as it is.
pub fn tighten(path: &Path, mode: u32) {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// True when the file is not empty and its last byte is not a newline.
fn ends_inside_a_line(f: &mut File) -> io::Result<bool> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    // Reads follow the position; appends go to the end whatever it is.
    f.seek(SeekFrom::Start(len - 1))?;
    f.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// One line of a file read as bytes: its number (from 1), its text when it is UTF-8, and
/// whether it is the last line and had no newline (a write cut short).
#[derive(Debug)]
pub struct ByteLine<'a> {
    pub number: usize,
    pub text: Result<&'a str, std::str::Utf8Error>,
    pub unterminated: bool,
}

/// Calls `each` with every line of `reader` (newline and a trailing `\r` removed), as bytes
/// checked for UTF-8 one line at a time: a line that is not UTF-8 costs only itself. Stops
/// early when `each` returns false. Only an error reading the file is an error.
pub fn byte_lines(
    mut reader: impl BufRead,
    mut each: impl FnMut(ByteLine<'_>) -> bool,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        number += 1;
        let unterminated = buf.last() != Some(&b'\n');
        if !unterminated {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let line = ByteLine {
            number,
            text: std::str::from_utf8(&buf),
            unterminated,
        };
        if !each(line) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(bytes: &[u8]) -> Vec<(usize, Option<String>, bool)> {
        let mut out = Vec::new();
        byte_lines(bytes, |l| {
            out.push((l.number, l.text.ok().map(str::to_string), l.unterminated));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn a_line_cut_inside_a_character_costs_that_line_only() {
        // "é" is C3 A9; the last line ends after C3.
        let lines = collect(b"one\n\xff\xfe\ntwo\r\nthr\xc3");
        assert_eq!(
            lines,
            [
                (1, Some("one".into()), false),
                (2, None, false),
                (3, Some("two".into()), false),
                (4, None, true),
            ]
        );
        assert!(collect(b"").is_empty());
        assert_eq!(collect(b"\n"), [(1, Some(String::new()), false)]);
    }

    #[cfg(unix)]
    #[test]
    fn files_and_directories_are_created_private_and_tightened_when_they_exist() {
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/log.jsonl");
        open_append(&path).unwrap().write_all(b"x\n").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.path().join("a/b")), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let dir = root.path().join("a/b");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        open_append(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn an_append_after_a_torn_line_starts_a_line() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("f");
        std::fs::write(&path, b"whole\ntor\xc3").unwrap();
        open_append(&path).unwrap().write_all(b"next\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole\ntor\xc3\nnext\n");
        // A file that ends a line, or is empty, gets nothing added.
        open_append(&path).unwrap().write_all(b"more\n").unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"whole\ntor\xc3\nnext\nmore\n"
        );
    }
}
