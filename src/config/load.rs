//! The loader: a LiteLLM `config.yaml` (plus our `llmux:` section) → a validated [`Config`].
//!
//! Text enters through [`load_file`] / [`load_str`]; `serde_yaml` parses it (syntax errors
//! carry their line and column), `positions` indexes where each node is written, and the
//! section readers in `load/` turn values into the types of `config::model`. The result is a
//! [`Config`] with every deployment resolved and one [`ConfigWarning`] per key llmux reads
//! past, or the first [`ConfigError`], located as `path:line:col`. Environment variables are
//! read, never written: `environment_variables:` is an overlay consulted before the process
//! environment.

mod budget;
mod cache;
mod callbacks;
mod deployments;
mod settings;
mod values;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use self::settings::Names;
use self::values::{Ctx, EnvLookup, entries, untag};
use super::positions::{MAX_DEPTH, Pos, Positions, child, item};
use super::{
    AppSettings, Config, ConfigError, ConfigWarning, DEFAULT_MAX_ANSWER_BYTES,
    MIN_MAX_ANSWER_BYTES, MidStreamFailover,
};
use crate::secret::Secret;

pub use self::deployments::AZURE_DEFAULT_API_VERSION;

/// The top-level sections llmux reads; any other gets one warning.
const SECTIONS: &[&str] = &[
    "model_list",
    "litellm_settings",
    "router_settings",
    "general_settings",
    "environment_variables",
    "llmux",
];

/// Permission bits that let the file's group or everyone read it.
const READABLE_BY_OTHERS: u32 = 0o044;

/// Reads and loads a config file. A file that holds keys literally and that other users can
/// read gets a warning (at the first such key).
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: Some(path.to_path_buf()),
        line: None,
        column: None,
        message: format!("cannot read the config: {e}"),
        also: Vec::new(),
    })?;
    let (mut cfg, literal_secret) = load_text(&text, Some(path), &|name| std::env::var(name).ok())?;
    if let Some(at) = literal_secret
        && readable_by_others(path)
    {
        cfg.warnings.push(ConfigWarning {
            line: Some(at.line),
            column: Some(at.column),
            message: format!(
                "{} is readable by other users and holds literal API keys; chmod 600 it",
                path.display()
            ),
        });
        cfg.warnings
            .sort_by_key(|w| (w.line.unwrap_or(0), w.column.unwrap_or(0)));
    }
    Ok(cfg)
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & READABLE_BY_OTHERS != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> bool {
    false
}

/// Loads config text; `path` is where it came from (for messages and relative paths).
pub fn load_str(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    load_str_with_env(text, path, &|name| std::env::var(name).ok())
}

/// [`load_str`] with `env` standing in for the process environment (for tests and tools).
pub fn load_str_with_env(
    text: &str,
    path: Option<&Path>,
    env: EnvLookup,
) -> Result<Config, ConfigError> {
    load_text(text, path, env).map(|(cfg, _)| cfg)
}

/// The loader proper: the config, and where its first literal secret is written.
fn load_text(
    text: &str,
    path: Option<&Path>,
    env: EnvLookup,
) -> Result<(Config, Option<Pos>), ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut ctx = Ctx {
        pos: Positions::default(),
        file: path,
        overlay: BTreeMap::new(),
        env,
        warnings: Vec::new(),
        literal_secret: None,
        errors: Vec::new(),
    };
    ctx.pos = Positions::build(text);
    if let Some(at) = ctx.pos.too_deep {
        return Err(ctx.error_at(
            at,
            format!("invalid YAML: nested more than {MAX_DEPTH} levels deep"),
        ));
    }
    let mut root: Value =
        serde_yaml::from_str(text).map_err(|e| syntax_error(path, &e, &ctx.pos))?;
    root.apply_merge()
        .map_err(|e| ctx.error_at(Pos::START, format!("bad `<<` merge: {e}")))?;
    let root = match untag(&root) {
        Value::Null => {
            return Err(ctx.error_at(
                Pos::START,
                "the config is empty; it needs at least a model_list",
            ));
        }
        Value::Mapping(m) => m,
        _ => {
            return Err(ctx.error_at(
                Pos::START,
                "the config must be a mapping of sections (model_list, router_settings, ...)",
            ));
        }
    };
    let read = sections(&mut ctx, root);
    // Every error found, in file order: those read past and the one that ended the reading.
    let mut errors = std::mem::take(&mut ctx.errors);
    if let Err(fatal) = &read {
        errors.push(fatal.clone());
    }
    if let Some(all) = ConfigError::gather(errors) {
        return Err(all);
    }
    let mut cfg = read?;
    cfg.source = path.map(Path::to_path_buf);
    // File order reads best in `llmux check`.
    ctx.warnings
        .sort_by_key(|w| (w.line.unwrap_or(0), w.column.unwrap_or(0)));
    cfg.warnings = ctx.warnings;
    Ok((cfg, ctx.literal_secret))
}

/// `serde_yaml`'s message without its own " at line L column C", which we print up front.
/// Where serde_yaml's own position is vague (a duplicate key: the mapping; a second
/// document: none), the position index knows better.
fn syntax_error(path: Option<&Path>, e: &serde_yaml::Error, pos: &Positions) -> ConfigError {
    let mut message = e.to_string();
    let location = e.location();
    let mut at = location.as_ref().map(|l| Pos {
        line: l.line(),
        column: l.column(),
    });
    if let Some(loc) = &location {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(i) = message.find(&suffix) {
            message.replace_range(i..i + suffix.len(), "");
        }
    }
    if message.contains("duplicate entry") {
        at = pos.duplicate_key.or(at);
    } else if message.contains("more than one document") {
        at = pos.second_document.or(at);
    }
    ConfigError {
        path: path.map(Path::to_path_buf),
        line: at.map(|p| p.line),
        column: at.map(|p| p.column),
        message: format!("invalid YAML: {message}"),
        also: Vec::new(),
    }
}

fn sections(ctx: &mut Ctx, root: &Mapping) -> Result<Config, ConfigError> {
    for (key, _) in entries(root) {
        if !SECTIONS.contains(&key.as_str()) {
            ctx.unimplemented(&key);
        }
    }
    if let Some(v) = root.get("environment_variables") {
        let overlay = environment_variables(ctx, v);
        ctx.overlay = ctx.recover(overlay).unwrap_or_default();
    }
    let list = deployments::model_list(ctx, root.get("model_list"))?;
    let mut deployments = list.deployments;
    let mut groups: Vec<String> = Vec::new();
    for d in &deployments {
        if !groups.contains(&d.group) {
            groups.push(d.group.clone());
        }
    }
    let (router, app) = {
        // Groups whose entries failed still count as groups here: a fallback to one is not
        // a second error.
        let mut known = groups.clone();
        known.extend(list.unread_groups);
        let mut names = Names {
            groups: &known,
            ids: deployments
                .iter()
                .map(|d| d.id.as_str())
                .chain(list.unread_ids.iter().map(String::as_str))
                .collect::<HashSet<_>>(),
            aliases: BTreeMap::new(),
        };
        let router = settings::router_settings(
            ctx,
            root.get("litellm_settings"),
            root.get("router_settings"),
            &mut names,
        );
        let router = ctx.recover(router).unwrap_or_default();
        let app = match root.get("llmux") {
            Some(v) => {
                let app = app_settings(ctx, v, &names);
                ctx.recover(app).unwrap_or_default()
            }
            None => AppSettings::default(),
        };
        (router, app)
    };
    budget::check_providers(ctx, &router.provider_budgets, &deployments);
    // A deployment's own drop_params wins over litellm_settings'.
    for d in &mut deployments {
        d.drop_params.get_or_insert(router.drop_params);
    }
    let master_key = match root.get("general_settings") {
        Some(v) => {
            let key = general_settings(ctx, v);
            ctx.recover(key).flatten()
        }
        None => None,
    };
    Ok(Config {
        source: None,
        is_demo: false,
        deployments,
        groups,
        router,
        app,
        master_key,
        warnings: Vec::new(),
    })
}

/// `environment_variables: {NAME: value}`: scalars only, kept as text.
fn environment_variables(
    ctx: &mut Ctx,
    v: &Value,
) -> Result<BTreeMap<String, String>, ConfigError> {
    const PATH: &str = "environment_variables";
    let mut out = BTreeMap::new();
    let Some(map) = ctx.mapping(v, PATH)? else {
        return Ok(out);
    };
    for (name, value) in entries(map) {
        // A bad one is reported and the others are still read.
        let read = ctx.string(value, &child(PATH, &name));
        if let Some(text) = ctx.recover(read).flatten() {
            out.insert(name, text);
        }
    }
    Ok(out)
}

/// `general_settings`: only `master_key` is ours.
fn general_settings(ctx: &mut Ctx, v: &Value) -> Result<Option<Secret>, ConfigError> {
    const PATH: &str = "general_settings";
    let Some(map) = ctx.mapping(v, PATH)? else {
        return Ok(None);
    };
    let mut key = None;
    for (name, value) in entries(map) {
        let path = child(PATH, &name);
        if name == "master_key" {
            ctx.note_secret(value, &path);
            key = ctx.setting_string(value, &path)?.map(Secret::new);
            // A blank key would be a key anyone can send (or, trimmed away, no key at all):
            // never a silent choice.
            if key.as_ref().is_some_and(|k| k.expose().trim().is_empty()) {
                return Err(ctx.error(
                    &path,
                    format!(
                        "{path} is empty or only whitespace: set a real key (or os.environ/VAR naming one), or remove the setting to serve without a key"
                    ),
                ));
            }
        } else {
            ctx.unimplemented(&path);
        }
    }
    Ok(key)
}

/// Our own `llmux:` section.
fn app_settings(ctx: &mut Ctx, v: &Value, names: &Names) -> Result<AppSettings, ConfigError> {
    const PATH: &str = "llmux";
    let mut app = AppSettings::default();
    let Some(map) = ctx.mapping(v, PATH)? else {
        return Ok(app);
    };
    for (name, value) in entries(map) {
        let path = child(PATH, &name);
        // A bad value is reported and the next key read: every error in one report.
        let step = (|| -> Result<(), ConfigError> {
            match name.as_str() {
                "default_model" => {
                    if let Some(m) = ctx.string(value, &path)? {
                        if names.group_of(&m).is_none() {
                            return Err(ctx.error(
                                &path,
                                format!("{path}: '{m}' is not a model group in model_list"),
                            ));
                        }
                        app.default_model = Some(m);
                    }
                }
                "favorites" => app.favorites = favorites(ctx, value, &path, names)?,
                "theme" => app.theme = ctx.string(value, &path)?,
                "mid_stream_failover" => {
                    if let Some(m) = ctx.string(value, &path)? {
                        app.mid_stream_failover = match m.trim() {
                            "continue" => MidStreamFailover::Continue,
                            "restart" => MidStreamFailover::Restart,
                            "off" | "false" => MidStreamFailover::Off,
                            other => {
                                return Err(ctx.error(
                                &path,
                                format!(
                                    "{path}: unknown value '{other}'; valid ones: continue, restart, off"
                                ),
                            ));
                            }
                        };
                    }
                }
                "pricing_file" => {
                    app.pricing_file = ctx
                        .string(value, &path)?
                        .map(|p| relative_to_config(ctx.file, &p));
                }
                "keys" => {
                    if let Some(keys) = ctx.mapping(value, &path)? {
                        for (action, key) in entries(keys) {
                            if let Some(k) = ctx.string(key, &child(&path, &action))? {
                                app.keys.insert(action, k);
                            }
                        }
                    }
                }
                "mouse" => app.mouse = ctx.bool(value, &path)?.unwrap_or(app.mouse),
                "budget" => app.budget = budget::app_budget(ctx, value, &path)?,
                "max_answer_bytes" => {
                    if let Some(n) = ctx.u64(value, &path)? {
                        let n = usize::try_from(n).unwrap_or(usize::MAX);
                        if n < MIN_MAX_ANSWER_BYTES {
                            return Err(ctx.error(
                                &path,
                                format!(
                                    "{path} must be at least {MIN_MAX_ANSWER_BYTES} bytes, not {n} (the default is {DEFAULT_MAX_ANSWER_BYTES})"
                                ),
                            ));
                        }
                        app.max_answer_bytes = Some(n);
                    }
                }
                _ => {
                    let at = ctx.pos.key(&path);
                    ctx.warn_at(at, format!("{path} is not a known llmux setting; ignored"));
                }
            }
            Ok(())
        })();
        ctx.recover(step);
    }
    Ok(app)
}

/// Favourites that name no group are dropped with a warning: they only decorate the picker.
fn favorites(
    ctx: &mut Ctx,
    v: &Value,
    path: &str,
    names: &Names,
) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (i, name) in ctx.string_list(v, path)?.into_iter().enumerate() {
        if names.group_of(&name).is_some() {
            out.push(name);
        } else {
            let p = if matches!(untag(v), Value::Sequence(_)) {
                item(path, i)
            } else {
                path.to_string()
            };
            ctx.warn(
                &p,
                format!("{path}: '{name}' is not a model group in model_list; ignored"),
            );
        }
    }
    Ok(out)
}

/// `~/x` → home; a relative path → next to the config file (as written when there is none).
fn relative_to_config(file: Option<&Path>, written: &str) -> PathBuf {
    if let Some(rest) = written.strip_prefix("~/")
        && let Some(home) = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf())
    {
        return home.join(rest);
    }
    let p = PathBuf::from(written);
    match file.and_then(Path::parent) {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    }
}
