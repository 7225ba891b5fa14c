//! What llmux keeps on disk: the request log (every routing event as one JSON line) and,
//! for the TUI, conversations. Writes happen on a dedicated thread so the router's hot path
//! never waits for the disk; each line is written whole and flushed in batches.

pub mod branches;
pub mod file;
pub mod request_log;
pub mod session;
pub mod session_admin;
pub mod session_history;
pub mod session_replay;
pub mod session_search;
pub mod session_summary;
pub mod stats;

pub use request_log::{RequestLog, RequestLogError};
