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

    /// Empties the slots whose tick has left the window ending at `now`, handing each to
    /// `leaving` first.
    pub(crate) fn expire(&mut self, now: u64, mut leaving: impl FnMut(&T)) {
        let len = self.len();
        for slot in &mut self.slots {
            if slot.tick.is_some_and(|t| t <= now && now - t >= len) {
                leaving(&slot.value);
                slot.value.reset();
                slot.tick = None;
            }
        }
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

    fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(Histogram::is_empty)
    }

    /// The `p50` and `p95` of the samples.
    fn percentiles(&self) -> Option<(Duration, Duration)> {
        let h = self.0.as_ref().filter(|h| !h.is_empty())?;
        let mut values = h.value_at_quantiles([P50, P95]).map(Duration::from_micros);
        Some((values.next()?, values.next()?))
    }

    /// Adds `other`'s samples (same bounds everywhere, so this cannot fail).
    fn add(&mut self, other: &LazyHistogram) {
        let Some(theirs) = other.0.as_ref().filter(|h| !h.is_empty()) else {
            return;
        };
        match self.0.as_mut() {
            Some(ours) => {
                let _ = ours.add(theirs);
            }
            None => self.0 = Some(theirs.clone()),
        }
    }

    /// Removes `other`'s samples; `false` if they were not all here.
    fn subtract(&mut self, other: &LazyHistogram) -> bool {
        match (self.0.as_mut(), other.0.as_ref()) {
            (_, None) => true,
            (Some(ours), Some(theirs)) => ours.subtract(theirs).is_ok(),
            (None, Some(theirs)) => theirs.is_empty(),
        }
    }
}

/// Latency samples over a rolling window: one histogram per slot of time, plus their sum,
/// kept up to date as slots expire so reading percentiles never has to merge.
#[derive(Debug, Clone)]
pub(crate) struct RollingHistogram {
    slots: Ring<LazyHistogram>,
    window: LazyHistogram,
}

impl RollingHistogram {
    /// A window of `slots` ticks.
    pub(crate) fn new(slots: usize) -> RollingHistogram {
        RollingHistogram {
            slots: Ring::new(slots),
            window: LazyHistogram::default(),
        }
    }

    /// Drops the slots that left the window ending at `now` from the sum.
    pub(crate) fn advance(&mut self, now: u64) {
        let mut consistent = true;
        let window = &mut self.window;
        self.slots.expire(now, |old| {
            consistent &= window.subtract(old);
        });
        if !consistent {
            // Cannot happen (every sample goes to both); rebuilding keeps it right anyway.
            self.window.reset();
            for slot in self.slots.recent(now) {
                self.window.add(slot);
            }
        }
    }

    pub(crate) fn record(&mut self, now: u64, d: Duration) {
        self.advance(now);
        if let Some(slot) = self.slots.at(now) {
            slot.record(d);
            self.window.record(d);
        }
    }

    /// The `p50` and `p95` of the window as of the last [`advance`](Self::advance).
    pub(crate) fn percentiles(&self) -> Option<(Duration, Duration)> {
        if self.window.is_empty() {
            return None;
        }
        self.window.percentiles()
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
    fn rolling_percentiles_drop_expired_slots() {
        let mut h = RollingHistogram::new(3);
        assert_eq!(h.percentiles(), None);
        for ms in 1..=50 {
            h.record(0, Duration::from_millis(ms));
        }
        for ms in 51..=100 {
            h.record(2, Duration::from_millis(ms));
        }
        let close = |d: Duration, ms: f64| (d.as_secs_f64() * 1000.0 - ms).abs() <= ms * 0.01;
        let (p50, p95) = h.percentiles().unwrap();
        assert!(close(p50, 50.0), "{p50:?}");
        assert!(close(p95, 95.0), "{p95:?}");
        h.advance(3);
        let (p50, _) = h.percentiles().unwrap();
        assert!(close(p50, 75.0), "{p50:?}");
        h.record(5, Duration::from_millis(7));
        let (p50, p95) = h.percentiles().unwrap();
        assert!(close(p50, 7.0) && close(p95, 7.0), "{p50:?} {p95:?}");
        h.advance(100);
        assert_eq!(h.percentiles(), None);
    }
}
