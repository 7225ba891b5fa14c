//! Stub: router.
