//! JSON string literals on the hot paths: finding where a text needs escaping, and writing a
//! text as a literal without serde's per-fragment writes when it needs none.
//!
//! JSON escapes only quotes, backslashes and control characters (serde_json escapes nothing
//! else), so a text free of them is its own literal between two quotes, byte for byte what
//! serde_json writes.

use bytes::BufMut;

/// How many bytes of `bytes` come before the first quote, backslash or control character
/// (all of them if there is none). Eight bytes at a time, since such runs are most of the
/// bytes of a streamed chunk.
pub fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH_BITS: u64 = ONES << 7;
    // The high bit of each byte of `word` that is below `n` (n <= 128). The lowest one set
    // is exact; the borrow can only mark bytes above it.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH_BITS;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        let word = u64::from_le_bytes(eight);
        let special = below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1)
            | below(word, 0x20);
        if special != 0 {
            return at + (special.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(bytes.len() - at)
}

/// Appends `text` as a JSON string literal, quotes included, exactly as serde_json would
/// (into a `BytesMut` or a `Vec<u8>`).
pub fn write_str<B: BufMut>(out: &mut B, text: &str) {
    if plain_run(text.as_bytes()) == text.len() {
        out.put_u8(b'"');
        out.put_slice(text.as_bytes());
        out.put_u8(b'"');
    } else if serde_json::to_writer(out.writer(), text).is_err() {
        out.put_slice(b"\"\"");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The eight-at-a-time search finds what a byte-by-byte one finds.
        #[test]
        fn plain_run_stops_at_the_first_quote_backslash_or_control(
            bytes in prop::collection::vec(
                prop_oneof![any::<u8>(), Just(b'"'), Just(b'\\'), 0x20u8..0x7f],
                0..40,
            ),
        ) {
            let expected = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(bytes.len());
            prop_assert_eq!(plain_run(&bytes), expected);
        }

        /// What serde_json writes, whatever the text, into either buffer.
        #[test]
        fn write_str_writes_what_serde_writes(
            text in prop_oneof![any::<String>(), "[a-z \"\\\\\\n\\u{0}\\u{7f}é🦊]{0,20}"],
        ) {
            let expected = serde_json::to_string(&text).unwrap_or_default();
            let mut out = bytes::BytesMut::new();
            write_str(&mut out, &text);
            prop_assert_eq!(&out[..], expected.as_bytes());
            let mut out = Vec::new();
            write_str(&mut out, &text);
            prop_assert_eq!(&out[..], expected.as_bytes());
        }
    }
}
