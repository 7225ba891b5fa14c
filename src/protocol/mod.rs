//! Wire contracts between llmux processes, kept apart from both ends so that neither imports
//! the other: `serve` writes them, `monitor` reads them back.
//!
//! - [`events`]: the `/llmux/events` feed (`llmux serve` → `llmux monitor`).

pub mod events;
