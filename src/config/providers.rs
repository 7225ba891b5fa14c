//! Stub: replaced by the provider family table.
pub struct ProviderFamily;
pub fn resolve_model() {}
