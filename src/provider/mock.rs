//! Stub: replaced by the mock provider.
use super::{ChatRequest, EventStream, ProviderError};
use crate::config::Deployment;

pub async fn open(
    _deployment: &Deployment,
    _request: &ChatRequest,
) -> Result<EventStream, ProviderError> {
    Err(ProviderError::protocol("not implemented"))
}
