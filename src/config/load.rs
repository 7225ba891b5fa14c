//! Stub: replaced by the loader.
use std::path::Path;

use super::{Config, ConfigError};

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    Err(ConfigError {
        path: Some(path.to_path_buf()),
        line: None,
        column: None,
        message: "not implemented".into(),
    })
}

pub fn load_str(_text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    Err(ConfigError {
        path: path.map(Path::to_path_buf),
        line: None,
        column: None,
        message: "not implemented".into(),
    })
}
