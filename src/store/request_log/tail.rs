//! The highest request id near the end of the request log, so a new process numbers its
//! requests on from there instead of from #1 again (the routing log, `ask -v` and the log
//! itself then never show two requests under one number in a row of runs).
//!
//! Only the last [`TAIL_BYTES`] are read, whatever the log's size; a line cut at the start of
//! that tail or torn by a crash is skipped.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How much of the log's end is read.
const TAIL_BYTES: u64 = 64 * 1024;
/// Every line starts with it (serde and the hand-written lines alike write `request_id` first).
const PREFIX: &[u8] = b"{\"request_id\":";

/// The highest request id in the last lines of the log at `path`; `None` when there is no log
/// or no request in its tail.
pub fn last_request_id(path: &Path) -> Option<u64> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    tail.split(|b| *b == b'\n')
        .filter_map(|line| {
            let digits = line.strip_prefix(PREFIX)?;
            let end = digits.iter().position(|b| !b.is_ascii_digit())?;
            std::str::from_utf8(&digits[..end])
                .ok()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_highest_id_and_skips_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.jsonl");
        assert_eq!(last_request_id(&path), None, "no log");
        std::fs::write(
            &path,
            "{\"request_id\":7,\"group\":\"a\"}\n{\"request_id\":0,\"group\":\"\"}\n\
             {\"request_id\":12,\"group\":\"a\"}\n{\"request_id\":9,\"group\":\"b\"}\n{\"request_id\":99",
        )
        .unwrap();
        assert_eq!(last_request_id(&path), Some(12));
    }
}
