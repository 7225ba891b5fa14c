//! The router settings that are tables rather than single values: `retry_policy`,
//! `model_group_retry_policy`, `allowed_fails_policy`, `default_litellm_params` and
//! `routing_strategy_args`, each read into its type of `config::model`, LiteLLM's key names
//! accepted as LiteLLM writes them. A key that names nothing llmux reads gives one warning.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml::Value;

use super::super::values::{Ctx, entries, untag};
use super::Names;
use crate::config::positions::child;
use crate::config::{AllowedFailsPolicy, ConfigError, RequestDefaults, RetryPolicy, RoutingArgs};

/// Request parameters `default_litellm_params` may set (by their OpenAI name), besides
/// `temperature` and `max_tokens`: each wire sends the ones it takes.
const DEFAULT_REQUEST_PARAMS: [&str; 10] = [
    "top_p",
    "top_k",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "user",
    "response_format",
    "logit_bias",
    "reasoning_effort",
];

/// The most latency samples `max_latency_list_size` may keep per deployment.
const MAX_LATENCY_SAMPLES: u32 = 1000;

/// `default_litellm_params` keys that LiteLLM's router sets or reads itself and that need no
/// effect here: `max_retries` (the router turns SDK retries off; llmux has none) and
/// `metadata` (LiteLLM's logging labels).
const DEFAULT_PARAMS_WITHOUT_EFFECT: [&str; 2] = ["max_retries", "metadata"];

/// Timeouts from `default_litellm_params`: LiteLLM's last resort, used only where
/// neither the deployment nor the router settings give one.
#[derive(Debug, Default)]
pub struct DefaultTimeouts {
    pub timeout: Option<Duration>,
    pub stream_timeout: Option<Duration>,
}

/// `{BadRequestErrorRetries: 0, ...}`.
pub fn retry_policy(ctx: &mut Ctx, v: &Value, path: &str) -> Result<RetryPolicy, ConfigError> {
    let mut policy = RetryPolicy::default();
    let Some(map) = ctx.mapping(v, path)? else {
        return Ok(policy);
    };
    for (key, v) in entries(map) {
        let p = child(path, &key);
        let slot = match key.as_str() {
            "BadRequestErrorRetries" => &mut policy.bad_request,
            "AuthenticationErrorRetries" => &mut policy.authentication,
            "TimeoutErrorRetries" => &mut policy.timeout,
            "RateLimitErrorRetries" => &mut policy.rate_limit,
            "ContentPolicyViolationErrorRetries" => &mut policy.content_policy,
            "InternalServerErrorRetries" => &mut policy.internal_server,
            "ServiceUnavailableErrorRetries" => &mut policy.service_unavailable,
            "NotFoundErrorRetries" => &mut policy.not_found,
            "DefaultRetries" => &mut policy.default,
            _ => {
                ctx.unimplemented(&p);
                continue;
            }
        };
        *slot = ctx.u32(v, &p)?;
    }
    Ok(policy)
}

/// `{group: {InternalServerErrorRetries: 4, ...}}`; a key that is no group (or alias of one)
/// is a warning, the rest is read.
pub fn model_group_retry_policy(
    ctx: &mut Ctx,
    v: &Value,
    path: &str,
    names: &Names,
) -> Result<BTreeMap<String, RetryPolicy>, ConfigError> {
    let mut out = BTreeMap::new();
    let Some(map) = ctx.mapping(v, path)? else {
        return Ok(out);
    };
    for (key, v) in entries(map) {
        let p = child(path, &key);
        let read = retry_policy(ctx, v, &p);
        let Some(policy) = ctx.recover(read) else {
            continue;
        };
        match names.group_of(&key) {
            Some(group) => {
                out.insert(group, policy);
            }
            None => {
                let at = ctx.pos.key(&p);
                ctx.warn_at(
                    at,
                    format!("{path}: '{key}' is not a model group in model_list; ignored"),
                );
            }
        }
    }
    Ok(out)
}

/// `{InternalServerErrorAllowedFails: 1, ...}`.
pub fn allowed_fails_policy(
    ctx: &mut Ctx,
    v: &Value,
    path: &str,
) -> Result<AllowedFailsPolicy, ConfigError> {
    let mut policy = AllowedFailsPolicy::default();
    let Some(map) = ctx.mapping(v, path)? else {
        return Ok(policy);
    };
    for (key, v) in entries(map) {
        let p = child(path, &key);
        let slot = match key.as_str() {
            "BadRequestErrorAllowedFails" => &mut policy.bad_request,
            "AuthenticationErrorAllowedFails" => &mut policy.authentication,
            "TimeoutErrorAllowedFails" => &mut policy.timeout,
            "RateLimitErrorAllowedFails" => &mut policy.rate_limit,
            "ContentPolicyViolationErrorAllowedFails" => &mut policy.content_policy,
            "InternalServerErrorAllowedFails" => &mut policy.internal_server,
            "ServiceUnavailableErrorAllowedFails" => &mut policy.service_unavailable,
            "BadGatewayErrorAllowedFails" => &mut policy.bad_gateway,
            "NotFoundErrorAllowedFails" => &mut policy.not_found,
            _ => {
                ctx.unimplemented(&p);
                continue;
            }
        };
        *slot = ctx.u32(v, &p)?;
    }
    Ok(policy)
}

/// `{temperature: 0.2, max_tokens: 512, timeout: 30, ...}`.
pub fn request_defaults(
    ctx: &mut Ctx,
    v: &Value,
    path: &str,
) -> Result<(RequestDefaults, DefaultTimeouts), ConfigError> {
    let mut defaults = RequestDefaults::default();
    let mut timeouts = DefaultTimeouts::default();
    let Some(map) = ctx.mapping(v, path)? else {
        return Ok((defaults, timeouts));
    };
    for (key, v) in entries(map) {
        let p = child(path, &key);
        let step = (|| -> Result<(), ConfigError> {
            match key.as_str() {
                "temperature" => defaults.temperature = ctx.non_negative(v, &p)?,
                "max_tokens" | "max_completion_tokens" => defaults.max_tokens = ctx.u32(v, &p)?,
                "timeout" | "request_timeout" => timeouts.timeout = ctx.seconds(v, &p)?,
                "stream_timeout" => timeouts.stream_timeout = ctx.seconds(v, &p)?,
                k if DEFAULT_PARAMS_WITHOUT_EFFECT.contains(&k) => {}
                k if DEFAULT_REQUEST_PARAMS.contains(&k) => {
                    if matches!(untag(v), Value::Null) {
                        return Ok(());
                    }
                    let json = serde_json::to_value(untag(v)).map_err(|e| {
                        ctx.error(
                            &p,
                            format!("{p} cannot be sent as a request parameter: {e}"),
                        )
                    })?;
                    defaults.extra.insert(key.clone(), json);
                }
                _ => ctx.unimplemented(&p),
            }
            Ok(())
        })();
        ctx.recover(step);
    }
    Ok((defaults, timeouts))
}

/// `{lowest_latency_buffer: 0.5, max_latency_list_size: 20, ttl: 600, ttft_percentile: 0.9}`.
pub fn routing_args(ctx: &mut Ctx, v: &Value, path: &str) -> Result<RoutingArgs, ConfigError> {
    let mut args = RoutingArgs::default();
    let Some(map) = ctx.mapping(v, path)? else {
        return Ok(args);
    };
    for (key, v) in entries(map) {
        let p = child(path, &key);
        let step = (|| -> Result<(), ConfigError> {
            match key.as_str() {
                "ttl" => {
                    if let Some(ttl) = ctx.seconds(v, &p)? {
                        args.ttl = ttl;
                    }
                }
                "lowest_latency_buffer" => {
                    if let Some(b) = ctx.non_negative(v, &p)? {
                        args.lowest_latency_buffer = b;
                    }
                }
                "max_latency_list_size" => {
                    if let Some(n) = ctx.u32(v, &p)? {
                        if !(1..=MAX_LATENCY_SAMPLES).contains(&n) {
                            return Err(ctx.error(
                                &p,
                                format!("{p} must be from 1 to {MAX_LATENCY_SAMPLES}, not {n}"),
                            ));
                        }
                        args.max_latency_list_size = usize::try_from(n).unwrap_or(usize::MAX);
                    }
                }
                "ttft_percentile" => {
                    if let Some(q) = ctx.number(v, &p)? {
                        if !(q > 0.0 && q <= 1.0) {
                            return Err(ctx
                                .error(&p, format!("{p} must be above 0 and at most 1, not {q}")));
                        }
                        args.ttft_percentile = Some(q);
                    }
                }
                _ => ctx.unimplemented(&p),
            }
            Ok(())
        })();
        ctx.recover(step);
    }
    Ok(args)
}
