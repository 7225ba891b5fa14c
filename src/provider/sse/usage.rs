//! The usage a decoder reports: the provider's numbers, or estimates.

use crate::provider::{Usage, estimate_tokens};

/// The estimate's bytes per token: the same rule as [`estimate_tokens`], applied to a running
/// byte count so the streamed text need not be kept.
const BYTES_PER_TOKEN: u64 = 4;

/// What every decoder keeps to report usage: the provider's numbers when it sent them, else
/// estimates from the prompt and from the text streamed so far.
#[derive(Debug, Clone, Default)]
pub struct UsageTracker {
    prompt_estimate: u64,
    output_bytes: u64,
    reported: Option<Usage>,
}

impl UsageTracker {
    pub fn new(prompt_estimate: u64) -> UsageTracker {
        UsageTracker {
            prompt_estimate,
            ..Default::default()
        }
    }

    /// Counts streamed text (answer or reasoning) for the estimate.
    pub fn saw_text(&mut self, text: &str) {
        self.output_bytes += text.len() as u64;
    }

    /// The provider's own counts (the last report wins).
    pub fn report(&mut self, usage: Usage) {
        self.reported = Some(usage);
    }

    pub fn reported(&self) -> Option<Usage> {
        self.reported
    }

    /// The usage to send before `Done`.
    pub fn finish(&self) -> Usage {
        self.reported.unwrap_or(Usage {
            input: self.prompt_estimate,
            output: self.output_bytes.div_ceil(BYTES_PER_TOKEN),
            estimated: true,
            ..Usage::default()
        })
    }

    /// The usage of a whole, non-streamed answer: reported, or estimated from `text`.
    pub fn for_whole(prompt_estimate: u64, reported: Option<Usage>, text: &str) -> Usage {
        reported.unwrap_or(Usage {
            input: prompt_estimate,
            output: estimate_tokens(text),
            estimated: true,
            ..Usage::default()
        })
    }
}
