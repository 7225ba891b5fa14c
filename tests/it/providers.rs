//! Tests: providers.
