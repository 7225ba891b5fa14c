//! Where each node of a YAML document sits in its text, so the loader can say
//! `path:line:col` about a key or value it found wrong.
//!
//! `serde_yaml` gives values without positions; this module reads the same text a second time
//! with `saphyr-parser`'s event API and records, for every node, the 1-based line and column
//! of its key (inside a mapping) and of its value, under a dotted path such as
//! `model_list[2].litellm_params.model`. The loader builds paths with [`child`] and [`item`]
//! and asks [`Positions::key`] / [`Positions::value`]; a path that is not indexed (a value
//! reached through an alias or a `<<` merge) answers with its nearest indexed ancestor.
//! Text that `saphyr` cannot parse yields a partial index, never an error: syntax errors are
//! reported from `serde_yaml`, which the loader runs first.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, Span};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// The top of the file: where findings about the whole document point.
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn of(span: &Span) -> Pos {
        // saphyr's lines are 1-based, its columns 0-based.
        Pos {
            line: span.start.line().max(1),
            column: span.start.col() + 1,
        }
    }
}

/// The path of `key` inside the mapping at `parent` (`""` is the document root).
pub fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The path of item `index` of the sequence at `parent`.
pub fn item(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    key: Option<Pos>,
    value: Option<Pos>,
}

/// Path → positions of the key and the value found there.
#[derive(Debug, Default)]
pub struct Positions {
    entries: HashMap<String, Entry>,
    /// The first key written twice in one mapping (serde_yaml's error points at the mapping).
    pub duplicate_key: Option<Pos>,
    /// Where a second document starts (serde_yaml's error has no position).
    pub second_document: Option<Pos>,
    /// Where nesting first goes deeper than [`MAX_DEPTH`], or the parser gave up on depth.
    pub too_deep: Option<Pos>,
}

/// Deeper nesting than any config needs; past it the loader refuses the text before
/// `serde_yaml` sees it (which takes quadratic time on very deep input).
pub const MAX_DEPTH: usize = 64;

/// One open container while the events stream by.
enum Frame {
    Map {
        path: String,
        /// The key just read, waiting for its value; `None` while a key is expected.
        pending_key: Option<String>,
        seen: HashSet<String>,
    },
    Seq {
        path: String,
        next: usize,
    },
    /// A container used as a mapping key: nothing inside it is indexed.
    Ignored,
}

impl Positions {
    /// Indexes `text`. Never fails: whatever parses before an error is kept.
    pub fn build(text: &str) -> Positions {
        let mut index = Positions::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(text);
        // Only the first document is read, as serde_yaml reads only one.
        let mut documents = 0usize;
        while let Some(next) = parser.next_event() {
            let (event, span) = match next {
                Ok(ok) => ok,
                Err(e) => {
                    if e.info().contains("recursion limit") {
                        index.too_deep.get_or_insert(Pos {
                            line: e.marker().line().max(1),
                            column: e.marker().col() + 1,
                        });
                    }
                    break;
                }
            };
            if stack.len() > MAX_DEPTH {
                index.too_deep.get_or_insert(Pos::of(&span));
                break;
            }
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        index.second_document = Some(Pos::of(&span));
                        break;
                    }
                }
                Event::Scalar(value, ..) => index.node(&mut stack, &span, Some(value.as_ref())),
                Event::Alias(_) => index.node(&mut stack, &span, None),
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let is_map = matches!(event, Event::MappingStart(..));
                    index.open(&mut stack, &span, is_map);
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    // The container was a value (or a key) of its parent: that node is done.
                    finish_value(&mut stack);
                }
                _ => {}
            }
        }
        index
    }

    /// A leaf node (scalar or alias). `scalar` is its text, used when it is a mapping key.
    fn node(&mut self, stack: &mut [Frame], span: &Span, scalar: Option<&str>) {
        let pos = Pos::of(span);
        match stack.last_mut() {
            None => self.set_value(String::new(), pos),
            Some(Frame::Ignored) => {}
            Some(Frame::Map {
                path,
                pending_key,
                seen,
            }) => match pending_key.take() {
                None => {
                    // A key. An alias used as a key gets a name no real path can have.
                    let key = scalar.unwrap_or("*alias").to_string();
                    if !seen.insert(key.clone()) && self.duplicate_key.is_none() {
                        self.duplicate_key = Some(pos);
                    }
                    let full = child(path, &key);
                    self.entries.entry(full).or_default().key = Some(pos);
                    *pending_key = Some(key);
                }
                Some(key) => {
                    let full = child(path, &key);
                    self.set_value(full, pos);
                }
            },
            Some(Frame::Seq { path, next }) => {
                let full = item(path, *next);
                *next += 1;
                self.set_value(full, pos);
            }
        }
    }

    /// A mapping or sequence starts: record it as a value and push its frame.
    fn open(&mut self, stack: &mut Vec<Frame>, span: &Span, is_map: bool) {
        let pos = Pos::of(span);
        let path = match stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Ignored) => None,
            Some(Frame::Map {
                path, pending_key, ..
            }) => {
                // With no key pending this is a complex key: its insides get no path.
                pending_key.as_ref().map(|key| child(path, key))
            }
            Some(Frame::Seq { path, next }) => {
                let full = item(path, *next);
                *next += 1;
                Some(full)
            }
        };
        let frame = match path {
            None => Frame::Ignored,
            Some(path) => {
                self.set_value(path.clone(), pos);
                if is_map {
                    Frame::Map {
                        path,
                        pending_key: None,
                        seen: HashSet::new(),
                    }
                } else {
                    Frame::Seq { path, next: 0 }
                }
            }
        };
        stack.push(frame);
    }

    fn set_value(&mut self, path: String, pos: Pos) {
        let entry = self.entries.entry(path).or_default();
        // A duplicate key keeps its first position (serde_yaml rejects duplicates anyway).
        if entry.value.is_none() {
            entry.value = Some(pos);
        }
    }

    /// Where the key of `path` is written, else its value, else the nearest ancestor's.
    pub fn key(&self, path: &str) -> Pos {
        self.lookup(path, true)
    }

    /// Where the value of `path` is written, else its key, else the nearest ancestor's.
    pub fn value(&self, path: &str) -> Pos {
        self.lookup(path, false)
    }

    fn lookup(&self, path: &str, prefer_key: bool) -> Pos {
        let mut current = path;
        loop {
            if let Some(entry) = self.entries.get(current) {
                let found = if prefer_key {
                    entry.key.or(entry.value)
                } else {
                    entry.value.or(entry.key)
                };
                if let Some(pos) = found {
                    return pos;
                }
            }
            match parent_path(current) {
                Some(parent) => current = parent,
                None => return Pos::START,
            }
        }
    }
}

/// After a container closes, the mapping holding it as a value expects a key again.
fn finish_value(stack: &mut [Frame]) {
    if let Some(Frame::Map { pending_key, .. }) = stack.last_mut() {
        // A container that was a key leaves `pending_key` empty; mark the key as read so its
        // value is not taken for a key.
        if pending_key.is_some() {
            *pending_key = None;
        } else {
            *pending_key = Some("?complex".to_string());
        }
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → none.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
model_list:
  - model_name: fast
    litellm_params:
      model: \"openai/x\"
      rpm: 5
  - {model_name: b, litellm_params: {model: mock/y, tags: [a, b]}}
base: &b
  k: v
other: *b
";

    fn at(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn keys_and_values_of_block_and_flow_nodes() {
        let p = Positions::build(TEXT);
        assert_eq!(p.key("model_list"), at(1, 1));
        assert_eq!(p.value("model_list[0]"), at(2, 5));
        assert_eq!(p.key("model_list[0].model_name"), at(2, 5));
        assert_eq!(p.value("model_list[0].model_name"), at(2, 17));
        assert_eq!(p.value("model_list[0].litellm_params.model"), at(4, 14));
        assert_eq!(p.key("model_list[0].litellm_params.rpm"), at(5, 7));
        assert_eq!(p.value("model_list[1].litellm_params.model"), at(6, 45));
        assert_eq!(p.value("model_list[1].litellm_params.tags[1]"), at(6, 63));
        assert_eq!(p.key("base.k"), at(8, 3));
    }

    #[test]
    fn unknown_paths_fall_back_to_their_nearest_ancestor() {
        let p = Positions::build(TEXT);
        assert_eq!(p.value("other.k"), at(9, 8));
        assert_eq!(p.value("model_list[0].litellm_params.nope"), at(4, 7));
        assert_eq!(p.value("nothing.here"), Pos::START);
    }

    #[test]
    fn complex_keys_do_not_confuse_the_following_entries() {
        let p = Positions::build("? [a, b]\n: 1\nc: 2\n");
        assert_eq!(p.value("c"), at(3, 4));
    }

    #[test]
    fn duplicate_keys_and_second_documents_are_located() {
        let p = Positions::build("a:\n  b: 1\n  c: 2\n  b: 3\n");
        assert_eq!(p.duplicate_key, Some(at(4, 3)));
        let p = Positions::build("a: 1\n---\nb: 2\n");
        assert_eq!(p.second_document, Some(at(2, 1)));
    }

    #[test]
    fn deep_nesting_is_noticed() {
        let deep = format!(
            "a: {}{}",
            "[".repeat(MAX_DEPTH + 5),
            "]".repeat(MAX_DEPTH + 5)
        );
        assert!(Positions::build(&deep).too_deep.is_some());
        let dashes = "- ".repeat(MAX_DEPTH + 5) + "x\n";
        assert!(Positions::build(&dashes).too_deep.is_some());
        assert!(Positions::build("a: [[[1]]]\n").too_deep.is_none());
    }

    #[test]
    fn broken_text_gives_a_partial_index() {
        let p = Positions::build("a: 1\nb: [\n");
        assert_eq!(p.value("a"), at(1, 4));
    }
}
