//! Stub: metrics.
