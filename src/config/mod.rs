//! Configuration: LiteLLM's `config.yaml` read as it is, plus our `llmux:` section.
//!
//! `locate` decides which file (flag, `$LLMUX_CONFIG`, the config dir, else the built-in
//! demo); `load` parses it into the resolved types of `model`, reporting bad input as
//! `path:line:col: message` and unimplemented keys as one warning each.

mod hints;
mod load;
mod model;
mod positions;
mod providers;

use std::fmt;
use std::path::{Path, PathBuf};

pub use hints::closest;
pub use load::{AZURE_DEFAULT_API_VERSION, load_file, load_str, load_str_with_env};
pub use model::*;
pub use providers::{
    FAMILIES, ProviderFamily, Unresolved, is_litellm_provider, known_prefixes, resolve_model,
};

/// The built-in demo config: mock deployments only, no keys, no network.
pub const DEMO_CONFIG: &str = include_str!("demo.yaml");

/// The environment variable that names a config file.
pub const CONFIG_ENV: &str = "LLMUX_CONFIG";

/// A config that cannot be used, located in its file where possible. The loader reads on
/// past a bad value, so one error can carry the others it found (`also`, in file order): a
/// user fixes them in one go instead of one run of `llmux check` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, or `None` for text that did not come from a file.
    pub path: Option<PathBuf>,
    /// 1-based, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// Further errors in the same config, after this one.
    pub also: Vec<ConfigError>,
}

impl ConfigError {
    /// This error and the ones it carries, in file order.
    pub fn all(&self) -> impl Iterator<Item = &ConfigError> {
        std::iter::once(self).chain(self.also.iter())
    }

    /// One error of many, each located, the first carrying the rest; `None` for none.
    pub fn gather(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        errors.sort_by_key(|e| (e.line.unwrap_or(0), e.column.unwrap_or(0)));
        let mut rest = errors.into_iter();
        let mut first = rest.next()?;
        first.also.extend(rest);
        Some(first)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self
            .path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<config>".to_string());
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{path}:{l}:{c}: {}", self.message)?,
            (Some(l), None) => write!(f, "{path}:{l}: {}", self.message)?,
            _ => write!(f, "{path}: {}", self.message)?,
        }
        for more in &self.also {
            write!(f, "\n{more}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A warning about what is written at `path` (`llmux.keys.help`) of the config text `text`,
/// placed at its key (`at_key`) or its value: for findings made after loading, such as the
/// TUI's own checks of `llmux.keys` and `llmux.theme` that `llmux check` runs.
pub fn warning_at(text: &str, path: &str, at_key: bool, message: String) -> ConfigWarning {
    let index = positions::Positions::build(text);
    let at = if at_key {
        index.key(path)
    } else {
        index.value(path)
    };
    ConfigWarning {
        line: Some(at.line),
        column: Some(at.column),
        message,
    }
}

/// Where the config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Demo,
}

/// `--config PATH`, else `$LLMUX_CONFIG`, else `<config dir>/llmux/config.yaml` if it exists,
/// else the demo. A path given by flag or variable must exist (the loader says so if not).
pub fn locate(flag: Option<&Path>) -> ConfigSource {
    if let Some(p) = flag {
        return ConfigSource::File(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        return ConfigSource::File(PathBuf::from(p));
    }
    if let Some(p) = default_config_path().filter(|p| p.exists()) {
        return ConfigSource::File(p);
    }
    ConfigSource::Demo
}

/// `<config dir>/llmux/config.yaml` (XDG on Linux).
pub fn default_config_path() -> Option<PathBuf> {
    config_dir().map(|d| d.join("config.yaml"))
}

/// `<config dir>/llmux`.
pub fn config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "llmux").map(|p| p.config_dir().to_path_buf())
}

/// Overrides the data dir (tests, and users who keep state elsewhere).
pub const DATA_DIR_ENV: &str = "LLMUX_DATA_DIR";

/// `<data dir>/llmux` (or `$LLMUX_DATA_DIR`): sessions and the request log.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "llmux").map(|p| p.data_dir().to_path_buf())
}

/// Loads what `locate` found.
pub fn load(source: &ConfigSource) -> Result<Config, ConfigError> {
    match source {
        ConfigSource::File(p) => load_file(p),
        ConfigSource::Demo => demo(),
    }
}

/// The built-in demo config.
pub fn demo() -> Result<Config, ConfigError> {
    let mut cfg = load_str(DEMO_CONFIG, None)?;
    cfg.is_demo = true;
    Ok(cfg)
}
