//! Tests: metrics — price lookups over LiteLLM's table format, costs, and the registry's
//! windows driven by synthetic instants.

mod prices;
mod registry;
