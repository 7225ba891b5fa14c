//! Stub: replaced by the shared HTTP client.
use super::ProviderError;

#[derive(Debug, Clone, Default)]
pub struct HttpClient {}

impl HttpClient {
    pub fn new() -> Result<HttpClient, ProviderError> {
        Ok(HttpClient {})
    }
}
