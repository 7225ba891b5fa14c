//! Stub: command line.
