//! Tests: sse_props.
