//! Stub: replaced by the YAML position index.
