//! The lines of a `--batch` file into jobs: a JSON string is a prompt; an object carries
//! `prompt` or `messages` and optionally `model`, `id`, `tags`, `system`, `max_tokens` (other
//! fields are refused, so typos are caught). Text enters [`parse_jobs`] with the flags'
//! [`Defaults`]; each non-blank line leaves as a [`Job`] for the router or a [`BadLine`]
//! saying why it is not one.

use serde::Deserialize;
use serde_json::Value;

use crate::cli::ask::clean_tags;
use crate::provider::{ChatRequest, Message, Role};

/// What every line gets unless it says otherwise (from `ask`'s flags).
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub model: String,
    pub system: Option<String>,
    pub max_tokens: Option<u32>,
    pub tags: Vec<String>,
    pub no_cache: bool,
}

/// One request to make.
#[derive(Debug, Clone)]
pub struct Job {
    /// 1-based line number in the input.
    pub line: usize,
    /// The line's `id`, echoed in its result.
    pub id: Option<Value>,
    pub model: String,
    pub request: ChatRequest,
}

/// A line that is not a prompt: its number, its `id` when one could be read, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    pub line: usize,
    pub id: Option<Value>,
    pub message: String,
}

/// An object line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineObject {
    prompt: Option<String>,
    messages: Option<Vec<Message>>,
    model: Option<String>,
    id: Option<Value>,
    #[serde(default)]
    tags: Vec<String>,
    system: Option<String>,
    max_tokens: Option<u32>,
}

/// Every non-blank line of `text`, as a job or as the reason it is not one.
pub fn parse_jobs(text: &str, defaults: &Defaults) -> Vec<Result<Job, BadLine>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(i + 1, l, defaults))
        .collect()
}

fn parse_line(line: usize, text: &str, defaults: &Defaults) -> Result<Job, BadLine> {
    let bad = |id: Option<Value>, message: String| BadLine { line, id, message };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        bad(
            None,
            format!("line {line} is not JSON ({e}): write a JSON string or an object with \"prompt\" or \"messages\""),
        )
    })?;
    let obj = match value {
        Value::String(prompt) => LineObject {
            prompt: Some(prompt),
            messages: None,
            model: None,
            id: None,
            tags: Vec::new(),
            system: None,
            max_tokens: None,
        },
        Value::Object(_) => {
            // The id is worth echoing even when the rest of the line is wrong.
            let id = value.get("id").cloned().filter(is_scalar);
            serde_json::from_value(value).map_err(|e| bad(id, format!("line {line}: {e}")))?
        }
        _ => {
            return Err(bad(
                None,
                format!(
                    "line {line}: expected a JSON string or an object with \"prompt\" or \"messages\""
                ),
            ));
        }
    };
    let id = obj.id.clone();
    if let Some(v) = &id
        && !is_scalar(v)
    {
        return Err(bad(
            None,
            format!("line {line}: \"id\" must be a string or a number"),
        ));
    }
    let system = obj.system.or_else(|| defaults.system.clone());
    let mut messages = match (obj.prompt, obj.messages) {
        (Some(p), None) if !p.trim().is_empty() => vec![Message::user(p)],
        (None, Some(m)) if !m.is_empty() => m,
        (Some(_), Some(_)) => {
            return Err(bad(
                id,
                format!("line {line}: give \"prompt\" or \"messages\", not both"),
            ));
        }
        _ => {
            return Err(bad(
                id,
                format!(
                    "line {line}: the prompt is empty: give a non-empty \"prompt\" or \"messages\""
                ),
            ));
        }
    };
    if let Some(s) = system
        && !messages.iter().any(|m| m.role == Role::System)
    {
        messages.insert(0, Message::system(s));
    }
    let mut request = ChatRequest::new(messages);
    request.max_tokens = obj.max_tokens.or(defaults.max_tokens);
    request.no_cache = defaults.no_cache;
    let mut tags = defaults.tags.clone();
    tags.extend(obj.tags);
    request.tags = clean_tags(&tags);
    Ok(Job {
        line,
        id,
        model: obj.model.unwrap_or_else(|| defaults.model.clone()),
        request,
    })
}

fn is_scalar(v: &Value) -> bool {
    v.is_string() || v.is_number()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> Defaults {
        Defaults {
            model: "m".into(),
            tags: vec!["cli".into()],
            ..Defaults::default()
        }
    }

    #[test]
    fn strings_objects_and_messages_are_prompts() {
        let text = "\"plain\"\n\n{\"prompt\": \"p\", \"model\": \"x\", \"id\": 7, \"tags\": [\"t\"]}\n{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"system\": \"s\"}\n";
        let jobs = parse_jobs(text, &defaults());
        assert_eq!(jobs.len(), 3, "the blank line is skipped");
        let [a, b, c] = [&jobs[0], &jobs[1], &jobs[2]].map(|j| j.as_ref().unwrap());
        assert_eq!((a.line, a.model.as_str()), (1, "m"));
        assert_eq!(a.request.messages[0].content, "plain");
        assert_eq!(
            (b.line, b.model.as_str(), b.id.clone()),
            (3, "x", Some(json!(7)))
        );
        assert_eq!(b.request.tags, vec!["cli", "t"]);
        assert_eq!(c.line, 4);
        assert_eq!(c.request.messages[0].role, Role::System);
        assert_eq!(c.request.messages[1].content, "hi");
    }

    #[test]
    fn bad_lines_say_why_and_keep_their_id() {
        let text = "not json\n[1]\n{\"id\": \"a\", \"promt\": \"typo\"}\n{\"prompt\": \"\"}\n{\"prompt\": \"x\", \"id\": [1]}\n";
        let jobs = parse_jobs(text, &defaults());
        let bad: Vec<BadLine> = jobs.into_iter().map(|j| j.unwrap_err()).collect();
        assert!(bad[0].message.contains("not JSON"), "{:?}", bad[0]);
        assert!(bad[1].message.contains("expected a JSON string"));
        assert!(bad[2].message.contains("promt"), "{:?}", bad[2]);
        assert_eq!(bad[2].id, Some(json!("a")));
        assert!(bad[3].message.contains("empty"));
        assert!(bad[4].message.contains("\"id\""));
        assert_eq!(
            bad.iter().map(|b| b.line).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
    }
}
