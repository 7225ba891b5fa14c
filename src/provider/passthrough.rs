//! What an upstream's answer carries that llmux does not model — `system_fingerprint`,
//! `service_tier`, a choice's `logprobs`, a delta's `refusal` or `annotations`, the other
//! choices of an `n > 1` answer, the vectors of an embedding — kept as the JSON text it came
//! in, so that an API front end speaking the same wire (`llmux serve`'s OpenAI API) can pass it
//! back as it was sent.
//!
//! A decoder that finds such members in a chunk or an answer emits one
//! [`StreamEvent::Passthrough`](super::StreamEvent::Passthrough) before the events of the same
//! chunk; the router forwards it to its caller untouched, and a front end splices its
//! [`Members`] into the object it writes (`,"name":value` after its own members). Members whose
//! value is `null` are left out: to a client they are the same as absent.

use bytes::BufMut;

/// Members of one JSON object, as written: `"name":value` pairs joined by commas (empty when
/// there are none), ready to splice into an object after its own members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members(String);

impl Members {
    /// Appends the member `name` with `raw`, a JSON value as written. A `null` is left out.
    pub fn push(&mut self, name: &str, raw: &str) {
        if raw == "null" {
            return;
        }
        self.0.reserve(name.len() + raw.len() + 4);
        if !self.0.is_empty() {
            self.0.push(',');
        }
        let plain = !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
        if plain {
            self.0.push('"');
            self.0.push_str(name);
            self.0.push('"');
        } else {
            // A name with quotes, backslashes or control characters, escaped by serde.
            self.0
                .push_str(&serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into()));
        }
        self.0.push(':');
        self.0.push_str(raw);
    }

    /// Appends every member of `other` (later ones win for a client that reads duplicates).
    pub fn extend(&mut self, other: &Members) {
        if other.0.is_empty() {
            return;
        }
        if !self.0.is_empty() {
            self.0.push(',');
        }
        self.0.push_str(&other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The members as written (`"a":1,"b":"x"`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Writes `,` and the members after an object's own members (nothing when there are none).
    pub fn write_after<B: BufMut>(&self, out: &mut B) {
        if !self.0.is_empty() {
            out.put_u8(b',');
            out.put_slice(self.0.as_bytes());
        }
    }

    /// Writes the members as the first ones of an object (a comma after them when `more`).
    pub fn write_before<B: BufMut>(&self, out: &mut B, more: bool) {
        if !self.0.is_empty() {
            out.put_slice(self.0.as_bytes());
            if more {
                out.put_u8(b',');
            }
        }
    }
}

/// One chunk's (or one whole answer's) members llmux does not model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passthrough {
    /// Members of the chunk itself (`system_fingerprint`, `service_tier`, an embedding
    /// answer's `data`).
    pub top: Members,
    /// Members of choice 0 besides its index, delta and finish reason (`logprobs`).
    pub choice: Members,
    /// Members of choice 0's `delta` (or `message`) besides its texts and tool calls
    /// (`refusal`, `annotations`).
    pub delta: Members,
    /// The other choices of the chunk (`n > 1`), each a JSON object as it was sent.
    pub choices: Vec<Box<str>>,
    /// True when the same chunk also carried choice 0's text, reasoning or tool calls: the
    /// events that follow this one belong with it.
    pub carries: bool,
}

impl Passthrough {
    /// True when there is nothing to pass back.
    pub fn is_empty(&self) -> bool {
        self.top.is_empty()
            && self.choice.is_empty()
            && self.delta.is_empty()
            && self.choices.is_empty()
    }

    /// True when it holds something of a choice (choice 0's members or other choices), not
    /// only members of the chunk itself.
    pub fn has_choices(&self) -> bool {
        !self.choice.is_empty() || !self.delta.is_empty() || !self.choices.is_empty()
    }

    /// `later` added to this one: the members of both (the later's last), every choice.
    pub fn merge(&mut self, later: Passthrough) {
        self.top.extend(&later.top);
        self.choice.extend(&later.choice);
        self.delta.extend(&later.delta);
        self.choices.extend(later.choices);
        self.carries |= later.carries;
    }

    /// Writes the other choices after choice 0 in a `choices` array (`,{…},{…}`).
    pub fn write_choices<B: BufMut>(&self, out: &mut B) {
        for c in &self.choices {
            out.put_u8(b',');
            out.put_slice(c.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_splice_into_an_object_and_leave_nulls_out() {
        let mut m = Members::default();
        m.push("system_fingerprint", "\"fp_1\"");
        m.push("logprobs", "null");
        m.push("we\"ird", "[1, 2]");
        let mut out = Vec::new();
        out.extend_from_slice(b"{\"id\":1");
        m.write_after(&mut out);
        out.push(b'}');
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": 1, "system_fingerprint": "fp_1", "we\"ird": [1, 2]})
        );
        let mut empty = Vec::new();
        Members::default().write_after(&mut empty);
        assert!(empty.is_empty());
    }
}
