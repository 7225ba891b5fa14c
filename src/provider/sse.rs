//! Stub: replaced by the SSE parser.
