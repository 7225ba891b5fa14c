//! JSON written by serde, with the two things serde has no form for.
//!
//! Members an upstream sent that llmux passes back ([`Members`](crate::provider::Members),
//! other choices) are JSON text as it came, not values: they go in before the closing brace of
//! the object they came from ([`add_members`]), copied as they are.
//!
//! Answers come in a few shapes that differ only in some values: every chunk of a stream but
//! for its choices, every text delta but for its text, every answer's frame but for its id,
//! model, times and usage. serde_json escapes every member name it writes (about 15
//! instructions a byte, a few hundred a member), which per token would cost several times what
//! the rest of a chunk does, so such a shape is serialized once with [`Hole`]s where the values
//! go, and each use copies the bytes between the holes and writes the values ([`Shape`]).
//!
//! Everything is written into a `Vec<u8>`: serde's many small writes cost less there than
//! through a `BytesMut`'s writer.

use std::cell::{Cell, RefCell};
use std::io;

use serde::{Serialize, Serializer};

/// What a [`Hole`] writes: serde must write a value there; the shape cuts it out.
const HOLE: &[u8] = b"null";

/// Appends `value` as JSON.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // llmux's answers are strings, numbers and objects with names: writing them into memory
    // cannot fail.
    let _ = serde_json::to_writer(out, value);
}

/// Appends `value`, a JSON object, with the members `more` writes added at its end.
pub fn write_object<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    more: impl FnOnce(&mut Vec<u8>),
) {
    write(out, value);
    add_members(out, more);
}

/// Lets `more` add members to the object that `out` ends with, before its closing brace:
/// each after a comma, as [`Members::write_after`](crate::provider::Members::write_after)
/// writes them (the first comma is dropped when the object had no members).
pub fn add_members(out: &mut Vec<u8>, more: impl FnOnce(&mut Vec<u8>)) {
    let Some(close) = out.pop() else {
        return;
    };
    let at = out.len();
    more(out);
    if out.len() > at && at.checked_sub(1).and_then(|i| out.get(i)) == Some(&b'{') {
        out.remove(at);
    }
    out.push(close);
}

/// Appends the members of `value`, a JSON object, each after a comma: members to add to
/// another object ([`add_members`]).
pub fn write_members<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let at = out.len();
    write(out, value);
    if out.len() - at <= "{}".len() {
        out.truncate(at);
    } else {
        out[at] = b',';
        out.pop();
    }
}

/// Notes how far serde has written, so that each [`Hole`] knows where it is.
#[derive(Default)]
pub struct Probe {
    written: Cell<usize>,
    holes: RefCell<Vec<usize>>,
}

impl Probe {
    /// A place in a value that a [`Shape`] of it leaves to be filled in.
    pub fn hole(&self) -> Hole<'_> {
        Hole(self)
    }
}

/// See [`Probe::hole`].
pub struct Hole<'a>(&'a Probe);

impl Serialize for Hole<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.holes.borrow_mut().push(self.0.written.get());
        s.serialize_unit()
    }
}

/// A writer that tells its [`Probe`] how far it has written.
struct Probed<'a> {
    out: Vec<u8>,
    probe: &'a Probe,
}

impl io::Write for Probed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        self.probe.written.set(self.out.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// JSON with holes: the bytes serde wrote for a value, and where its [`Hole`]s were.
pub struct Shape {
    json: Box<[u8]>,
    /// Each hole's start and end in `json`, in order.
    holes: Box<[(usize, usize)]>,
}

impl Shape {
    /// The shape of `value`, whose [`Hole`]s came from `probe`.
    pub fn of<T: Serialize + ?Sized>(value: &T, probe: &Probe) -> Shape {
        let mut w = Probed {
            out: Vec::new(),
            probe,
        };
        // As in [`write`]: writing into memory cannot fail.
        let _ = serde_json::to_writer(&mut w, value);
        let holes = probe
            .holes
            .take()
            .into_iter()
            .filter(|&at| w.out.get(at..at + HOLE.len()) == Some(HOLE))
            .map(|at| (at, at + HOLE.len()))
            .collect();
        Shape {
            json: w.out.into_boxed_slice(),
            holes,
        }
    }

    /// Bytes already written with holes (of no length) at `holes`, in order: a shape made of
    /// other shapes, some of their holes filled in.
    pub fn written(json: Vec<u8>, holes: &[usize]) -> Shape {
        Shape {
            json: json.into_boxed_slice(),
            holes: holes.iter().map(|&at| (at, at)).collect(),
        }
    }

    /// Appends the shape with each hole filled in by `fill`, given the hole's number (0, 1, …
    /// in the order they were written).
    pub fn write(&self, out: &mut Vec<u8>, mut fill: impl FnMut(usize, &mut Vec<u8>)) {
        let mut from = 0;
        for (n, &(start, end)) in self.holes.iter().enumerate() {
            out.extend_from_slice(&self.json[from..start]);
            fill(n, out);
            from = end;
        }
        out.extend_from_slice(&self.json[from..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Outer<'a, T> {
        id: &'a str,
        items: [T; 1],
        more: T,
    }

    fn text(out: Vec<u8>) -> String {
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_shape_is_filled_where_its_holes_were() {
        let probe = Probe::default();
        // A text that spells what a hole writes: holes are found by where serde was, not by
        // what it wrote.
        let shape = Shape::of(
            &Outer {
                id: "null",
                items: [probe.hole()],
                more: probe.hole(),
            },
            &probe,
        );
        let mut out = Vec::new();
        shape.write(&mut out, |n, o| {
            o.extend_from_slice(["7", "true"][n].as_bytes())
        });
        assert_eq!(text(out), r#"{"id":"null","items":[7],"more":true}"#);
        let mut out = Vec::new();
        let mut holes = Vec::new();
        shape.write(&mut out, |n, o| match n {
            0 => holes.push(o.len()),
            _ => o.push(b'1'),
        });
        let filled = Shape::written(out, &holes);
        let mut out = Vec::new();
        filled.write(&mut out, |_, _| {});
        add_members(&mut out, |o| o.extend_from_slice(b",\"x\":true"));
        assert_eq!(text(out), r#"{"id":"null","items":[],"more":1,"x":true}"#);
    }

    #[test]
    fn members_go_in_before_the_closing_brace_with_a_comma_only_after_others() {
        let mut out = Vec::new();
        write_object(&mut out, &serde_json::json!({"a": 1}), |o| {
            o.extend_from_slice(b",\"b\":2")
        });
        write_object(&mut out, &serde_json::json!({}), |o| {
            o.extend_from_slice(b",\"b\":2")
        });
        write_object(&mut out, &serde_json::json!({}), |_| {});
        assert_eq!(text(out), r#"{"a":1,"b":2}{"b":2}{}"#);
        let mut out = b"{\"a\":1".to_vec();
        write_members(&mut out, &serde_json::json!({"u": {"n": 2}}));
        write_members(&mut out, &serde_json::json!({}));
        out.push(b'}');
        assert_eq!(text(out), r#"{"a":1,"u":{"n":2}}"#);
    }
}
