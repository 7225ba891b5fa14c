//! Stub: replaced by the shared HTTP client.
#[derive(Debug, Clone, Default)]
pub struct HttpClient {}
