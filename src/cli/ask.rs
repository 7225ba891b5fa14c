//! `llmux ask`: one request through the router, for scripts and pipes. The answer streams to
//! stdout; `-v` prints each routing event to stderr; `--json` prints one object at the end.
//!
//! Model output is untrusted: on a terminal the answer is escaped unless `--raw`
//! ([`escape_answer`]); a pipe gets it byte for byte. Diagnostics on stderr (routing events,
//! error messages, which can quote an upstream's error body) are always escaped, and `--json`
//! writes the escape-worthy characters as `\u` escapes, so neither can drive a terminal.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, load_config};
use crate::errln;
use crate::provider::{ChatRequest, Message};
use crate::router::{ChatEvent, ChatOutcome, RouteError, RouteErrorKind, Router};
use crate::sanitize::{escape_controls, to_safe_json};

#[derive(Debug, clap::Args)]
pub struct AskArgs {
    /// Model group or alias (default: llmux.default_model, else the first group).
    #[arg(short, long)]
    pub model: Option<String>,
    /// Print only one JSON object, at the end: text, model, deployment, attempts, timings, tokens, cost.
    #[arg(long)]
    pub json: bool,
    /// Print every routing event to stderr as it happens.
    #[arg(short, long)]
    pub verbose: bool,
    /// Write the model's output unchanged even to a terminal (escape sequences included).
    #[arg(long)]
    pub raw: bool,
    /// A system prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// Use the role `<config dir>/llmux/roles/NAME.md`: its prompt, model and parameters
    /// (`-m`, `--system` and `--max-tokens` win over the role's).
    #[arg(long, value_name = "NAME", conflicts_with = "batch")]
    pub role: Option<String>,
    /// Cap on output tokens.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Label the request for `llmux stats --by tag` (repeatable; `a,b` gives two).
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip the response cache for this request (neither read nor written).
    #[arg(long)]
    pub no_cache: bool,
    /// Run every line of this JSONL file (`-` for stdin) as a request, writing one JSON result
    /// line each, in input order (see docs/commands.md, Batch).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["prompt", "json", "raw"])]
    pub batch: Option<PathBuf>,
    /// With --batch: requests in flight at once (default 4).
    #[arg(long, value_name = "N", requires = "batch", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,
    /// With --batch: write the results to this file instead of stdout.
    #[arg(long, value_name = "FILE", requires = "batch")]
    pub out: Option<PathBuf>,
    /// The prompt; read from stdin when absent.
    pub prompt: Vec<String>,
}

pub async fn run(config: Option<&Path>, args: AskArgs) -> u8 {
    if let Some(input) = &args.batch {
        return super::batch::run(config, &args, input).await;
    }
    let prompt = match read_prompt(&args) {
        Ok(p) => p,
        Err(msg) => {
            errln!("llmux ask: {msg}");
            return EXIT_USAGE;
        }
    };
    let role = match &args.role {
        None => None,
        Some(name) => {
            let found = match crate::roles::default_dir() {
                Some(dir) => crate::roles::load(&dir, name),
                None => Err(crate::roles::RoleError::NoDir),
            };
            match found {
                Ok(r) => {
                    for w in &r.warnings {
                        errln!("llmux ask: {w}");
                    }
                    Some(r)
                }
                Err(e) => {
                    errln!("llmux ask: {e}");
                    return EXIT_USAGE;
                }
            }
        }
    };
    let cfg = match load_config(config, args.verbose) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let model = args
        .model
        .clone()
        .or_else(|| role.as_ref().and_then(|r| r.model.clone()))
        .or_else(|| cfg.app.default_model.clone())
        .or_else(|| cfg.groups.first().cloned())
        .unwrap_or_default();
    let router = match super::build_router(cfg, 0) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let code = answer(&router, &model, prompt, &args, role.as_ref()).await;
    // The log is written by a thread of its own, which the process's exit would cut short:
    // what this request logged is on disk (and its trace sent) before `ask` returns.
    router.close().await;
    code
}

/// Runs the request, writing the answer (or the `--json` object) to stdout; returns the
/// exit code.
async fn answer(
    router: &Router,
    model: &str,
    prompt: String,
    args: &AskArgs,
    role: Option<&crate::roles::Role>,
) -> u8 {
    let mut messages = Vec::new();
    let role_prompt = role.map(|r| r.prompt.clone()).filter(|p| !p.is_empty());
    if let Some(system) = args.system.clone().or(role_prompt) {
        messages.push(Message::system(system));
    }
    messages.push(Message::user(prompt));
    let mut request = ChatRequest::new(messages);
    request.max_tokens = args.max_tokens.or(role.and_then(|r| r.max_tokens));
    if let Some(r) = role {
        request.temperature = r.temperature;
        if let Some(n) = r.top_p.and_then(serde_json::Number::from_f64) {
            request.extra.insert("top_p".into(), n.into());
        }
    }
    request.tags = clean_tags(&args.tags);
    request.no_cache = args.no_cache;
    let tags = request.tags.clone();

    let escape = escape_answer(args.raw, std::io::stdout().is_terminal());
    let mut stdout = std::io::stdout().lock();
    let mut stream = router.chat(model, request);
    let mut printed_any = false;
    let mut result = None;
    while let Some(event) = stream.next_event().await {
        match event {
            ChatEvent::Route(ev) => {
                // Budget warnings are said even without -v: they are rare and matter.
                let budget = matches!(ev.kind, crate::router::RouteEventKind::Budget { .. });
                if args.verbose || budget {
                    errln!("[{:>6} ms] {}", ev.elapsed_ms, ev.describe());
                }
            }
            ChatEvent::Delta(text) if !args.json => {
                let shown = if escape {
                    escape_controls(&text)
                } else {
                    text.as_str().into()
                };
                let _ = stdout.write_all(shown.as_bytes());
                let _ = stdout.flush();
                printed_any = true;
            }
            ChatEvent::Restart if !args.json && printed_any => {
                let _ = writeln!(stdout);
                errln!(
                    "llmux: the stream broke; the answer starts over (mid_stream_failover: restart)"
                );
            }
            ChatEvent::Delta(_)
            | ChatEvent::Reasoning(_)
            | ChatEvent::ToolCall(_)
            | ChatEvent::Passthrough(_)
            | ChatEvent::Usage(_)
            | ChatEvent::Restart => {}
            ChatEvent::Finished(r) => {
                result = Some(*r);
                break;
            }
        }
    }
    let Some(result) = result else {
        errln!("llmux ask: the request ended without an outcome");
        return EXIT_FAILED;
    };
    match result {
        Ok(outcome) => {
            if args.json {
                let _ = writeln!(
                    stdout,
                    "{}",
                    to_safe_json(&outcome_json(model, &tags, &outcome))
                );
            } else if printed_any && !outcome.text.ends_with('\n') {
                let _ = writeln!(stdout);
            }
            EXIT_OK
        }
        Err(err) => {
            if args.json {
                let _ = writeln!(stdout, "{}", to_safe_json(&error_json(model, &err)));
            } else {
                if printed_any {
                    let _ = writeln!(stdout);
                }
                errln!("llmux ask: {}", err.message);
            }
            if err.kind == RouteErrorKind::UnknownModel {
                EXIT_USAGE
            } else {
                EXIT_FAILED
            }
        }
    }
}

/// Whether the answer is escaped on its way to stdout: on a terminal, unless `--raw`; a pipe
/// or a file gets the bytes as they came.
pub fn escape_answer(raw: bool, stdout_is_terminal: bool) -> bool {
    !raw && stdout_is_terminal
}

fn read_prompt(args: &AskArgs) -> Result<String, String> {
    if !args.prompt.is_empty() {
        return Ok(args.prompt.join(" "));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(
            "no prompt: give one as an argument (llmux ask \"...\") or pipe it on stdin"
                .to_string(),
        );
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the prompt from stdin: {e}"))?;
    if text.trim().is_empty() {
        return Err("the prompt on stdin is empty".to_string());
    }
    Ok(text)
}

/// Tags as given, trimmed, without empty ones or repeats (`--tag a, --tag a,b`).
pub fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    out
}

/// The `--json` object of a successful request: `tags` as sent, `tool_calls` only when the
/// model made some.
pub fn outcome_json(requested: &str, tags: &[String], o: &ChatOutcome) -> serde_json::Value {
    let mut v = json!({
        "text": o.text,
        "reasoning": if o.reasoning.is_empty() { None } else { Some(&o.reasoning) },
        "requested": requested,
        "model": o.group,
        "deployment": o.deployment,
        "attempts": o.attempts,
        "ttft_ms": o.ttft.map(|t| t.as_millis() as u64),
        "total_ms": o.total.as_millis() as u64,
        "input_tokens": o.usage.input,
        "output_tokens": o.usage.output,
        "cached_input_tokens": o.usage.cached_input,
        "reasoning_tokens": o.usage.reasoning,
        "usage_estimated": o.usage.estimated,
        "cost_usd": o.cost,
        "finish_reason": o.finish_reason,
        "retried": o.retried,
        "fell_back": o.fell_back,
        "continued": o.continued,
        "cached": o.cached,
        "tags": tags,
    });
    if !o.tool_calls.is_empty() {
        v["tool_calls"] = json!(o.tool_calls);
    }
    v
}

/// The `--json` object when every route failed.
pub fn error_json(requested: &str, e: &RouteError) -> serde_json::Value {
    json!({
        "error": e.message,
        "kind": e.kind,
        "requested": requested,
        "attempts": e.attempts,
        "retry_in_ms": e.retry_in.map(|d| d.as_millis() as u64),
        "partial_text": e.partial_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_escaped_only_on_a_terminal_without_raw() {
        assert!(escape_answer(false, true));
        assert!(!escape_answer(true, true), "--raw on a terminal");
        assert!(!escape_answer(false, false), "a pipe");
        assert!(!escape_answer(true, false));
    }

    #[test]
    fn tags_are_trimmed_and_deduplicated() {
        let given = ["a".to_string(), " b ".into(), String::new(), "a".into()];
        assert_eq!(clean_tags(&given), vec!["a", "b"]);
    }
}
