//! Stub: store.
