//! Stub: replaced by the provider implementation.
use super::{ChatRequest, EventStream, HttpClient, ProviderError};
use crate::config::Deployment;

pub async fn open(
    _client: &HttpClient,
    _deployment: &Deployment,
    _request: &ChatRequest,
) -> Result<EventStream, ProviderError> {
    Err(ProviderError::protocol("not implemented"))
}
