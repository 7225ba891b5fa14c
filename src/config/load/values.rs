//! The loader's working state and its typed readers.
//!
//! [`Ctx`] holds what every section parser needs: the position index, the file path for error
//! messages, the `environment_variables:` overlay and the environment lookup, and the warnings
//! found so far. Its readers take a `serde_yaml::Value` and the value's path and return the
//! typed value, accepting what LiteLLM accepts (numbers written as strings, `os.environ/VAR`),
//! or a [`ConfigError`] that points at the offending value.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use crate::config::hints;
use crate::config::positions::{Pos, Positions};
use crate::config::{ConfigError, ConfigWarning};

/// How a config value names an environment variable (LiteLLM's spelling).
pub const ENV_PREFIX: &str = "os.environ/";

/// How much of a bad string value an error message quotes.
const QUOTE_MAX_CHARS: usize = 40;

/// Looks a variable up in the process environment (or a test's stand-in).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A string value after `os.environ/` resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Set(String),
    /// The named variable is unset or empty.
    Missing(String),
}

pub struct Ctx<'a> {
    pub pos: Positions,
    pub file: Option<&'a Path>,
    /// `environment_variables:` from the config, consulted before the process environment.
    pub overlay: BTreeMap<String, String>,
    pub env: EnvLookup<'a>,
    pub warnings: Vec<ConfigWarning>,
    /// Where the first secret written out in the file is (a key that is not an
    /// `os.environ/` reference, or one that the file's own `environment_variables:` fills).
    pub literal_secret: Option<Pos>,
    /// Errors read past so far (the loader goes on with the next key or entry).
    pub errors: Vec<ConfigError>,
}

impl<'a> Ctx<'a> {
    pub fn error_at(&self, at: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: self.file.map(Path::to_path_buf),
            line: Some(at.line),
            column: Some(at.column),
            message: message.into(),
            also: Vec::new(),
        }
    }

    /// The value of a step that may fail; a failure is kept for the report and reading goes
    /// on without the value.
    pub fn recover<T>(&mut self, step: Result<T, ConfigError>) -> Option<T> {
        step.map_err(|e| self.errors.push(e)).ok()
    }

    /// An error about the value at `path`.
    pub fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        self.error_at(self.pos.value(path), message)
    }

    /// An error about the key at `path` (a missing or misplaced entry).
    pub fn error_key(&self, path: &str, message: impl Into<String>) -> ConfigError {
        self.error_at(self.pos.key(path), message)
    }

    pub fn warn_at(&mut self, at: Pos, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            line: Some(at.line),
            column: Some(at.column),
            message: message.into(),
        });
    }

    /// A warning about the value at `path`.
    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        let at = self.pos.value(path);
        self.warn_at(at, message);
    }

    /// The one warning for a key llmux reads past; a key LiteLLM users often write in the
    /// wrong place says where it belongs instead.
    pub fn unimplemented(&mut self, path: &str) {
        let at = self.pos.key(path);
        let message = match hints::misplaced(path) {
            Some(hint) => format!("{path} is ignored: {hint}"),
            None => format!("{path} is not implemented by llmux; ignored"),
        };
        self.warn_at(at, message);
    }

    /// Notes the secret at `path` if the file holds it literally (for the warning about
    /// files readable by others).
    pub fn note_secret(&mut self, v: &Value, path: &str) {
        let Some(text) = untag(v).as_str().map(str::trim) else {
            return;
        };
        let literal = match text.strip_prefix(ENV_PREFIX) {
            Some(var) => self.overlay.contains_key(var.trim()),
            None => !text.is_empty(),
        };
        if literal && self.literal_secret.is_none() {
            self.literal_secret = Some(self.pos.value(path));
        }
    }

    /// `os.environ/VAR` → the variable's value (overlay first); any other string as is.
    pub fn resolve_env(&self, text: &str) -> EnvValue {
        let Some(var) = text.strip_prefix(ENV_PREFIX) else {
            return EnvValue::Set(text.to_string());
        };
        let var = var.trim();
        let value = self
            .overlay
            .get(var)
            .cloned()
            .or_else(|| (self.env)(var))
            .filter(|v| !v.is_empty());
        match value {
            Some(v) => EnvValue::Set(v),
            None => EnvValue::Missing(var.to_string()),
        }
    }

    /// A string as written (numbers and booleans are taken as their text); null is `None`.
    pub fn string(&self, v: &Value, path: &str) -> Result<Option<String>, ConfigError> {
        match untag(v) {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            other => Err(self.error(
                path,
                format!("{path} must be a string, not {}", describe(other)),
            )),
        }
    }

    /// A string with `os.environ/VAR` resolved.
    pub fn env_string(&self, v: &Value, path: &str) -> Result<Option<EnvValue>, ConfigError> {
        Ok(self.string(v, path)?.map(|s| self.resolve_env(&s)))
    }

    /// An `os.environ/VAR` string for a setting: a missing variable is a warning and `None`.
    pub fn setting_string(&mut self, v: &Value, path: &str) -> Result<Option<String>, ConfigError> {
        match self.env_string(v, path)? {
            None => Ok(None),
            Some(EnvValue::Set(s)) => Ok(Some(s)),
            Some(EnvValue::Missing(var)) => {
                self.warn(
                    path,
                    format!("environment variable {var} is not set; {path} is ignored"),
                );
                Ok(None)
            }
        }
    }

    /// A number, also written as a string (`"500"`) or `os.environ/VAR` (missing: a warning
    /// and `None`). Null is `None`.
    pub fn number(&mut self, v: &Value, path: &str) -> Result<Option<f64>, ConfigError> {
        let text = match untag(v) {
            Value::Null => return Ok(None),
            Value::Number(n) => {
                return match n.as_f64().filter(|f| f.is_finite()) {
                    Some(f) => Ok(Some(f)),
                    None => Err(self.error(path, format!("{path} must be a finite number"))),
                };
            }
            Value::String(s) => s.clone(),
            other => {
                return Err(self.error(
                    path,
                    format!("{path} must be a number, not {}", describe(other)),
                ));
            }
        };
        let written = text.trim();
        let text = match self.resolve_env(written) {
            EnvValue::Set(s) => s,
            EnvValue::Missing(var) => {
                self.warn(
                    path,
                    format!("environment variable {var} is not set; {path} is ignored"),
                );
                return Ok(None);
            }
        };
        match text.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Some(f)),
            // A variable's value is never quoted: it might be a key.
            _ if written.starts_with(ENV_PREFIX) => Err(self.error(
                path,
                format!("{path} must be a number, and {written} does not hold one"),
            )),
            _ => Err(self.error(
                path,
                format!("{path} must be a number, not {}", quote(&text)),
            )),
        }
    }

    /// A whole number in `0..=max`.
    pub fn whole(&mut self, v: &Value, path: &str, max: u64) -> Result<Option<u64>, ConfigError> {
        // Exact for integers too big for an f64 mantissa.
        if let Value::Number(n) = untag(v)
            && let Some(u) = n.as_u64()
        {
            return self.in_range(u, path, max).map(Some);
        }
        let Some(f) = self.number(v, path)? else {
            return Ok(None);
        };
        if f < 0.0 || f.fract() != 0.0 || f > max as f64 {
            return Err(self.error(
                path,
                format!("{path} must be a whole number from 0 to {max}, not {f}"),
            ));
        }
        // In range and integral, so the conversion is exact.
        Ok(Some(f as u64))
    }

    fn in_range(&self, u: u64, path: &str, max: u64) -> Result<u64, ConfigError> {
        if u > max {
            return Err(self.error(
                path,
                format!("{path} must be a whole number from 0 to {max}, not {u}"),
            ));
        }
        Ok(u)
    }

    pub fn u32(&mut self, v: &Value, path: &str) -> Result<Option<u32>, ConfigError> {
        let n = self.whole(v, path, u64::from(u32::MAX))?;
        Ok(n.and_then(|n| u32::try_from(n).ok()))
    }

    pub fn u64(&mut self, v: &Value, path: &str) -> Result<Option<u64>, ConfigError> {
        self.whole(v, path, u64::MAX)
    }

    /// A number that must not be negative.
    pub fn non_negative(&mut self, v: &Value, path: &str) -> Result<Option<f64>, ConfigError> {
        match self.number(v, path)? {
            Some(f) if f < 0.0 => {
                Err(self.error(path, format!("{path} must not be negative, not {f}")))
            }
            other => Ok(other),
        }
    }

    /// Seconds, whole or fractional.
    pub fn seconds(&mut self, v: &Value, path: &str) -> Result<Option<Duration>, ConfigError> {
        let Some(f) = self.non_negative(v, path)? else {
            return Ok(None);
        };
        Duration::try_from_secs_f64(f)
            .map(Some)
            .map_err(|_| self.error(path, format!("{path} is too large a number of seconds")))
    }

    /// A boolean; `"true"`, `"yes"`, `"on"`, `1` and their opposites are accepted too.
    pub fn bool(&mut self, v: &Value, path: &str) -> Result<Option<bool>, ConfigError> {
        let text = match untag(v) {
            Value::Null => return Ok(None),
            Value::Bool(b) => return Ok(Some(*b)),
            Value::Number(n) => n.to_string(),
            Value::String(s) if s.trim().starts_with(ENV_PREFIX) => {
                match self.resolve_env(s.trim()) {
                    // Checked below without quoting the variable's value.
                    EnvValue::Set(resolved) => {
                        return match parse_bool(&resolved) {
                            Some(b) => Ok(Some(b)),
                            None => Err(self.error(
                                path,
                                format!(
                                    "{path} must be true or false, and {} does not hold one",
                                    s.trim()
                                ),
                            )),
                        };
                    }
                    EnvValue::Missing(var) => {
                        self.warn(
                            path,
                            format!("environment variable {var} is not set; {path} is ignored"),
                        );
                        return Ok(None);
                    }
                }
            }
            Value::String(s) => s.clone(),
            other => {
                return Err(self.error(
                    path,
                    format!("{path} must be true or false, not {}", describe(other)),
                ));
            }
        };
        match parse_bool(&text) {
            Some(b) => Ok(Some(b)),
            None => Err(self.error(
                path,
                format!("{path} must be true or false, not {}", quote(&text)),
            )),
        }
    }

    /// A list of strings; a single string is a list of one. Null is empty.
    pub fn string_list(&self, v: &Value, path: &str) -> Result<Vec<String>, ConfigError> {
        match untag(v) {
            Value::Null => Ok(Vec::new()),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    self.string(item, &crate::config::positions::item(path, i))
                        .transpose()
                })
                .collect(),
            other => Ok(self.string(other, path)?.into_iter().collect()),
        }
    }

    /// A mapping (null counts as an empty one).
    pub fn mapping<'v>(
        &self,
        v: &'v Value,
        path: &str,
    ) -> Result<Option<&'v Mapping>, ConfigError> {
        match untag(v) {
            Value::Null => Ok(None),
            Value::Mapping(m) => Ok(Some(m)),
            other => Err(self.error(
                path,
                format!(
                    "{path} must be a mapping of keys to values, not {}",
                    describe(other)
                ),
            )),
        }
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The value under a custom tag (`!foo value`), or the value itself.
pub fn untag(mut v: &Value) -> &Value {
    while let Value::Tagged(t) = v {
        v = &t.value;
    }
    v
}

/// A mapping key as text; `None` for a list or mapping used as a key.
pub fn key_text(k: &Value) -> Option<String> {
    match untag(k) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".to_string()),
        _ => None,
    }
}

/// The entries of a mapping with their keys as text, in file order.
pub fn entries(m: &Mapping) -> impl Iterator<Item = (String, &Value)> {
    m.iter()
        .map(|(k, v)| (key_text(k).unwrap_or_else(|| "?".to_string()), v))
}

/// What a value is, for "must be X, not Y" messages. A string is not quoted: where a
/// mapping was expected it may well be a key written in the wrong place.
pub fn describe(v: &Value) -> String {
    match untag(v) {
        Value::Null => "empty".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(_) => "a tagged value".to_string(),
    }
}

/// `"text"`, cut short when long.
pub fn quote(s: &str) -> String {
    if s.chars().count() > QUOTE_MAX_CHARS {
        let cut: String = s.chars().take(QUOTE_MAX_CHARS).collect();
        format!("\"{cut}…\"")
    } else {
        format!("\"{s}\"")
    }
}
