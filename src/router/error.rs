//! Why a [`Router`](super::Router) could not be built: one variant per part that is set up
//! when it starts (the HTTP client, the price table, the Redis links), each holding the error
//! it came from. Every message names the setting or the part at fault; the front ends print
//! it after `llmux: ` and exit.

use crate::cache::RedisSettingsError;
use crate::metrics::PricingFileError;
use crate::provider::ProviderError;

/// A router could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The HTTP client could not be built (the system's TLS roots did not load).
    #[error(
        "{}; llmux trusts the system's root certificates for https upstreams: check that \
         they are installed (the ca-certificates package)",
        .0.message
    )]
    Http(#[source] ProviderError),
    /// `llmux.pricing_file` could not be read or parsed (the message names the file).
    #[error(transparent)]
    PricingFile(#[from] PricingFileError),
    /// `router_settings.redis_*` can never connect (the message names the setting).
    #[error(transparent)]
    SharedState(RedisSettingsError),
    /// `litellm_settings.cache_params` names a Redis that can never connect.
    #[error(transparent)]
    Cache(RedisSettingsError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ErrorClass;

    #[test]
    fn an_http_client_that_cannot_be_built_says_what_to_check() {
        let e = RouterError::Http(ProviderError::new(
            ErrorClass::Network,
            "cannot build the HTTP client: no root certificates",
        ));
        assert_eq!(
            e.to_string(),
            "cannot build the HTTP client: no root certificates; llmux trusts the system's \
             root certificates for https upstreams: check that they are installed (the \
             ca-certificates package)"
        );
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("network: cannot build the HTTP client: no root certificates")
        );
    }
}
