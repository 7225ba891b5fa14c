//! Tests: upstream.
