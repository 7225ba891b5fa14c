//! What a conversation sends: its history as chat messages ([`history`]), with the images
//! sent with each message of the user ([`Image`], kept whole in the session file so that a
//! reopened conversation, a regenerated answer or an edited message sends them again).

use serde::{Deserialize, Serialize};

use crate::provider::{ImageSource, Message, Part, Role};

use super::session::{Answer, Entry};

/// An image sent with a message: its bytes base64-encoded, as they went in the request.
/// Bounded by what may be attached (`tui::attach::MAX_IMAGE_BYTES` per image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The path it was attached as (what its `[image NAME · SIZE]` line names).
    pub name: String,
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub media_type: String,
    /// The bytes, base64 (empty in a record that names the image by [`from`](Self::from)).
    pub data: String,
    /// Only in a session file: the image is already in the file, with message `from` (an edit
    /// sent as a branch keeps the images of the message it replaces), and is not written
    /// again; loading puts its bytes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
}

impl Image {
    /// This image as a record names it when message `id` already holds it.
    pub fn kept_from(&self, id: u64) -> Image {
        Image {
            name: self.name.clone(),
            media_type: self.media_type.clone(),
            data: String::new(),
            from: Some(id),
        }
    }

    /// The image as a message part.
    pub fn part(&self) -> Part {
        Part::Image {
            source: ImageSource::Base64 {
                media_type: self.media_type.clone(),
                data: self.data.clone(),
            },
            detail: None,
        }
    }

    /// The line a message's text shows for it, up to its size: `[image NAME · `.
    pub fn marker(&self) -> String {
        format!("[image {} · ", self.name)
    }
}

/// A user message of `text` with `images` after it.
pub fn user_message(text: &str, images: &[Image]) -> Message {
    if images.is_empty() {
        return Message::user(text);
    }
    let mut parts = vec![Part::Text {
        text: text.to_string(),
    }];
    parts.extend(images.iter().map(Image::part));
    Message::with_parts(Role::User, parts)
}

/// The chat history to send for a conversation: every user message (with its images), each
/// followed by the latest non-empty answer to it (so a regenerated answer replaces the
/// earlier one), with an answer's tool calls and the tool results after it.
pub fn history(entries: &[Entry]) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let mut pending_answer: Option<&Answer> = None;
    let flush = |out: &mut Vec<Message>, a: Option<&Answer>| {
        if let Some(a) = a {
            let mut m = Message::assistant(a.text.clone());
            m.tool_calls.clone_from(&a.tool_calls);
            out.push(m);
        }
    };
    for e in entries {
        match e {
            Entry::User(u) => {
                flush(&mut out, pending_answer.take());
                out.push(user_message(&u.text, &u.images));
            }
            Entry::Answer(a) => {
                if !a.text.is_empty() || !a.tool_calls.is_empty() {
                    pending_answer = Some(a);
                }
            }
            Entry::ToolResult(t) => {
                flush(&mut out, pending_answer.take());
                let mut m = Message::tool_result(t.tool_call_id.clone(), t.text.clone());
                m.is_error = t.is_error;
                out.push(m);
            }
        }
    }
    flush(&mut out, pending_answer);
    out
}

/// `messages` with their images left out (each message keeps its text, which names them):
/// for a group that takes none. `true` when there were some.
pub fn without_images(messages: &mut [Message]) -> bool {
    let mut had = false;
    for m in messages {
        if m.parts.iter().any(|p| matches!(p, Part::Image { .. })) {
            m.parts.clear();
            had = true;
        }
    }
    had
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::session::UserMessage;

    fn user(id: u64, t: &str, images: Vec<Image>) -> Entry {
        Entry::User(UserMessage {
            id,
            text: t.into(),
            group: "g".into(),
            images,
        })
    }

    #[test]
    fn history_keeps_latest_answer_per_question() {
        let ans = |id, t: &str| {
            Entry::Answer(Answer {
                id,
                text: t.into(),
                ..Answer::default()
            })
        };
        let h = history(&[
            user(1, "q1", Vec::new()),
            ans(2, "a1"),
            ans(3, "a1b"),
            user(4, "q2", Vec::new()),
            ans(5, ""),
        ]);
        let texts: Vec<&str> = h.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["q1", "a1b", "q2"]);
    }

    #[test]
    fn a_message_s_images_go_with_it_in_every_later_request_unless_left_out() {
        let cat = Image {
            name: "cat.png".into(),
            media_type: "image/png".into(),
            data: "iVBORw0K".into(),
            from: None,
        };
        let mut h = history(&[
            user(
                1,
                "what is on this?\n\n[image cat.png · 12 B]",
                vec![cat.clone()],
            ),
            user(2, "and its colour?", Vec::new()),
        ]);
        assert_eq!(h[0].parts.len(), 2);
        assert_eq!(h[0].parts[1], cat.part());
        assert_eq!(h[0].content, "what is on this?\n\n[image cat.png · 12 B]");
        assert!(h[1].parts.is_empty());
        assert!(without_images(&mut h));
        assert!(h[0].parts.is_empty());
        assert_eq!(h[0].content, "what is on this?\n\n[image cat.png · 12 B]");
        assert!(!without_images(&mut h));
    }
}
