//! Number formatting shared by the panes: money (unknown is "?", never $0), durations,
//! counts and rates, at the precision a human reads at a glance.

use crate::money::Usd;

/// Tokens in a million, for prices per million tokens.
const TOKENS_PER_MILLION: u64 = 1_000_000;

/// `$0.0123`, `$0.000049`, `$1.25` (three significant digits under a dollar); `$?` when
/// unknown.
pub fn cost(cost: Option<Usd>) -> String {
    match cost {
        None => "$?".to_string(),
        Some(c) if c.is_zero() => "$0".to_string(),
        Some(c) => c.to_string(),
    }
}

/// A total of costs, some of which may have had no known price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spend {
    /// The part with a known price.
    pub known: Usd,
    /// Something in it had no known price: shown as `+?` after the known part.
    pub unpriced: bool,
}

impl std::fmt::Display for Spend {
    /// `$0.0123`, `$0.0123+?`, or `$?` when nothing of it had a known price.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.known, self.unpriced) {
            (k, true) if k.is_zero() => f.write_str("$?"),
            (k, true) => write!(f, "{}+?", cost(Some(k))),
            (k, false) => f.write_str(&cost(Some(k))),
        }
    }
}

/// `850 ms`, `1.4 s`, `2m05s`.
pub fn ms(ms: u64) -> String {
    crate::router::human_ms(ms)
}

/// `850ms`, `1.4s` (compact, for tables).
pub fn ms_short(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// `950`, `1.2k`, `3.4M`.
pub fn count(n: u64) -> String {
    if n < 1000 {
        n.to_string()
    } else if n < 1_000_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        format!("{:.1}M", n as f64 / 1e6)
    }
}

/// A price per token as dollars per million tokens, to the cent (to the dollar from $10):
/// `$0.15`, `$15`.
pub fn per_million(per_token: Usd) -> String {
    let usd = per_token.times(TOKENS_PER_MILLION).as_f64();
    if usd >= 10.0 {
        format!("${usd:.0}")
    } else {
        format!("${usd:.2}")
    }
}

/// Seconds left, rounded up: `12s`.
pub fn secs_left(ms: u64) -> String {
    format!("{}s", ms.div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(cost(None), "$?");
        let pico = |p| Some(Usd::from_pico(p));
        assert_eq!(cost(pico(49_000_000)), "$0.000049");
        assert_eq!(cost(pico(12_345_000_000)), "$0.0123");
        assert_eq!(cost(pico(5_040_000)), "$0.00000504");
        assert_eq!(cost(Some(Usd::ZERO)), "$0");
        assert_eq!(ms(850), "850 ms");
        assert_eq!(ms(1450), "1.4 s");
        assert_eq!(count(1234), "1.2k");
        assert_eq!(per_million(Usd::from_pico(150_000)), "$0.15");
        assert_eq!(per_million(Usd::from_pico(15_000_000)), "$15");
        assert_eq!(secs_left(1001), "2s");
    }
}
