//! The process exit codes every command shares (`cli`, `serve`, `monitor`, the TUI), kept apart
//! so the front ends need not import each other for them.

/// Success.
pub const EXIT_OK: u8 = 0;
/// Every route failed (or the command's one job did).
pub const EXIT_FAILED: u8 = 1;
/// Bad usage or a bad config.
pub const EXIT_USAGE: u8 = 2;
/// Ctrl+C stopped a batch (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;
