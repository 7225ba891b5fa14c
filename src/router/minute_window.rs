//! [`MinuteWindow`]: how many requests (or tokens) a deployment took in the last minute, for
//! `rpm` / `tpm`, in memory bounded by the minute rather than by the traffic.
//!
//! A timestamp per request held a busy server's whole minute in memory (20k requests/s is
//! 1.2M entries, ~20 MB per deployment, kept as the queue's capacity after the load had
//! gone). Here entries close together share a [`BUCKET`]: at most a minute's worth of buckets
//! per window. A bucket leaves the window a minute after its *last* entry, so the count errs
//! high by at most one bucket's span and a limit is never exceeded; entries further apart
//! than a bucket (any rate a limit of a few rpm allows) are counted exactly.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::health::MINUTE;

/// Entries within this span of a bucket's first share it.
pub const BUCKET: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    first: Instant,
    last: Instant,
    sum: u64,
}

/// A sliding one-minute sum (see the module docs).
#[derive(Debug, Default)]
pub struct MinuteWindow {
    buckets: VecDeque<Bucket>,
    total: u64,
}

impl MinuteWindow {
    /// Adds `n` at `now` (times only move forward).
    pub fn add(&mut self, now: Instant, n: u64) {
        match self.buckets.back_mut() {
            Some(b) if now < b.first + BUCKET => {
                b.last = b.last.max(now);
                b.sum = b.sum.saturating_add(n);
            }
            _ => self.buckets.push_back(Bucket {
                first: now,
                last: now,
                sum: n,
            }),
        }
        self.total = self.total.saturating_add(n);
    }

    /// Drops what is a minute old at `now`.
    pub fn expire(&mut self, now: Instant) {
        let Some(cutoff) = now.checked_sub(MINUTE) else {
            return;
        };
        while let Some(b) = self.buckets.front() {
            if b.last > cutoff {
                break;
            }
            self.total = self.total.saturating_sub(b.sum);
            self.buckets.pop_front();
        }
    }

    /// The sum over the last minute (as of the last [`MinuteWindow::expire`]).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The parts of the sum, oldest first, each with how long before `now` it was last added
    /// to (so a part counted again elsewhere leaves that window no sooner than this one).
    pub fn parts(&self, now: Instant) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.buckets
            .iter()
            .map(move |b| (now.saturating_duration_since(b.last), b.sum))
    }

    /// When the oldest part of the sum leaves the window.
    pub fn frees_at(&self) -> Option<Instant> {
        self.buckets.front().map(|b| b.last + MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_minute_exactly_for_spaced_entries_and_never_low_for_bursts() {
        let t0 = Instant::now();
        let mut w = MinuteWindow::default();
        for s in 0..5 {
            w.add(t0 + Duration::from_secs(s * 10), 1);
        }
        w.expire(t0 + Duration::from_secs(60));
        assert_eq!(w.total(), 4, "the entry at 0 s left at 60 s");
        assert_eq!(w.frees_at(), Some(t0 + Duration::from_secs(70)));
        let now = t0 + Duration::from_secs(60);
        let ages: Vec<u64> = w.parts(now).map(|(age, _)| age.as_secs()).collect();
        assert_eq!(ages, [50, 40, 30, 20]);

        let mut burst = MinuteWindow::default();
        for ms in 0..1000 {
            burst.add(t0 + Duration::from_millis(ms), 2);
        }
        assert_eq!(burst.total(), 2000);
        assert!(
            burst.buckets.len() <= 10,
            "a second of traffic is ten buckets"
        );
        burst.expire(t0 + Duration::from_millis(60_050));
        assert_eq!(
            burst.total(),
            2000,
            "a bucket stays until a minute after its last entry: counts err high, not low"
        );
        burst.expire(t0 + Duration::from_millis(60_099));
        assert_eq!(burst.total(), 1800);
        burst.expire(t0 + Duration::from_secs(61));
        assert_eq!(burst.total(), 0);
        assert_eq!(burst.frees_at(), None);
    }
}
