//! `litellm_settings.callbacks`, `success_callback` and `failure_callback` → [`Callbacks`].
//!
//! LiteLLM names its loggers in these lists; llmux sends `otel` and `langfuse` (traces over
//! OTLP, see `telemetry`), takes `prometheus` as served already (`/metrics`), and warns once
//! for each other name. The variables the exporters read are taken here, through the
//! `environment_variables:` overlay as LiteLLM users set them, so that `llmux check` and the
//! tests see what a run would.

use serde_yaml::Value;

use super::values::{Ctx, EnvValue, untag};
use crate::config::positions::item;
use crate::config::{Callbacks, ConfigError, Reported};
use crate::secret::Secret;

/// The variables the OTLP exporters read (see `telemetry::settings`).
pub const TELEMETRY_VARS: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "OTEL_SDK_DISABLED",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_HOST",
    "LANGFUSE_OTEL_HOST",
];

/// Callback names llmux serves without a callback (`/metrics` is always on).
const SERVED: &[&str] = &["prometheus"];

/// Reads one of the three keys into `callbacks`; `key` says which outcomes it reports.
pub fn read(
    ctx: &mut Ctx,
    callbacks: &mut Callbacks,
    key: &str,
    v: &Value,
    path: &str,
) -> Result<(), ConfigError> {
    let reported = match key {
        "success_callback" => Reported {
            success: true,
            failure: false,
        },
        "failure_callback" => Reported {
            success: false,
            failure: true,
        },
        _ => Reported {
            success: true,
            failure: true,
        },
    };
    let names = ctx.string_list(v, path)?;
    let listed = matches!(untag(v), Value::Sequence(_));
    for (i, name) in names.iter().enumerate() {
        let at = if listed {
            item(path, i)
        } else {
            path.to_string()
        };
        let slot = match name.trim() {
            "otel" | "opentelemetry" => &mut callbacks.otel,
            "langfuse" | "langfuse_otel" => &mut callbacks.langfuse,
            n if SERVED.contains(&n) => continue,
            other => {
                let at = ctx.pos.value(&at);
                ctx.warn_at(
                    at,
                    format!("{path}: callback '{other}' is not implemented by llmux (it sends otel and langfuse); ignored"),
                );
                continue;
            }
        };
        let r = slot.get_or_insert_with(Reported::default);
        r.success |= reported.success;
        r.failure |= reported.failure;
        if callbacks.env.is_empty() {
            callbacks.env = variables(ctx);
        }
        if name.trim().starts_with("langfuse") && !has_langfuse_keys(callbacks) {
            let at = ctx.pos.value(&at);
            ctx.warn_at(
                at,
                format!("{path}: langfuse needs LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (in the environment or environment_variables:); nothing is sent to Langfuse"),
            );
        }
    }
    Ok(())
}

fn has_langfuse_keys(c: &Callbacks) -> bool {
    c.var("LANGFUSE_PUBLIC_KEY").is_some() && c.var("LANGFUSE_SECRET_KEY").is_some()
}

/// The exporters' variables that are set, overlay first.
fn variables(ctx: &Ctx) -> std::collections::BTreeMap<String, Secret> {
    TELEMETRY_VARS
        .iter()
        .filter_map(
            |name| match ctx.resolve_env(&format!("os.environ/{name}")) {
                EnvValue::Set(v) => Some((name.to_string(), Secret::new(v))),
                EnvValue::Missing(_) => None,
            },
        )
        .collect()
}
