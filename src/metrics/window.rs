//! Rolling time windows: a fixed ring of slots, each holding what happened during one
//! stretch of time (10 s of counters, a minute of latency samples).
//!
//! Time enters as a tick number (whole slot widths since the registry's epoch, see
//! [`ticks`]); a slot is reused in place once its tick has left the ring, so nothing
//! allocates on the hot path after warm-up and nothing needs a timer to expire data.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Whole `width`s from `epoch` to `now` (0 for instants before the epoch).
pub(crate) fn ticks(epoch: Instant, now: Instant, width: Duration) -> u64 {
    let elapsed = now.saturating_duration_since(epoch).as_nanos();
    let width = width.as_nanos().max(1);
    u64::try_from(elapsed / width).unwrap_or(u64::MAX)
}

/// State a slot can be emptied to, keeping its allocation.
pub(crate) trait Reset {
    fn reset(&mut self);
}

/// One slot of a [`Ring`]: its tick and what was recorded during it.
#[derive(Debug, Clone, Default)]
struct Slot<T> {
    /// `None` until first written.
    tick: Option<u64>,
    value: T,
}

/// The last `len` ticks of something, one slot per tick.
#[derive(Debug, Clone)]
pub(crate) struct Ring<T> {
    slots: Vec<Slot<T>>,
}

impl<T: Default + Reset> Ring<T> {
    pub(crate) fn new(len: usize) -> Ring<T> {
        Ring {
            slots: (0..len.max(1)).map(|_| Slot::default()).collect(),
        }
    }

    fn len(&self) -> u64 {
        self.slots.len() as u64
    }

    fn position(&self, tick: u64) -> usize {
        // The remainder is below `len`, which is a `usize`.
        (tick % self.len()) as usize
    }

    /// The slot for `tick`, emptied first if it still held an older tick. `None` when `tick`
    /// is older than the ring remembers (a late report from a slow thread): it is dropped.
    pub(crate) fn at(&mut self, tick: u64) -> Option<&mut T> {
        let pos = self.position(tick);
        let slot = &mut self.slots[pos];
        match slot.tick {
            Some(t) if t == tick => {}
            Some(t) if t > tick => return None,
            _ => {
                slot.value.reset();
                slot.tick = Some(tick);
            }
        }
        Some(&mut slot.value)
    }

    /// What was recorded during `tick`, if the ring still holds it.
    pub(crate) fn get(&self, tick: u64) -> Option<&T> {
        let slot = &self.slots[self.position(tick)];
        (slot.tick == Some(tick)).then_some(&slot.value)
    }

    /// The slots of the last `len` ticks up to and including `now`, in no particular order.
    pub(crate) fn recent(&self, now: u64) -> impl Iterator<Item = &T> + '_ {
        let len = self.len();
        self.slots.iter().filter_map(move |slot| match slot.tick {
            Some(t) if t <= now && now - t < len => Some(&slot.value),
            _ => None,
        })
    }

    /// One value per tick for the last `len` ticks up to `now`, oldest first; ticks with no
    /// slot give `empty`.
    pub(crate) fn series<U>(&self, now: u64, empty: U, f: impl Fn(&T) -> U) -> Vec<U>
    where
        U: Clone,
    {
        let len = self.len();
        (0..len)
            .map(|back| {
                let age = len - 1 - back;
                now.checked_sub(age)
                    .and_then(|tick| self.get(tick))
                    .map_or_else(|| empty.clone(), &f)
            })
            .collect()
    }
}

/// Latency histograms count microseconds.
const MICROS_LOW: u64 = 1;
/// Longest latency a histogram tells apart (an hour); longer ones count as this.
const MICROS_HIGH: u64 = 3_600_000_000;
/// Two significant digits: 1% resolution in about 13 KB per histogram.
const SIGNIFICANT_DIGITS: u8 = 2;

/// A latency histogram allocated on first use, so idle deployments cost nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct LazyHistogram(Option<Histogram<u32>>);

fn new_histogram() -> Option<Histogram<u32>> {
    Histogram::new_with_bounds(MICROS_LOW, MICROS_HIGH, SIGNIFICANT_DIGITS).ok()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl LazyHistogram {
    pub(crate) fn record(&mut self, d: Duration) {
        if self.0.is_none() {
            self.0 = new_histogram();
        }
        if let Some(h) = self.0.as_mut() {
            h.saturating_record(micros(d).max(MICROS_LOW));
        }
    }

    /// The `p50` and `p95` of every sample in `parts` together.
    pub(crate) fn percentiles<'a>(
        parts: impl Iterator<Item = &'a LazyHistogram>,
    ) -> Option<(Duration, Duration)> {
        let mut merged: Option<Histogram<u32>> = None;
        for h in parts.filter_map(|p| p.0.as_ref()).filter(|h| !h.is_empty()) {
            match merged.as_mut() {
                None => merged = Some(h.clone()),
                Some(m) => {
                    // Same bounds everywhere, so adding cannot fail; if it did, the sample
                    // set would just be smaller.
                    let _ = m.add(h);
                }
            }
        }
        let merged = merged?;
        let at = |q: f64| Duration::from_micros(merged.value_at_quantile(q));
        Some((at(P50), at(P95)))
    }
}

/// The median.
const P50: f64 = 0.50;
/// The 95th percentile.
const P95: f64 = 0.95;

impl Reset for LazyHistogram {
    fn reset(&mut self) {
        if let Some(h) = self.0.as_mut() {
            h.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Clone, PartialEq)]
    struct Count(u64);
    impl Reset for Count {
        fn reset(&mut self) {
            self.0 = 0;
        }
    }

    #[test]
    fn ticks_count_whole_widths_from_the_epoch() {
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        assert_eq!(ticks(t0, t0, w), 0);
        assert_eq!(ticks(t0, t0 + Duration::from_millis(9_999), w), 0);
        assert_eq!(ticks(t0, t0 + Duration::from_secs(10), w), 1);
        assert_eq!(ticks(t0 + w, t0, w), 0);
    }

    #[test]
    fn slots_are_reused_once_their_tick_leaves_the_ring() {
        let mut ring: Ring<Count> = Ring::new(3);
        ring.at(0).unwrap().0 += 5;
        ring.at(1).unwrap().0 += 1;
        assert_eq!(ring.recent(1).map(|c| c.0).sum::<u64>(), 6);
        ring.at(3).unwrap().0 += 7; // reuses tick 0's slot
        assert_eq!(ring.get(0), None);
        assert_eq!(ring.get(3), Some(&Count(7)));
        assert!(ring.at(0).is_none(), "too old to record");
        assert_eq!(ring.recent(3).map(|c| c.0).sum::<u64>(), 8);
        // Tick 1 leaves the window at tick 4 even though its slot was not reused.
        assert_eq!(ring.recent(4).map(|c| c.0).sum::<u64>(), 7);
        assert_eq!(ring.series(4, 0, |c| c.0), vec![0, 7, 0]);
        assert_eq!(ring.series(1, 9, |c| c.0), vec![9, 9, 1]);
    }

    #[test]
    fn percentiles_merge_slots() {
        let mut a = LazyHistogram::default();
        let mut b = LazyHistogram::default();
        assert_eq!(LazyHistogram::percentiles([&a, &b].into_iter()), None);
        for ms in 1..=50 {
            a.record(Duration::from_millis(ms));
        }
        for ms in 51..=100 {
            b.record(Duration::from_millis(ms));
        }
        let (p50, p95) = LazyHistogram::percentiles([&a, &b].into_iter()).unwrap();
        let close = |d: Duration, ms: f64| (d.as_secs_f64() * 1000.0 - ms).abs() <= ms * 0.01;
        assert!(close(p50, 50.0), "{p50:?}");
        assert!(close(p95, 95.0), "{p95:?}");
        a.reset();
        let (p50, _) = LazyHistogram::percentiles([&a, &b].into_iter()).unwrap();
        assert!(close(p50, 75.0), "{p50:?}");
    }
}
