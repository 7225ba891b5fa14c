//! The README and docs/ stay true: every relative link resolves (the file, and the heading an
//! anchor names), and every `llmux …` command they show parses with the real command line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use clap::error::ErrorKind;
use llmux::cli::Cli;

/// README.md and every Markdown file under docs/.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    let mut under_docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    under_docs.sort();
    docs.extend(under_docs);
    docs
}

/// The text outside fenced code blocks, line by line (links in code are not links).
fn prose_lines(text: &str) -> Vec<&str> {
    let mut in_fence = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
                return false;
            }
            !in_fence
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> HashSet<String> {
    prose_lines(text)
        .into_iter()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|h| slug(h.trim_start_matches('#')))
        .collect()
}

/// The targets of `[text](target)` links in the prose.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                targets.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    targets
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(file)
            };
            if !file.exists() {
                broken.push(format!("{}: {target} (no such file)", doc.display()));
                continue;
            }
            if !anchor.is_empty() && file.extension().is_some_and(|e| e == "md") {
                let heads = anchors(&std::fs::read_to_string(&file).unwrap());
                if !heads.contains(anchor) {
                    broken.push(format!("{}: {target} (no such heading)", doc.display()));
                }
            }
        }
    }
    assert!(
        checked > 10,
        "only {checked} links found: is the scan broken?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Splits a shell line into words: quotes group, a `#` word starts a comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, '#') if !in_word => break,
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// A command a document shows: its words, and whether it is only named in prose (inline code
/// such as `llmux monitor` or `llmux ask --batch` may leave out required values).
struct Shown {
    words: Vec<String>,
    mention: bool,
}

/// The `llmux …` command lines a document shows: lines of shell code blocks (after a pipe,
/// past `VAR=value` prefixes, `cargo run --release --` standing for `llmux`), and inline code
/// that is a whole command (no `[OPTIONS]`-style placeholders).
fn shown_commands(text: &str) -> Vec<Shown> {
    let mut commands = Vec::new();
    let mut in_shell = false;
    for line in text.lines() {
        let fence = line.trim_start();
        if let Some(lang) = fence.strip_prefix("```") {
            in_shell = !in_shell && matches!(lang.trim(), "sh" | "bash" | "shell");
            continue;
        }
        let candidates: Vec<String> = if in_shell {
            let tail = line.rsplit('|').next().unwrap_or(line);
            vec![tail.to_string()]
        } else {
            line.split('`')
                .skip(1)
                .step_by(2)
                .filter(|code| !code.contains(['[', '<', '…', '|']))
                .map(str::to_string)
                .collect()
        };
        for candidate in candidates {
            let mut words = shell_words(&candidate);
            let start = words.iter().position(|w| !w.contains('='));
            words.drain(..start.unwrap_or(words.len()));
            if words.starts_with(&["cargo".into(), "run".into(), "--release".into()]) {
                let Some(dashes) = words.iter().position(|w| w == "--") else {
                    continue; // `cargo run --release` alone: the TUI
                };
                words.splice(..=dashes, ["llmux".to_string()]);
            }
            if words.first().is_some_and(|w| w == "llmux") && words.len() > 1 {
                commands.push(Shown {
                    words,
                    mention: !in_shell,
                });
            }
        }
    }
    commands
}

#[test]
fn every_llmux_command_shown_in_the_readme_and_docs_parses() {
    let mut refused = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for Shown { words, mention } in shown_commands(&text) {
            checked += 1;
            if let Err(e) = Cli::try_parse_from(&words) {
                let incomplete = e.kind() == ErrorKind::MissingRequiredArgument
                    || e.to_string().contains("a value is required");
                if mention && incomplete {
                    continue;
                }
                let first = e.to_string().lines().next().unwrap_or_default().to_string();
                refused.push(format!("{}: {} → {first}", doc.display(), words.join(" ")));
            }
        }
    }
    assert!(
        checked > 10,
        "only {checked} commands found: is the scan broken?"
    );
    assert!(
        refused.is_empty(),
        "commands that do not parse:\n{}",
        refused.join("\n")
    );
}

#[test]
fn the_shell_splitter_and_the_command_scan_read_what_a_reader_would_type() {
    assert_eq!(
        shell_words(r#"llmux monitor --key "$K" --theme light   # a comment"#),
        ["llmux", "monitor", "--key", "$K", "--theme", "light"]
    );
    let doc = "```sh\nFOO=1 llmux ask -m fast hi\necho hi | cargo run --release -- ask --json\n```\n\
               run `llmux stats --by tag` or `llmux ask [-m MODEL]`\n";
    let shown: Vec<String> = shown_commands(doc)
        .iter()
        .map(|s| s.words.join(" "))
        .collect();
    assert_eq!(
        shown,
        [
            "llmux ask -m fast hi",
            "llmux ask --json",
            "llmux stats --by tag"
        ]
    );
    assert_eq!(
        slug("Health pings: `llmux check --ping`"),
        "health-pings-llmux-check---ping"
    );
}
