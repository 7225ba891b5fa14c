//! Reliability under upstream faults: the fault matrix (every fault's class, retry, cooldown
//! and fallback), bounded memory for huge answers, secrets that never leak, and property
//! tests (fuzzing) of the stream decoders and the config loader.

pub(crate) mod fuzz;
mod matrix;
mod memory;
pub(crate) mod raw;
mod rows;
mod secrets;
