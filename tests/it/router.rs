//! Tests: router.
