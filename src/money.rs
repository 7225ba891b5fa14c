//! Exact money: [`Usd`] counts whole picodollars (1e-12 USD) in a `u64`, so per-token
//! prices such as $0.00000015 are whole numbers and sums never drift.
//!
//! Dollars enter as `f64` only at the edges (price files, config overrides, JSON) through
//! [`Usd::from_dollars_f64`], which rounds to the nearest picodollar; they leave as `f64` in
//! JSON and as text through `Display`. Every sum in between is integer and saturating.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Picodollars in one dollar.
pub const PICO_PER_DOLLAR: u64 = 1_000_000_000_000;

/// Picodollars in one cent: the resolution of amounts of a dollar or more when displayed.
const PICO_PER_CENT: u64 = PICO_PER_DOLLAR / 100;

/// Significant digits shown for amounts under a dollar (`$0.0123`).
const SMALL_AMOUNT_DIGITS: u32 = 3;

/// Decimal places always shown, even when they are zeros (`$0.50`, `$12.50`).
const MIN_DECIMALS: usize = 2;

/// Decimal places of a picodollar.
const PICO_DECIMALS: usize = 12;

/// An exact amount of US dollars, in picodollars.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(u64);

impl Usd {
    pub const ZERO: Usd = Usd(0);
    /// One cent: `Usd::CENT.times(250)` is $2.50.
    pub const CENT: Usd = Usd(PICO_PER_CENT);
    /// One dollar: `Usd::DOLLAR.times(50)` is $50.
    pub const DOLLAR: Usd = Usd(PICO_PER_DOLLAR);

    pub const fn from_pico(pico: u64) -> Usd {
        Usd(pico)
    }

    pub const fn pico(self) -> u64 {
        self.0
    }

    /// The nearest picodollar amount to `dollars`; `None` for negative, NaN, infinite or
    /// amounts beyond `u64::MAX` picodollars (about 18 million dollars).
    pub fn from_dollars_f64(dollars: f64) -> Option<Usd> {
        if !dollars.is_finite() || dollars < 0.0 {
            return None;
        }
        let pico = (dollars * PICO_PER_DOLLAR as f64).round();
        // `u64::MAX as f64` rounds up to 2^64, which itself does not fit.
        if pico >= u64::MAX as f64 {
            return None;
        }
        Some(Usd(pico as u64))
    }

    /// The amount in dollars, for display and JSON. JSON round-trips exactly below 2^52
    /// picodollars (about $4,500); above, within a picodollar.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / PICO_PER_DOLLAR as f64
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self × n`, saturating.
    pub const fn times(self, n: u64) -> Usd {
        Usd(self.0.saturating_mul(n))
    }

    /// `self − rhs`, or zero when `rhs` is more.
    pub const fn saturating_sub(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_sub(rhs.0))
    }

    /// `self` as a whole percentage of `whole`, rounded down (`$40` of `$50` is 80); nothing
    /// of nothing is 100, so a zero budget reads as used up.
    pub fn percent_of(self, whole: Usd) -> u64 {
        if whole.is_zero() {
            return 100;
        }
        let percent = u128::from(self.0) * 100 / u128::from(whole.0);
        u64::try_from(percent).unwrap_or(u64::MAX)
    }
}

/// `#[serde(with = "crate::money::pico_option")]`: an `Option<Usd>` stored as whole
/// picodollars (an integer, exact at any size) rather than as dollars, for files written
/// before amounts were [`Usd`] (session files' `cost_pico`).
pub mod pico_option {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Usd;

    pub fn serialize<S: Serializer>(value: &Option<Usd>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(usd) => serializer.serialize_some(&usd.pico()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Usd>, D::Error> {
        Ok(Option::<u64>::deserialize(deserializer)?.map(Usd::from_pico))
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, rhs: Usd) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Usd> for Usd {
    fn sum<I: Iterator<Item = &'a Usd>>(iter: I) -> Usd {
        iter.copied().sum()
    }
}

/// `n` rounded half up to a multiple of `unit`, saturating.
fn round_to(n: u64, unit: u64) -> u64 {
    let rem = n % unit;
    let down = n - rem;
    if rem * 2 >= unit {
        down.saturating_add(unit)
    } else {
        down
    }
}

impl fmt::Display for Usd {
    /// Cents from a dollar up (`$12.50`); under a dollar, three significant digits with
    /// trailing zeros trimmed to at least two decimals (`$0.0123`, `$0.000045`, `$0.50`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pico = self.0;
        if pico >= PICO_PER_DOLLAR {
            let cents = round_to(pico, PICO_PER_CENT) / PICO_PER_CENT;
            return write!(f, "${}.{:02}", cents / 100, cents % 100);
        }
        let digits = pico.checked_ilog10().map_or(1, |d| d + 1);
        let rounded = match digits.checked_sub(SMALL_AMOUNT_DIGITS) {
            Some(drop) if drop > 0 => round_to(pico, 10u64.pow(drop)),
            _ => pico,
        };
        if rounded >= PICO_PER_DOLLAR {
            // $0.9996 and up round to a whole dollar.
            return f.write_str("$1.00");
        }
        let fraction = format!("{rounded:0width$}", width = PICO_DECIMALS);
        let trimmed = fraction.trim_end_matches('0');
        let shown = if trimmed.len() < MIN_DECIMALS {
            &fraction[..MIN_DECIMALS]
        } else {
            trimmed
        };
        write!(f, "$0.{shown}")
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Usd, D::Error> {
        let dollars = f64::deserialize(deserializer)?;
        let nearest = Usd::from_dollars_f64(dollars).ok_or_else(|| {
            serde::de::Error::custom(format!("not an amount of dollars: {dollars}"))
        })?;
        // Multiplying back can miss by one picodollar above $2,000 or so; prefer the
        // neighbour that serializes to exactly this number, so amounts we wrote round-trip.
        let exact = [
            nearest.0,
            nearest.0.wrapping_sub(1),
            nearest.0.wrapping_add(1),
        ]
        .into_iter()
        .map(Usd)
        .find(|u| u.as_f64() == dollars);
        Ok(exact.unwrap_or(nearest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_tenth_of_a_cent_a_million_times_is_exactly_a_thousand_dollars() {
        let tenth_of_cent = Usd::from_dollars_f64(0.001).unwrap();
        let mut total = Usd::ZERO;
        for _ in 0..1_000_000 {
            total += tenth_of_cent;
        }
        assert_eq!(total, Usd::from_pico(1_000 * PICO_PER_DOLLAR));
        let summed: Usd = std::iter::repeat_n(tenth_of_cent, 1_000_000).sum();
        assert_eq!(summed, total);
        // The float way drifts: this is what the integer type is for.
        let mut float = 0.0f64;
        for _ in 0..1_000_000 {
            float += 0.001;
        }
        assert_ne!(float, 1000.0);
    }

    #[test]
    fn per_token_prices_are_whole_picodollars() {
        assert_eq!(Usd::from_dollars_f64(0.00000015).unwrap().pico(), 150_000);
        assert_eq!(Usd::from_dollars_f64(0.0000006).unwrap().pico(), 600_000);
        assert_eq!(Usd::from_dollars_f64(3.75e-8).unwrap().pico(), 37_500);
        assert_eq!(Usd::from_dollars_f64(1.875e-5).unwrap().pico(), 18_750_000);
    }

    #[test]
    fn bad_amounts_are_refused() {
        assert_eq!(Usd::from_dollars_f64(-0.01), None);
        assert_eq!(Usd::from_dollars_f64(f64::NAN), None);
        assert_eq!(Usd::from_dollars_f64(f64::INFINITY), None);
        assert_eq!(Usd::from_dollars_f64(1e30), None);
        assert_eq!(Usd::from_dollars_f64(-0.0), Some(Usd::ZERO));
    }

    #[test]
    fn sums_saturate() {
        let max = Usd::from_pico(u64::MAX);
        assert_eq!(max + Usd::from_pico(1), max);
        assert_eq!(Usd::from_pico(u64::MAX / 2).times(3), max);
    }

    #[test]
    fn differences_and_percentages_stay_in_whole_picodollars() {
        let forty = Usd::DOLLAR.times(40);
        let fifty = Usd::DOLLAR.times(50);
        assert_eq!(fifty.saturating_sub(forty), Usd::DOLLAR.times(10));
        assert_eq!(forty.saturating_sub(fifty), Usd::ZERO);
        assert_eq!(forty.percent_of(fifty), 80);
        assert_eq!(Usd::from_pico(1).percent_of(fifty), 0);
        assert_eq!(Usd::from_pico(u64::MAX).percent_of(fifty), 36_893_488);
        assert_eq!(
            Usd::from_pico(u64::MAX).percent_of(Usd::from_pico(1)),
            u64::MAX
        );
        assert_eq!(Usd::ZERO.percent_of(Usd::ZERO), 100);
        assert_eq!(Usd::CENT.times(250), Usd::from_dollars_f64(2.5).unwrap());
    }

    #[test]
    fn pico_option_stores_whole_picodollars() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Row {
            #[serde(default, with = "pico_option")]
            cost_pico: Option<Usd>,
        }
        let row = Row {
            cost_pico: Some(Usd::from_pico(49_000_000)),
        };
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(json, r#"{"cost_pico":49000000}"#);
        assert_eq!(serde_json::from_str::<Row>(&json).unwrap(), row);
        let none: Row = serde_json::from_str(r#"{"cost_pico":null}"#).unwrap();
        assert_eq!(none.cost_pico, None);
        assert_eq!(serde_json::from_str::<Row>("{}").unwrap().cost_pico, None);
    }

    #[test]
    fn display_shows_sensible_digits() {
        let show = |d: f64| Usd::from_dollars_f64(d).unwrap().to_string();
        assert_eq!(show(0.0), "$0.00");
        assert_eq!(show(0.0123), "$0.0123");
        assert_eq!(show(0.000045), "$0.000045");
        assert_eq!(show(0.012345), "$0.0123");
        assert_eq!(show(0.012355), "$0.0124");
        assert_eq!(show(0.5), "$0.50");
        assert_eq!(show(0.1), "$0.10");
        assert_eq!(show(0.9996), "$1.00");
        assert_eq!(show(1.23), "$1.23");
        assert_eq!(show(12.5), "$12.50");
        assert_eq!(show(12.499), "$12.50");
        assert_eq!(show(1234.567), "$1234.57");
        assert_eq!(Usd::from_pico(1).to_string(), "$0.000000000001");
        assert_eq!(Usd::from_pico(999).to_string(), "$0.000000000999");
        assert_eq!(Usd::from_pico(9_999).to_string(), "$0.00000001");
    }

    #[test]
    fn json_is_a_number_of_dollars() {
        let usd = Usd::from_pico(12_345_678);
        let json = serde_json::to_string(&usd).unwrap();
        assert_eq!(json, "0.000012345678");
        assert_eq!(serde_json::from_str::<Usd>(&json).unwrap(), usd);
        assert!(serde_json::from_str::<Usd>("-1.0").is_err());
    }

    proptest! {
        #[test]
        fn json_round_trips_exactly(pico in 0u64..(1u64 << 52)) {
            let usd = Usd::from_pico(pico);
            let json = serde_json::to_string(&usd).unwrap();
            prop_assert_eq!(serde_json::from_str::<Usd>(&json).unwrap(), usd);
        }
    }
}
