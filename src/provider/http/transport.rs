//! Which HTTP stack carries the requests, and how each is built: TLS (rustls with the ring
//! provider and the platform's verifier, plus any roots the caller trusts explicitly),
//! TCP_NODELAY (tokens are small writes and must not wait for Nagle), TCP keep-alive, a
//! connect timeout, idle connections kept [`POOL_IDLE_TIMEOUT`], and no total timeout (the
//! router owns the deadlines).
//!
//! [`Transport::Hyper`] is hyper's HTTP/1.1 client connection driven in the request's task
//! (`conn`), over hyper-util's connector and hyper-rustls, for `http://` and `https://`
//! alike: what every upstream uses unless a proxy is configured. [`Transport::Reqwest`] is
//! reqwest, built on the same hyper, rustls and TLS config (HTTP/2 when the server offers it
//! by ALPN), which adds what hyper's client lacks: `HTTP(S)_PROXY`, `ALL_PROXY` and
//! `NO_PROXY`. [`Transport::from_environment`] is the choice for a process; it is made where
//! the router's options are, never inside [`super::HttpClient::new`].
//!
//! Neither stack resends a request that may have reached the upstream: hyper hands a request
//! back only when it was never written (its connection closed first), and only then is it
//! tried on another connection.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;

use super::super::ProviderError;
use super::conn::InTask;

/// How long we wait for a TCP connection before calling the upstream unreachable (a TLS
/// handshake that stalls after it is bounded by the router's first-token deadline).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle pooled connection is kept for reuse.
pub(super) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// TCP keep-alive probes, so a silently dead peer is noticed on long streams.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
/// Idle connections kept per upstream host.
pub(super) const MAX_IDLE_PER_HOST: usize = 64;
/// What reqwest offers in TLS's ALPN, preferred first (hyper-rustls offers http/1.1 itself).
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Environment variables that send requests through a proxy (reqwest honours them).
const PROXY_VARS: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Which HTTP stack carries the requests (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// hyper's pooled client with rustls, for http and https.
    #[default]
    Hyper,
    /// reqwest, which speaks to proxies.
    Reqwest,
}

impl Transport {
    /// The transport for this process: reqwest when a proxy is configured in the environment
    /// (only it speaks to proxies), else hyper.
    pub fn from_environment() -> Transport {
        let proxied = PROXY_VARS
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        if proxied {
            Transport::Reqwest
        } else {
            Transport::Hyper
        }
    }
}

/// What an [`super::HttpClient`] is built with.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    pub transport: Transport,
    /// Whom TLS trusts: when `None`, the platform's certificate authorities through
    /// rustls-platform-verifier (loaded once per process). Tests pass a config that trusts
    /// their fake https upstreams' certificate authority; verification is never turned off.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl HttpOptions {
    /// The options for this process: [`Transport::from_environment`], the platform's roots.
    pub fn from_environment() -> HttpOptions {
        HttpOptions {
            transport: Transport::from_environment(),
            tls: None,
        }
    }
}

/// A built stack.
#[derive(Debug, Clone)]
pub(super) enum Stack {
    Hyper(InTask),
    Reqwest(reqwest::Client),
}

/// Builds the stack `options` ask for.
pub(super) fn build(options: &HttpOptions) -> Result<Stack, ProviderError> {
    let mut tls = match &options.tls {
        Some(tls) => rustls::ClientConfig::clone(tls),
        None => platform_tls()?,
    };
    // hyper-rustls offers the versions it was built for (h2, http/1.1) itself, and refuses a
    // config that already names some; reqwest takes the config as it is.
    tls.alpn_protocols = match options.transport {
        Transport::Hyper => Vec::new(),
        Transport::Reqwest => ALPN.iter().map(|p| p.to_vec()).collect(),
    };
    Ok(match options.transport {
        Transport::Hyper => Stack::Hyper(InTask::new(connector(tls))),
        Transport::Reqwest => Stack::Reqwest(reqwest_client(tls)?),
    })
}

fn cannot_build(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::network(format!("cannot build the HTTP client: {e}"))
}

/// rustls with ring and the platform's verifier. Building one reads the system's root
/// certificates (tens of milliseconds in a debug build), so it is built once per process.
fn platform_tls() -> Result<rustls::ClientConfig, ProviderError> {
    static PLATFORM: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    let built = PLATFORM.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| e.to_string())?;
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            // The platform's verifier, installed as reqwest installs it: verification is on.
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth())
    });
    built.clone().map_err(cannot_build)
}

/// TCP (or TLS over it, for `https://`) connections for the in-task client.
fn connector(tls: rustls::ClientConfig) -> hyper_rustls::HttpsConnector<HttpConnector> {
    let mut tcp = HttpConnector::new();
    // https URLs too: the TLS layer wraps this connector.
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_keepalive(Some(TCP_KEEPALIVE));
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp)
}

fn reqwest_client(tls: rustls::ClientConfig) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .tcp_nodelay(true)
        .tcp_keepalive(TCP_KEEPALIVE)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .build()
        .map_err(cannot_build)
}
