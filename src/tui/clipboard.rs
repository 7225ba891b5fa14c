//! Copying with OSC 52: the terminal itself puts the text on the clipboard, so it works over
//! SSH. Inside tmux the sequence is wrapped in a DCS passthrough (tmux needs
//! `set -g allow-passthrough on`, or `set-clipboard on` which handles OSC 52 directly), inside
//! GNU screen in its own DCS. The text is base64, so nothing in it reaches the terminal as a
//! command.

/// Most bytes sent in one copy; many terminals drop larger OSC 52 payloads.
pub const MAX_COPY_BYTES: usize = 100_000;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |i: u32| B64[((n >> (18 - 6 * i)) & 0x3f) as usize] as char;
        out.push(sextet(0));
        out.push(sextet(1));
        out.push(if chunk.len() > 1 { sextet(2) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(3) } else { '=' });
    }
    out
}

/// Where the escape goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mux {
    None,
    Tmux,
    Screen,
}

impl Mux {
    /// From `$TMUX` and `$TERM`.
    pub fn detect() -> Mux {
        if std::env::var_os("TMUX").is_some_and(|v| !v.is_empty()) {
            Mux::Tmux
        } else if std::env::var("TERM").is_ok_and(|t| t.starts_with("screen")) {
            Mux::Screen
        } else {
            Mux::None
        }
    }
}

/// The bytes that put `text` on the clipboard, or why not.
pub fn osc52(text: &str, mux: Mux) -> Result<String, String> {
    if text.len() > MAX_COPY_BYTES {
        return Err(format!(
            "{} bytes is more than the {MAX_COPY_BYTES} a terminal takes",
            text.len()
        ));
    }
    let seq = format!("\x1b]52;c;{}\x1b\\", base64(text.as_bytes()));
    Ok(match mux {
        Mux::None => seq,
        // Inside a DCS passthrough every ESC of the payload is doubled.
        Mux::Tmux => format!("\x1bPtmux;{}\x1b\\", seq.replace('\x1b', "\x1b\x1b")),
        Mux::Screen => format!("\x1bP{seq}\x1b\\"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(osc52("hi", Mux::None).unwrap(), "\x1b]52;c;aGk=\x1b\\");
        assert_eq!(
            osc52("hi", Mux::Tmux).unwrap(),
            "\x1bPtmux;\x1b\x1b]52;c;aGk=\x1b\x1b\\\x1b\\"
        );
        assert!(osc52(&"x".repeat(MAX_COPY_BYTES + 1), Mux::None).is_err());
    }
}
