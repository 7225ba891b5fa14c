//! Reading a session file back: its records applied in order ([`parse_records`]) into the
//! conversation shown and the branches kept off it; a line that cannot be read is skipped
//! with a warning, an answer a crash cut short is marked interrupted, and an image a record
//! names ([`Image::from`]) gets its bytes back from the message that holds them.

use super::file::{ByteLine, byte_lines};
use super::session::{Answer, AnswerState, Entry, Image, LoadedSession, Record, UserMessage};

/// Folds the lines of a session file into entries; an unreadable line (not JSON, not a
/// record, not UTF-8) is skipped with a warning.
pub fn parse_records(bytes: &[u8]) -> LoadedSession {
    let mut s = LoadedSession::default();
    // Reading from a slice cannot fail.
    let _ = byte_lines(bytes, |line| {
        match record_of(&line) {
            Ok(Some(record)) => apply(&mut s, record),
            Ok(None) => {}
            Err(why) => s.warnings.push(format!("line {}: {why}", line.number)),
        }
        true
    });
    let off = s.branches.off.iter_mut().map(|(_, e)| e);
    for e in s.entries.iter_mut().chain(off) {
        if let Entry::Answer(a) = e
            && a.state == AnswerState::Streaming
        {
            a.state = AnswerState::Interrupted;
        }
    }
    s
}

/// Why a line of a session file was skipped.
#[derive(Debug, thiserror::Error)]
enum Skipped {
    /// A last line without its newline: a write cut short by a crash.
    #[error("torn last line skipped")]
    Torn,
    #[error("unreadable line skipped ({0})")]
    NotUtf8(std::str::Utf8Error),
    #[error("unreadable line skipped ({0})")]
    NotARecord(serde_json::Error),
}

/// The record on a line, `None` for a blank one, or why it was skipped.
fn record_of(line: &ByteLine<'_>) -> Result<Option<Record>, Skipped> {
    let text = match line.text {
        Ok(t) => t,
        Err(_) if line.unterminated => return Err(Skipped::Torn),
        Err(e) => return Err(Skipped::NotUtf8(e)),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Record>(text) {
        Ok(r) => Ok(Some(r)),
        Err(_) if line.unterminated => Err(Skipped::Torn),
        Err(e) => Err(Skipped::NotARecord(e)),
    }
}

fn answer_mut(s: &mut LoadedSession, id: u64) -> Option<&mut Answer> {
    // (on the branch shown, else on another: a late record of an answer switched away from)
    let on_path = s.entries.iter().rev().any(|e| e.id() == id);
    let found = if on_path {
        s.entries.iter_mut().rev().find(|e| e.id() == id)
    } else {
        s.branches.entry_mut(id)
    };
    match found {
        Some(Entry::Answer(a)) => Some(a),
        _ => None,
    }
}

/// Message `id`'s image `name`, on the branch shown or another.
fn image_of(s: &LoadedSession, id: u64, name: &str) -> Option<Image> {
    let message = s
        .entries
        .iter()
        .chain(s.branches.entries())
        .find_map(|e| match e {
            Entry::User(u) if u.id == id => Some(u),
            _ => None,
        })?;
    message.images.iter().find(|i| i.name == name).cloned()
}

fn apply(s: &mut LoadedSession, record: Record) {
    match record {
        Record::User {
            id,
            text,
            group,
            images,
            ..
        } => {
            let images = images
                .into_iter()
                .filter_map(|i| match i.from {
                    None => Some(i),
                    // (an image whose message is not in the file is left out: its line stays)
                    Some(from) => image_of(s, from, &i.name),
                })
                .collect();
            s.entries.push(Entry::User(UserMessage {
                id,
                text,
                group,
                images,
            }));
        }
        Record::Chunk { id, text } => match answer_mut(s, id) {
            Some(a) => a.text.push_str(&text),
            None => s.entries.push(Entry::Answer(Answer {
                id,
                text,
                ..Answer::default()
            })),
        },
        Record::Route {
            id,
            group,
            answered_group,
            deployment,
            ttft_ms,
        } => {
            let a = match answer_mut(s, id) {
                Some(a) => a,
                None => {
                    s.entries.push(Entry::Answer(Answer {
                        id,
                        ..Answer::default()
                    }));
                    match s.entries.last_mut() {
                        Some(Entry::Answer(a)) => a,
                        _ => return,
                    }
                }
            };
            a.group = group;
            a.answered_group = answered_group.or(a.answered_group.take());
            a.deployment = deployment.or(a.deployment.take());
            a.ttft_ms = ttft_ms.or(a.ttft_ms);
        }
        Record::Restart { id } => {
            if let Some(a) = answer_mut(s, id) {
                a.text.clear();
                a.badges.restarted = true;
            }
        }
        Record::Answer(answer) => match answer_mut(s, answer.id) {
            Some(a) => *a = answer,
            None => s.entries.push(Entry::Answer(answer)),
        },
        Record::ToolResult(t) => s.entries.push(Entry::ToolResult(t)),
        Record::Draft { text } => s.draft = text,
        Record::Settings(settings) => s.settings = settings,
        Record::Fork { replaces } => match s.entries.iter().position(|e| e.id() == replaces) {
            Some(at) => s.branches.cut(&mut s.entries, at),
            None => s
                .warnings
                .push(format!("an edit of message {replaces}, which is not there")),
        },
        Record::Branch { leaf } => {
            if !s.branches.select(&mut s.entries, leaf) {
                s.warnings
                    .push(format!("a switch to branch end {leaf}, which is not there"));
            }
        }
        Record::Drop { id } => {
            if let Some(at) = s.entries.iter().position(|e| e.id() == id) {
                s.entries.truncate(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_named_by_an_earlier_message_is_put_back_and_one_whose_message_is_gone_left_out() {
        let cat = Image {
            name: "cat.png".into(),
            media_type: "image/png".into(),
            data: "iVBORw0K".into(),
            from: None,
        };
        let user = |id, images| Record::User {
            id,
            text: format!("q{id}\n\n[image cat.png · 12 B]"),
            group: "g".into(),
            at_unix_ms: 0,
            images,
        };
        let lines = [
            user(1, vec![cat.clone()]),
            user(2, vec![cat.kept_from(1)]),
            user(3, vec![cat.kept_from(9)]),
        ]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect::<String>();
        assert_eq!(lines.matches("iVBORw0K").count(), 1, "{lines}");
        let s = parse_records(lines.as_bytes());
        let images: Vec<Vec<Image>> = s
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::User(u) => Some(u.images.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(images, [vec![cat.clone()], vec![cat], Vec::new()]);
    }
}
