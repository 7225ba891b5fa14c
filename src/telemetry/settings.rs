//! Where traces go: the config's callbacks (`otel`, `langfuse`) and the standard variables
//! (`OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME`, `LANGFUSE_*`), read as the config loader
//! found them (`environment_variables:` first) → one [`Destination`] per exporter.
//!
//! `otel` follows the OTLP exporter specification: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is the
//! URL as is, `OTEL_EXPORTER_OTLP_ENDPOINT` a base that `/v1/traces` is added to (HTTP), the
//! default is the local collector (`http://localhost:4318`, gRPC `:4317`); headers come from
//! `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS` (`k=v,k2=v2`, values percent-decoded). `langfuse`
//! sends to `<LANGFUSE_OTEL_HOST or LANGFUSE_HOST>/api/public/otel/v1/traces` with Basic auth
//! from the two keys, as LiteLLM does; the generic OTLP headers are not sent to it.

use std::time::Duration;

use crate::config::{Config, Reported};
use crate::secret::Secret;

/// Langfuse's cloud, when `LANGFUSE_HOST` is unset (the Langfuse SDK's default).
pub const LANGFUSE_DEFAULT_HOST: &str = "https://cloud.langfuse.com";
/// Langfuse's OTLP traces path under its host.
pub const LANGFUSE_TRACES_PATH: &str = "/api/public/otel/v1/traces";
/// Selects Langfuse's current ingestion of OTLP spans (as LiteLLM sends it).
pub const LANGFUSE_INGESTION_HEADER: (&str, &str) = ("x-langfuse-ingestion-version", "4");
/// The local collector, over HTTP and over gRPC.
const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// The OTLP traces path over HTTP.
const TRACES_PATH: &str = "/v1/traces";
/// `OTEL_EXPORTER_OTLP_TIMEOUT`'s default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The service name when `OTEL_SERVICE_NAME` is unset.
const DEFAULT_SERVICE_NAME: &str = "llmux";

/// How spans travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    Grpc,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }
}

/// One exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    /// `otel` or `langfuse`.
    pub name: &'static str,
    /// The traces URL.
    pub endpoint: String,
    pub protocol: Protocol,
    /// Sent with every export; values are secrets (API keys, Basic auth).
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    /// Which requests it gets (`success_callback`, `failure_callback`, `callbacks`).
    pub reported: Reported,
}

/// Every exporter and what they share.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    pub destinations: Vec<Destination>,
    pub service_name: String,
    /// Prompts and answers go into spans (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`).
    pub capture_content: bool,
    /// Why a callback that is listed sends nothing (for stderr and `llmux check`).
    pub problems: Vec<String>,
}

impl Settings {
    /// The exporters `cfg`'s callbacks ask for.
    pub fn from_config(cfg: &Config) -> Settings {
        let c = &cfg.router.callbacks;
        let var = |name: &str| c.var(name).map(str::trim).filter(|v| !v.is_empty());
        let mut s = Settings {
            service_name: var("OTEL_SERVICE_NAME")
                .unwrap_or(DEFAULT_SERVICE_NAME)
                .to_string(),
            capture_content: var("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            ..Settings::default()
        };
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if disabled && (c.otel.is_some() || c.langfuse.is_some()) {
            s.problems
                .push("OTEL_SDK_DISABLED=true: no traces are sent".to_string());
            return s;
        }
        let timeout = var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        if let Some(reported) = c.otel {
            let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            {
                None | Some("http/protobuf") => Some(Protocol::HttpProtobuf),
                Some("grpc") if cfg!(feature = "otlp-grpc") => Some(Protocol::Grpc),
                Some("grpc") => {
                    s.problems.push(
                        "otel: OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not in this build (cargo \
                         feature otlp-grpc); use http/protobuf (port 4318) or rebuild"
                            .to_string(),
                    );
                    None
                }
                Some(other) => {
                    s.problems.push(format!(
                        "otel: OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported \
                         (http/protobuf, grpc); sending http/protobuf"
                    ));
                    Some(Protocol::HttpProtobuf)
                }
            };
            if let Some(protocol) = protocol {
                let endpoint = match (var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), protocol) {
                    (Some(url), _) => url.to_string(),
                    (None, Protocol::Grpc) => var("OTEL_EXPORTER_OTLP_ENDPOINT")
                        .unwrap_or(DEFAULT_GRPC_ENDPOINT)
                        .to_string(),
                    (None, Protocol::HttpProtobuf) => format!(
                        "{}{TRACES_PATH}",
                        var("OTEL_EXPORTER_OTLP_ENDPOINT")
                            .unwrap_or(DEFAULT_HTTP_ENDPOINT)
                            .trim_end_matches('/')
                    ),
                };
                let headers = var("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
                    .or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS"))
                    .map(parse_headers)
                    .unwrap_or_default();
                s.destinations.push(Destination {
                    name: "otel",
                    endpoint,
                    protocol,
                    headers,
                    timeout,
                    reported,
                });
            }
        }
        if let Some(reported) = c.langfuse {
            match (var("LANGFUSE_PUBLIC_KEY"), var("LANGFUSE_SECRET_KEY")) {
                (Some(public), Some(secret)) => {
                    let host = var("LANGFUSE_OTEL_HOST")
                        .or_else(|| var("LANGFUSE_HOST"))
                        .unwrap_or(LANGFUSE_DEFAULT_HOST);
                    s.destinations.push(Destination {
                        name: "langfuse",
                        endpoint: langfuse_endpoint(host),
                        protocol: Protocol::HttpProtobuf,
                        headers: vec![
                            (
                                "authorization".to_string(),
                                Secret::new(langfuse_auth(public, secret)),
                            ),
                            (
                                LANGFUSE_INGESTION_HEADER.0.to_string(),
                                Secret::new(LANGFUSE_INGESTION_HEADER.1),
                            ),
                        ],
                        timeout,
                        reported,
                    });
                }
                _ => s.problems.push(
                    "langfuse: LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY are not both set; \
                     nothing is sent to Langfuse"
                        .to_string(),
                ),
            }
        }
        s
    }

    pub fn langfuse(&self) -> bool {
        self.destinations.iter().any(|d| d.name == "langfuse")
    }

    /// One line per exporter, for `llmux check`: which, where, what. No header value.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .destinations
            .iter()
            .map(|d| {
                let which = match (d.reported.success, d.reported.failure) {
                    (true, true) => "every request",
                    (true, false) => "answered requests",
                    _ => "failed requests",
                };
                let headers = if d.headers.is_empty() {
                    String::new()
                } else {
                    let names: Vec<&str> = d.headers.iter().map(|(k, _)| k.as_str()).collect();
                    format!(", headers {}", names.join(", "))
                };
                format!(
                    "{}: traces of {which} over OTLP {} to {}{headers}",
                    d.name,
                    d.protocol.name(),
                    super::shown_endpoint(&d.endpoint)
                )
            })
            .collect();
        if !self.destinations.is_empty() {
            lines.push(format!(
                "service.name {}; message content {}",
                crate::sanitize::escape_line(&self.service_name),
                if self.capture_content {
                    "captured (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)"
                } else {
                    "not captured"
                }
            ));
        }
        lines
    }
}

/// `Basic base64(public:secret)`, the header Langfuse's OTLP endpoint takes.
pub fn langfuse_auth(public_key: &str, secret_key: &str) -> String {
    use base64::Engine;
    let raw = format!("{public_key}:{secret_key}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Langfuse's traces URL under `host` (`https://` added when it names no scheme).
pub fn langfuse_endpoint(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.starts_with("http://") || host.starts_with("https://") {
        format!("{host}{LANGFUSE_TRACES_PATH}")
    } else {
        format!("https://{host}{LANGFUSE_TRACES_PATH}")
    }
}

/// `k=v,k2=v2` (W3C baggage-like, values percent-decoded) → headers; malformed pairs skipped.
fn parse_headers(text: &str) -> Vec<(String, Secret)> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| {
                (
                    k.to_ascii_lowercase(),
                    Secret::new(percent_decode(v.trim())),
                )
            })
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_as_the_spec_writes_them() {
        let h = parse_headers("api-key=abc%3D%3D, X-Team = core ,bad, =x");
        let shown: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
        assert_eq!(shown, [("api-key", "abc=="), ("x-team", "core")]);
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn langfuse_endpoints_and_auth() {
        assert_eq!(
            langfuse_endpoint("https://eu.example/"),
            "https://eu.example/api/public/otel/v1/traces"
        );
        assert_eq!(
            langfuse_endpoint("langfuse.internal:3000"),
            "https://langfuse.internal:3000/api/public/otel/v1/traces"
        );
        // base64("pk-lf-1:sk-lf-2")
        assert_eq!(
            langfuse_auth("pk-lf-1", "sk-lf-2"),
            "Basic cGstbGYtMTpzay1sZi0y"
        );
    }
}
