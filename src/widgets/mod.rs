//! The panes the TUI and `llmux monitor` both draw, and what they are drawn with: the
//! metrics pane and its [`metrics::StatusView`], the routing log pane and its
//! [`routelog::RouteLog`], the theme, a pane's frame ([`pane`]), number formatting ([`fmt`])
//! and wrapping ([`wrap`]). They read the core's types (router events, metrics snapshots, the
//! `/llmux/events` wire types) and know nothing of either front end: the TUI's app state and
//! the monitor's link to its server stay with them.

pub mod fmt;
pub mod metrics;
pub mod pane;
pub mod routelog;
pub mod theme;
pub mod wrap;

pub use pane::{pane_block, set_line_clipped, with_hidden};
