//! `litellm_settings.cache` / `cache_params` (and `router_settings.cache_responses`) →
//! [`CacheSettings`].
//!
//! `settings` hands over what it met while reading the two sections ([`CacheParts`]); once
//! both are read, [`cache_settings`] decides whether there is a cache, of which type, where its
//! Redis is (the `cache_params` keys, else `router_settings.redis_*`, else `REDIS_URL` /
//! `REDIS_HOST` as LiteLLM reads them), and for how long answers are kept. What llmux does not
//! implement gets one warning each; a cache that cannot work as written is a warning and an
//! in-memory cache or none, never a failure.

use serde_yaml::Value;

use super::values::{Ctx, EnvValue, entries};
use crate::config::positions::child;
use crate::config::{CacheBackend, CacheSettings, ConfigError, DEFAULT_CACHE_TTL, RedisSettings};
use crate::secret::Secret;

/// Redis's default port, for a cache `host` given without `port`.
const DEFAULT_REDIS_PORT: u16 = 6379;
/// Where `cache_params` is written.
const PARAMS: &str = "litellm_settings.cache_params";
/// The `supported_call_types` that mean chat completions (the only calls llmux makes).
const CHAT_CALL_TYPES: &[&str] = &["completion", "acompletion"];
/// The LiteLLM cache types llmux stands in for with its in-memory cache.
const OTHER_TYPES: &[&str] = &[
    "redis-semantic",
    "valkey-semantic",
    "qdrant-semantic",
    "s3",
    "gcs",
    "disk",
    "azure-blob",
];

/// What the two settings sections said about the cache, collected in file order.
#[derive(Debug, Default)]
pub struct CacheParts {
    /// `litellm_settings.cache`.
    pub enabled: Option<bool>,
    /// `router_settings.cache_responses`.
    pub responses: Option<bool>,
    /// `litellm_settings.cache_params`.
    pub params: Option<Value>,
}

/// The cache the config asks for, given the router's own Redis settings.
pub fn cache_settings(
    ctx: &mut Ctx,
    parts: CacheParts,
    router_redis: Option<&RedisSettings>,
) -> Result<Option<CacheSettings>, ConfigError> {
    let on = parts.enabled == Some(true) || parts.responses == Some(true);
    let Some(params) = &parts.params else {
        return Ok(on.then(|| CacheSettings {
            backend: default_backend(ctx, None, router_redis),
            ttl: DEFAULT_CACHE_TTL,
            namespace: None,
        }));
    };
    let p = read_params(ctx, params)?;
    if !on {
        ctx.warn(
            PARAMS,
            "cache_params is set but litellm_settings.cache is not true; no response cache",
        );
        return Ok(None);
    }
    if p.default_off {
        ctx.warn(
            &child(PARAMS, "mode"),
            "cache_params.mode: default_off needs a per-request opt-in, which llmux has not; \
             no response cache",
        );
        return Ok(None);
    }
    if let Some(types) = &p.call_types
        && !types.iter().any(|t| CHAT_CALL_TYPES.contains(&t.as_str()))
    {
        ctx.warn(
            &child(PARAMS, "supported_call_types"),
            "cache_params.supported_call_types does not list acompletion; chat answers are not \
             cached",
        );
        return Ok(None);
    }
    let explicit = p.redis(ctx);
    let backend = match p.kind.as_deref() {
        None => default_backend(ctx, explicit, router_redis),
        Some("local") => CacheBackend::Local,
        Some("redis") => match explicit
            .or_else(|| router_redis.cloned())
            .or_else(|| env_redis(ctx))
        {
            Some(r) => CacheBackend::Redis(r),
            None => {
                ctx.warn(
                    &child(PARAMS, "type"),
                    "cache_params.type is redis but no Redis is given (cache_params.host or url, \
                     router_settings.redis_host, or REDIS_HOST / REDIS_URL); using the in-memory \
                     cache",
                );
                CacheBackend::Local
            }
        },
        Some(other) => {
            let why = if OTHER_TYPES.contains(&other) {
                format!("cache_params.type {other} is not implemented by llmux")
            } else {
                format!("cache_params.type {other} is not a cache type llmux knows")
            };
            ctx.warn(
                &child(PARAMS, "type"),
                format!("{why}; using the in-memory cache (type: local)"),
            );
            CacheBackend::Local
        }
    };
    let per_type = match backend {
        CacheBackend::Local => p.memory_ttl,
        CacheBackend::Redis(_) => p.redis_ttl,
    };
    let ttl = p.ttl.or(per_type).unwrap_or(DEFAULT_CACHE_TTL);
    if ttl.is_zero() {
        ctx.warn(
            &child(PARAMS, "ttl"),
            "cache_params.ttl is 0, which keeps nothing; no response cache",
        );
        return Ok(None);
    }
    Ok(Some(CacheSettings {
        backend,
        ttl,
        namespace: p.namespace,
    }))
}

/// No `type`: Redis when one is known (as LiteLLM's proxy defaults to Redis), else memory.
fn default_backend(
    ctx: &Ctx,
    explicit: Option<RedisSettings>,
    router_redis: Option<&RedisSettings>,
) -> CacheBackend {
    explicit
        .or_else(|| router_redis.cloned())
        .or_else(|| env_redis(ctx))
        .map_or(CacheBackend::Local, CacheBackend::Redis)
}

/// `REDIS_URL`, or `REDIS_HOST` (+ `REDIS_PORT`, `REDIS_PASSWORD`): where LiteLLM looks when
/// the config names no Redis.
fn env_redis(ctx: &Ctx) -> Option<RedisSettings> {
    let var = |name: &str| env_var(ctx, name);
    if let Some(url) = var("REDIS_URL") {
        return Some(RedisSettings {
            host: String::new(),
            port: DEFAULT_REDIS_PORT,
            password: None,
            url: Some(Secret::new(url)),
        });
    }
    let host = var("REDIS_HOST")?;
    Some(RedisSettings {
        host,
        port: var("REDIS_PORT")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(DEFAULT_REDIS_PORT),
        password: var("REDIS_PASSWORD").map(Secret::new),
        url: None,
    })
}

/// `cache_params`, key by key.
#[derive(Debug, Default)]
struct Params {
    kind: Option<String>,
    ttl: Option<std::time::Duration>,
    memory_ttl: Option<std::time::Duration>,
    redis_ttl: Option<std::time::Duration>,
    namespace: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    password: Option<String>,
    url: Option<String>,
    call_types: Option<Vec<String>>,
    default_off: bool,
}

impl Params {
    /// The Redis `cache_params` names itself, if any; a port or password it leaves out comes
    /// from `REDIS_PORT` / `REDIS_PASSWORD`, as in LiteLLM.
    fn redis(&self, ctx: &Ctx) -> Option<RedisSettings> {
        if self.host.is_none() && self.url.is_none() {
            return None;
        }
        Some(RedisSettings {
            host: self.host.clone().unwrap_or_default(),
            port: self
                .port
                .or_else(|| env_var(ctx, "REDIS_PORT").and_then(|p| p.trim().parse().ok()))
                .unwrap_or(DEFAULT_REDIS_PORT),
            password: self
                .password
                .clone()
                .or_else(|| env_var(ctx, "REDIS_PASSWORD"))
                .map(Secret::new),
            url: self.url.clone().map(Secret::new),
        })
    }
}

/// A variable from `environment_variables:` or the environment; unset or empty is `None`.
fn env_var(ctx: &Ctx, name: &str) -> Option<String> {
    match ctx.resolve_env(&format!("os.environ/{name}")) {
        EnvValue::Set(v) => Some(v),
        EnvValue::Missing(_) => None,
    }
}

fn read_params(ctx: &mut Ctx, v: &Value) -> Result<Params, ConfigError> {
    let mut p = Params::default();
    let Some(map) = ctx.mapping(v, PARAMS)? else {
        return Ok(p);
    };
    for (key, v) in entries(map) {
        let path = child(PARAMS, &key);
        match key.as_str() {
            "type" => p.kind = ctx.string(v, &path)?.map(|s| s.trim().to_ascii_lowercase()),
            "ttl" => p.ttl = ctx.seconds(v, &path)?,
            "default_in_memory_ttl" => p.memory_ttl = ctx.seconds(v, &path)?,
            "default_in_redis_ttl" => p.redis_ttl = ctx.seconds(v, &path)?,
            "namespace" => p.namespace = ctx.string(v, &path)?.filter(|s| !s.is_empty()),
            "host" => p.host = ctx.setting_string(v, &path)?,
            "port" => {
                p.port = ctx
                    .whole(v, &path, u64::from(u16::MAX))?
                    .and_then(|n| u16::try_from(n).ok());
            }
            "password" | "url" | "redis_url" => {
                ctx.note_secret(v, &path);
                let value = ctx.setting_string(v, &path)?;
                if key == "password" {
                    p.password = value;
                } else {
                    p.url = value;
                }
            }
            "supported_call_types" => p.call_types = Some(ctx.string_list(v, &path)?),
            "mode" => {
                let mode = ctx.string(v, &path)?.unwrap_or_default();
                match mode.trim() {
                    "default_off" => p.default_off = true,
                    "default_on" | "" => {}
                    other => {
                        return Err(ctx.error(
                            &path,
                            format!("{path}: '{other}' is neither default_on nor default_off"),
                        ));
                    }
                }
            }
            _ => ctx.unimplemented(&path),
        }
    }
    Ok(p)
}
