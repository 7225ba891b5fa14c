//! `litellm_settings` and `router_settings` → [`RouterSettings`].
//!
//! Both sections are read key by key in file order, `litellm_settings` first, so that a key in
//! `router_settings` overrides the same setting from `litellm_settings` (as LiteLLM documents).
//! Fallback chains and aliases are checked against the model groups and deployment ids that
//! `model_list` defined; a name that matches nothing is an error at its position. Keys llmux
//! does not implement give one warning each. The settings that are tables (retry and
//! allowed-fails policies, request defaults, strategy arguments) are read by `policies`.

use std::collections::{BTreeMap, HashSet};

use serde_yaml::{Mapping, Value};

mod policies;

use super::cache::{CacheParts, cache_settings};
use super::values::{Ctx, describe, entries, untag};
use crate::config::positions::{child, item};
use crate::config::{ConfigError, RedisSettings, RouterSettings, Strategy};
use crate::secret::Secret;
use policies::DefaultTimeouts;

/// Redis's default port, for `redis_host` given without `redis_port`.
const DEFAULT_REDIS_PORT: u16 = 6379;

/// The fallback key LiteLLM uses for "every other group".
const ANY_GROUP: &str = "*";

/// What `routing_strategy` accepts, for the error message.
const STRATEGIES: &str = "simple-shuffle, least-busy, usage-based-routing, usage-based-routing-v2, \
                          latency-based-routing, cost-based-routing";

/// The names a fallback or alias may point at.
pub struct Names<'n> {
    pub groups: &'n [String],
    pub ids: HashSet<&'n str>,
    /// alias → group, filled from `model_group_alias` before any fallback is read.
    pub aliases: BTreeMap<String, String>,
}

impl Names<'_> {
    fn is_group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g == name)
    }

    /// A group, an alias of one, or a deployment id (LiteLLM allows each as a fallback).
    pub fn is_target(&self, name: &str) -> bool {
        self.is_group(name) || self.aliases.contains_key(name) || self.ids.contains(name)
    }

    /// A group or alias, resolved to the group.
    pub fn group_of(&self, name: &str) -> Option<String> {
        if self.is_group(name) {
            return Some(name.to_string());
        }
        self.aliases.get(name).cloned()
    }
}

/// What the two sections wrote that a later step needs to know.
#[derive(Default)]
struct Written {
    timeout: bool,
    stream_timeout: bool,
    /// `default_litellm_params`' timeouts, applied where nothing else sets one.
    defaults: DefaultTimeouts,
}

#[derive(Default)]
struct RedisParts {
    host: Option<String>,
    port: Option<u16>,
    password: Option<String>,
    url: Option<String>,
    /// Where the first redis key was written, for the warning about an incomplete set.
    first_path: Option<String>,
}

/// Layers `router_settings` over `litellm_settings` over the defaults.
pub fn router_settings(
    ctx: &mut Ctx,
    litellm: Option<&Value>,
    router: Option<&Value>,
    names: &mut Names,
) -> Result<RouterSettings, ConfigError> {
    let mut rs = RouterSettings::default();
    let litellm = section(ctx, litellm, "litellm_settings");
    let router = section(ctx, router, "router_settings");
    // Aliases first: fallbacks may name them.
    if let Some(v) = router.and_then(|r| r.get("model_group_alias")) {
        let read = aliases(ctx, v, "router_settings.model_group_alias", names);
        names.aliases = ctx.recover(read).unwrap_or_default();
        rs.model_group_alias = names.aliases.clone();
    }
    let mut parts = Parts::default();
    if let Some(map) = litellm {
        apply(ctx, &mut rs, "litellm_settings", map, names, &mut parts)?;
    }
    if let Some(map) = router {
        apply(ctx, &mut rs, "router_settings", map, names, &mut parts)?;
    }
    let Parts {
        redis,
        cache,
        written,
    } = parts;
    // LiteLLM reads `default_litellm_params`' timeouts last, after the router's own.
    if let (false, Some(t)) = (written.timeout, written.defaults.timeout) {
        rs.timeout = t;
    }
    if !written.stream_timeout {
        rs.stream_timeout = rs.stream_timeout.or(written.defaults.stream_timeout);
    }
    rs.redis = redis_settings(ctx, redis);
    rs.cache = cache_settings(ctx, cache, rs.redis.as_ref())?;
    Ok(rs)
}

/// A settings section as a mapping; one that is not is an error, and the other section is
/// still read.
fn section<'v>(ctx: &mut Ctx, v: Option<&'v Value>, name: &str) -> Option<&'v Mapping> {
    let read = ctx.mapping(v?, name);
    ctx.recover(read).flatten()
}

/// What `apply` gathers across both sections for the steps after them.
#[derive(Default)]
struct Parts {
    redis: RedisParts,
    cache: CacheParts,
    written: Written,
}

fn apply(
    ctx: &mut Ctx,
    rs: &mut RouterSettings,
    section: &str,
    map: &Mapping,
    names: &Names,
    parts: &mut Parts,
) -> Result<(), ConfigError> {
    let Parts {
        redis,
        cache,
        written,
    } = parts;
    let is_router = section == "router_settings";
    for (key, v) in entries(map) {
        let path = child(section, &key);
        // A bad value is reported and the next key read: every error in one report.
        let step = (|| -> Result<(), ConfigError> {
            match (key.as_str(), is_router) {
                ("num_retries", _) => set(&mut rs.num_retries, ctx.u32(v, &path)?),
                ("allowed_fails", _) => {
                    if let Some(n) = ctx.u32(v, &path)? {
                        rs.allowed_fails = n;
                        rs.allowed_fails_set = true;
                    }
                }
                ("cooldown_time", _) => set(&mut rs.cooldown_time, ctx.seconds(v, &path)?),
                ("request_timeout", false) | ("timeout", true) => {
                    let t = ctx.seconds(v, &path)?;
                    written.timeout |= t.is_some();
                    set(&mut rs.timeout, t)
                }
                ("drop_params", false) => set(&mut rs.drop_params, ctx.bool(v, &path)?),
                ("fallbacks", _) => {
                    let parsed = parse_fallbacks(ctx, v, &path, names)?;
                    rs.fallbacks = parsed.chains;
                    if let Some(d) = parsed.default {
                        rs.default_fallbacks = d;
                    }
                }
                ("context_window_fallbacks", _) => {
                    rs.context_window_fallbacks = typed_fallbacks(ctx, v, &path, names)?;
                }
                ("content_policy_fallbacks", _) => {
                    rs.content_policy_fallbacks = typed_fallbacks(ctx, v, &path, names)?;
                }
                ("default_fallbacks", _) => rs.default_fallbacks = chain(ctx, v, &path, names)?,
                ("routing_strategy", true) => {
                    if let Some(s) = ctx.string(v, &path)? {
                        rs.strategy = Strategy::parse(s.trim()).ok_or_else(|| {
                            ctx.error(
                                &path,
                                format!("{path}: unknown strategy '{s}'; valid ones: {STRATEGIES}"),
                            )
                        })?;
                    }
                }
                ("retry_policy", true) => rs.retry_policy = policies::retry_policy(ctx, v, &path)?,
                ("model_group_retry_policy", true) => {
                    rs.model_group_retry_policy =
                        policies::model_group_retry_policy(ctx, v, &path, names)?;
                }
                ("allowed_fails_policy", true) => {
                    rs.allowed_fails_policy = Some(policies::allowed_fails_policy(ctx, v, &path)?);
                }
                ("disable_cooldowns", true) => set(&mut rs.disable_cooldowns, ctx.bool(v, &path)?),
                ("default_litellm_params", true) => {
                    let (defaults, timeouts) = policies::request_defaults(ctx, v, &path)?;
                    rs.request_defaults = defaults;
                    written.defaults = timeouts;
                }
                ("routing_strategy_args", true) => {
                    rs.routing_args = policies::routing_args(ctx, v, &path)?;
                }
                ("stream_timeout", true) => {
                    rs.stream_timeout = ctx.seconds(v, &path)?;
                    written.stream_timeout = true;
                }
                ("retry_after", true) => set(&mut rs.retry_after, ctx.seconds(v, &path)?),
                ("max_fallbacks", true) => {
                    if let Some(n) = ctx.u32(v, &path)? {
                        rs.max_fallbacks = usize::try_from(n).unwrap_or(usize::MAX);
                    }
                }
                ("enable_pre_call_checks", true) => {
                    set(&mut rs.enable_pre_call_checks, ctx.bool(v, &path)?)
                }
                ("provider_budget_config", true) => {
                    rs.provider_budgets = super::budget::provider_budgets(ctx, v, &path)?;
                }
                // Read before the loop.
                ("model_group_alias", true) => {}
                // The response cache, resolved once both sections are read (`load::cache`).
                ("cache", false) => cache.enabled = ctx.bool(v, &path)?,
                ("cache_params", false) => cache.params = Some(v.clone()),
                ("cache_responses", true) => cache.responses = ctx.bool(v, &path)?,
                ("callbacks" | "success_callback" | "failure_callback", false) => {
                    super::callbacks::read(ctx, &mut rs.callbacks, &key, v, &path)?;
                }
                ("redis_host" | "redis_port" | "redis_password" | "redis_url", true) => {
                    redis.first_path.get_or_insert_with(|| path.clone());
                    if matches!(key.as_str(), "redis_password" | "redis_url") {
                        ctx.note_secret(v, &path);
                    }
                    match key.as_str() {
                        "redis_host" => redis.host = ctx.setting_string(v, &path)?,
                        "redis_port" => {
                            redis.port = ctx
                                .whole(v, &path, u64::from(u16::MAX))?
                                .and_then(|p| u16::try_from(p).ok());
                        }
                        "redis_password" => redis.password = ctx.setting_string(v, &path)?,
                        _ => redis.url = ctx.setting_string(v, &path)?,
                    }
                }
                _ => ctx.unimplemented(&path),
            }
            Ok(())
        })();
        ctx.recover(step);
    }
    Ok(())
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// `redis_url`, or `redis_host` (+ port, password): shared state across instances.
fn redis_settings(ctx: &mut Ctx, r: RedisParts) -> Option<RedisSettings> {
    if r.host.is_none() && r.url.is_none() {
        if let Some(path) = r.first_path {
            ctx.warn(
                &path,
                "router_settings has redis settings but no usable redis_host or redis_url; redis is not used",
            );
        }
        return None;
    }
    Some(RedisSettings {
        host: r.host.unwrap_or_default(),
        port: r.port.unwrap_or(DEFAULT_REDIS_PORT),
        password: r.password.map(Secret::new),
        url: r.url.map(Secret::new),
    })
}

/// `{alias: group}` or `{alias: {model: group, hidden: true}}`.
fn aliases(
    ctx: &mut Ctx,
    v: &Value,
    path: &str,
    names: &Names,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    let Some(map) = ctx.mapping(v, path)? else {
        return Ok(out);
    };
    for (alias, v) in entries(map) {
        let read = alias_target(ctx, &alias, v, path, names);
        // A bad alias is still an alias: where it is named later is not a second error (the
        // load fails on the first one anyway).
        let target = ctx.recover(read).unwrap_or_default();
        out.insert(alias, target);
    }
    Ok(out)
}

/// The group one `model_group_alias` entry names.
fn alias_target(
    ctx: &mut Ctx,
    alias: &str,
    v: &Value,
    path: &str,
    names: &Names,
) -> Result<String, ConfigError> {
    let p = child(path, alias);
    let (target, target_path) = match untag(v) {
        Value::Mapping(m) => {
            for (key, _) in entries(m) {
                // `hidden` only affects LiteLLM's /models listing: accepted, no effect.
                if key != "model" && key != "hidden" {
                    ctx.unimplemented(&child(&p, &key));
                }
            }
            let mp = child(&p, "model");
            let t = match m.get("model") {
                Some(t) => ctx.string(t, &mp)?,
                None => None,
            };
            (t, mp)
        }
        _ => (ctx.string(v, &p)?, p.clone()),
    };
    let Some(target) = target else {
        return Err(ctx.error(&p, format!("{p} names no model group")));
    };
    if !names.is_group(&target) {
        return Err(ctx.error(
            &target_path,
            format!("{p}: '{target}' is not a model group in model_list"),
        ));
    }
    Ok(target)
}

/// A list of fallback names, each checked: `[smart, local]` (a single name is a list of one).
fn chain(ctx: &mut Ctx, v: &Value, path: &str, names: &Names) -> Result<Vec<String>, ConfigError> {
    let list = ctx.string_list(v, path)?;
    for (i, name) in list.iter().enumerate() {
        if !names.is_target(name) {
            let p = if matches!(untag(v), Value::Sequence(_)) {
                item(path, i)
            } else {
                path.to_string()
            };
            return Err(ctx.error(
                &p,
                format!("{path}: '{name}' is not a model group or deployment id in model_list"),
            ));
        }
    }
    Ok(list)
}

/// The two ways users write fallbacks, read into chains per group.
struct Parsed {
    chains: BTreeMap<String, Vec<String>>,
    /// The `*` entry, or a plain list of names (one chain for every group).
    default: Option<Vec<String>>,
}

/// `[{fast: [smart, local]}, ...]`; also a plain `[smart, local]`, read as one chain.
fn parse_fallbacks(
    ctx: &mut Ctx,
    v: &Value,
    path: &str,
    names: &Names,
) -> Result<Parsed, ConfigError> {
    let mut parsed = Parsed {
        chains: BTreeMap::new(),
        default: None,
    };
    let one_map = [v.clone()];
    let items: &[Value] = match untag(v) {
        Value::Null => &[],
        Value::Sequence(items) => items,
        // `{fast: [smart]}` without the list around it.
        Value::Mapping(_) => &one_map,
        other => {
            return Err(ctx.error(
                path,
                format!(
                    "{path} must be a list like [{{group: [fallback, ...]}}], not {}",
                    describe(other)
                ),
            ));
        }
    };
    let is_list = matches!(untag(v), Value::Sequence(_));
    let mut plain = Vec::new();
    for (i, entry) in items.iter().enumerate() {
        let ip = if is_list {
            item(path, i)
        } else {
            path.to_string()
        };
        match untag(entry) {
            Value::Mapping(m) => {
                for (key, targets) in entries(m) {
                    let kp = child(&ip, &key);
                    let list = chain(ctx, targets, &kp, names)?;
                    if key == ANY_GROUP {
                        parsed.default.get_or_insert_with(Vec::new).extend(list);
                        continue;
                    }
                    let Some(group) = names.group_of(&key) else {
                        return Err(ctx.error_key(
                            &kp,
                            format!("{path}: '{key}' is not a model group in model_list"),
                        ));
                    };
                    parsed.chains.entry(group).or_default().extend(list);
                }
            }
            Value::String(_) | Value::Number(_) => {
                let list = chain(ctx, entry, &ip, names)?;
                plain.extend(list);
            }
            other => {
                return Err(ctx.error(
                    &ip,
                    format!(
                        "{ip} must be a mapping like {{group: [fallback, ...]}}, not {}",
                        describe(other)
                    ),
                ));
            }
        }
    }
    if !plain.is_empty() {
        ctx.warn(
            path,
            format!(
                "{path} is a plain list of model groups; read as one fallback chain [{}] for \
                 every group; write [{{group: [fallback, ...]}}] to be explicit",
                plain.join(", ")
            ),
        );
        parsed.default.get_or_insert_with(Vec::new).extend(plain);
    }
    Ok(parsed)
}

/// `context_window_fallbacks` / `content_policy_fallbacks`: these have no default slot, so a
/// plain list or `*` entry becomes the chain of every group that has none of its own.
fn typed_fallbacks(
    ctx: &mut Ctx,
    v: &Value,
    path: &str,
    names: &Names,
) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    let parsed = parse_fallbacks(ctx, v, path, names)?;
    let mut chains = parsed.chains;
    if let Some(default) = parsed.default {
        for group in names.groups {
            let chain: Vec<String> = default.iter().filter(|n| *n != group).cloned().collect();
            if !chain.is_empty() {
                chains.entry(group.clone()).or_insert(chain);
            }
        }
    }
    Ok(chains)
}
