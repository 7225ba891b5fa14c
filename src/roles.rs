//! Roles: a system prompt with its model and parameters, kept as a Markdown file
//! `<config dir>/llmux/roles/NAME.md`, as aichat keeps them. An optional YAML front matter
//! between `---` lines sets `model`, `temperature`, `top_p` and `max_tokens`; the body is the
//! prompt.
//!
//! ```markdown
//! ---
//! model: smart
//! temperature: 0.2
//! ---
//! You review Rust code. Point at the line, say why, suggest the fix.
//! ```
//!
//! The TUI's `/role NAME` and `llmux ask --role NAME` read them through [`load`]; errors name
//! the file, the line and what to do. Keys llmux does not use (aichat's `use_tools`, …) are
//! warnings, not errors. Nothing here knows about the terminal.

use std::path::{Path, PathBuf};

/// The folder under the config dir.
pub const ROLES_DIR: &str = "roles";
/// A role file's extension.
pub const ROLE_EXT: &str = "md";
/// Front matter keys llmux reads.
pub const KEYS: &[&str] = &["model", "temperature", "top_p", "max_tokens"];

/// A role, read from its file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Role {
    pub name: String,
    /// The model group (or alias) the role asks for.
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    /// The system prompt (the file's body, trimmed).
    pub prompt: String,
    /// Front matter keys that were ignored.
    pub warnings: Vec<String>,
}

/// Why a role could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoleError {
    #[error("no role {name:?} in {dir}: roles are {available} (a role is a file NAME.md there)")]
    NotFound {
        name: String,
        dir: String,
        available: String,
    },
    #[error("no config dir to find roles in (set $XDG_CONFIG_HOME or $HOME)")]
    NoDir,
    #[error("role {name:?}: a role name is letters, digits, '-', '_' and '.'")]
    BadName { name: String },
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}: front matter: {message}")]
    FrontMatter {
        path: String,
        line: usize,
        message: String,
    },
}

/// `<config dir>/llmux/roles`.
pub fn default_dir() -> Option<PathBuf> {
    crate::config::config_dir().map(|d| d.join(ROLES_DIR))
}

/// The role names in `dir` (files `NAME.md`), sorted; none when it does not exist.
pub fn list(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension().is_some_and(|x| x == ROLE_EXT))
                .then(|| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
                .flatten()
        })
        .collect();
    names.sort();
    names
}

/// Reads role `name` from `dir`.
pub fn load(dir: &Path, name: &str) -> Result<Role, RoleError> {
    let name = name.trim();
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(RoleError::BadName { name: name.into() });
    }
    let path = dir.join(format!("{name}.{ROLE_EXT}"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let have = list(dir);
            return Err(RoleError::NotFound {
                name: name.into(),
                dir: dir.display().to_string(),
                available: if have.is_empty() {
                    "none yet".into()
                } else {
                    have.join(", ")
                },
            });
        }
        Err(e) => {
            return Err(RoleError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            });
        }
    };
    parse(name, &text, &path.display().to_string())
}

/// A role from its file's text; `path` names it in errors.
pub fn parse(name: &str, text: &str, path: &str) -> Result<Role, RoleError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut role = Role {
        name: name.to_string(),
        ..Role::default()
    };
    let Some((front, body)) = split_front_matter(text) else {
        role.prompt = text.trim().to_string();
        return Ok(role);
    };
    let fm_err = |line: usize, message: String| RoleError::FrontMatter {
        path: path.to_string(),
        line,
        message,
    };
    // The front matter starts on the file's line 2 (after `---`).
    let value: serde_yaml::Value = serde_yaml::from_str(front).map_err(|e| {
        let line = e.location().map_or(2, |l| l.line() + 1);
        fm_err(line, e.to_string())
    })?;
    let map = match value {
        serde_yaml::Value::Mapping(m) => m,
        serde_yaml::Value::Null => serde_yaml::Mapping::new(),
        _ => return Err(fm_err(2, "expected `key: value` lines".into())),
    };
    let line_of = |key: &str| {
        front
            .lines()
            .position(|l| l.trim_start().starts_with(&format!("{key}:")))
            .map_or(2, |i| i + 2)
    };
    for (k, v) in map {
        let key = match &k {
            serde_yaml::Value::String(s) => s.clone(),
            other => format!("{other:?}"),
        };
        let bad = |want: &str| fm_err(line_of(&key), format!("{key} takes {want}, not {v:?}"));
        match key.as_str() {
            "model" => match &v {
                serde_yaml::Value::String(s) if !s.trim().is_empty() => {
                    role.model = Some(s.trim().to_string());
                }
                serde_yaml::Value::Null => {}
                _ => return Err(bad("a model group name")),
            },
            "temperature" => {
                role.temperature =
                    Some(number(&v, 0.0, 2.0).ok_or_else(|| bad("a number from 0 to 2"))?)
            }
            "top_p" => {
                role.top_p = Some(number(&v, 0.0, 1.0).ok_or_else(|| bad("a number from 0 to 1"))?)
            }
            "max_tokens" => {
                role.max_tokens = Some(
                    v.as_u64()
                        .filter(|n| *n > 0)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| bad("a whole number above 0"))?,
                );
            }
            _ => role.warnings.push(format!(
                "{path}:{}: {key} is not used by llmux (it reads {})",
                line_of(&key),
                KEYS.join(", ")
            )),
        }
    }
    role.prompt = body.trim().to_string();
    Ok(role)
}

fn number(v: &serde_yaml::Value, lo: f64, hi: f64) -> Option<f64> {
    v.as_f64().filter(|x| (lo..=hi).contains(x))
}

/// `(front matter, body)` when the text opens with a `---` line closed by another.
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some((&rest[..at], &rest[at + line.len()..]));
        }
        at += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_sets_model_and_parameters_and_the_body_is_the_prompt() {
        let r = parse(
            "coder",
            "---\nmodel: smart\ntemperature: 0.2\nmax_tokens: 300\nuse_tools: all\n---\nYou review code.\n",
            "coder.md",
        )
        .unwrap();
        assert_eq!(r.model.as_deref(), Some("smart"));
        assert_eq!(
            (r.temperature, r.max_tokens, r.top_p),
            (Some(0.2), Some(300), None)
        );
        assert_eq!(r.prompt, "You review code.");
        assert_eq!(r.warnings.len(), 1);
        assert!(
            r.warnings[0].contains("coder.md:5: use_tools"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn no_front_matter_is_all_prompt() {
        let r = parse("plain", "Be brief.\n---\nnot front matter\n", "p.md").unwrap();
        assert_eq!(r.prompt, "Be brief.\n---\nnot front matter");
        assert_eq!(r.model, None);
    }

    #[test]
    fn bad_values_name_the_file_and_line() {
        let e = parse("x", "---\nmodel: smart\ntemperature: hot\n---\nhi", "x.md").unwrap_err();
        assert_eq!(
            e.to_string().split(" takes").next(),
            Some("x.md:3: front matter: temperature")
        );
        let e = parse("x", "---\nmodel: [a\n---\nhi", "x.md").unwrap_err();
        assert!(matches!(e, RoleError::FrontMatter { .. }), "{e}");
    }
}
