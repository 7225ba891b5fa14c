//! Copying with OSC 52: the terminal itself puts the text on the clipboard, so it works over
//! SSH. Inside tmux, whose defaults drop an application's OSC 52, tmux's options are read once
//! at start ([`TmuxCopy::probe`]): with `allow-passthrough on` the sequence goes through
//! wrapped in a DCS passthrough, with `set-clipboard on` tmux takes it itself; with neither
//! the copy is still sent, but the user is told it may not arrive and how to enable it
//! ([`Mux::caveat`]). Inside GNU screen it goes in screen's own DCS. The text is base64, so
//! nothing in it reaches the terminal as a command.

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
    Tmux(TmuxCopy),
    Screen,
}

/// How a copy gets through tmux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmuxCopy {
    /// `allow-passthrough on` (or `all`): wrapped in a DCS passthrough to the outer terminal.
    Passthrough,
    /// `set-clipboard on`: tmux takes the OSC 52 itself (and passes it on where it can).
    SetClipboard,
    /// Neither (tmux's defaults), or tmux could not be asked: it may drop the copy.
    Blocked,
}

impl TmuxCopy {
    /// From the values of tmux's `allow-passthrough` and `set-clipboard` options (`None`
    /// where tmux did not say, e.g. a tmux older than 3.3 has no `allow-passthrough`).
    pub fn from_options(passthrough: Option<&str>, set_clipboard: Option<&str>) -> TmuxCopy {
        if matches!(passthrough.map(str::trim), Some("on" | "all")) {
            TmuxCopy::Passthrough
        } else if set_clipboard.map(str::trim) == Some("on") {
            TmuxCopy::SetClipboard
        } else {
            TmuxCopy::Blocked
        }
    }

    /// Asks the tmux we run in (`tmux show-options`) for the two options.
    pub fn probe() -> TmuxCopy {
        let show = |args: &[&str]| {
            let out = std::process::Command::new("tmux")
                .arg("show-options")
                .args(args)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let pane = std::env::var("TMUX_PANE").unwrap_or_default();
        let passthrough = if pane.is_empty() {
            show(&["-Apv", "allow-passthrough"])
        } else {
            show(&["-Apv", "-t", &pane, "allow-passthrough"])
        };
        let set_clipboard =
            show(&["-sv", "set-clipboard"]).or_else(|| show(&["-gv", "set-clipboard"]));
        TmuxCopy::from_options(passthrough.as_deref(), set_clipboard.as_deref())
    }
}

impl Mux {
    /// From `$TMUX` (then tmux's options) and `$TERM`.
    pub fn detect() -> Mux {
        if std::env::var_os("TMUX").is_some_and(|v| !v.is_empty()) {
            Mux::Tmux(TmuxCopy::probe())
        } else if std::env::var("TERM").is_ok_and(|t| t.starts_with("screen")) {
            Mux::Screen
        } else {
            Mux::None
        }
    }

    /// What to say after a copy that may not reach the clipboard, with how to fix it.
    pub fn caveat(self) -> Option<String> {
        (self == Mux::Tmux(TmuxCopy::Blocked)).then(|| {
            "may not reach the clipboard: tmux needs `set -g allow-passthrough on` \
             (or `set -g set-clipboard on`)"
                .to_string()
        })
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
        // tmux with `set-clipboard on` takes the sequence itself; with neither option it
        // drops either form, and the plain one is the one that works once the option is set.
        Mux::None | Mux::Tmux(TmuxCopy::SetClipboard | TmuxCopy::Blocked) => seq,
        // Inside a DCS passthrough every ESC of the payload is doubled.
        Mux::Tmux(TmuxCopy::Passthrough) => {
            format!("\x1bPtmux;{}\x1b\\", seq.replace('\x1b', "\x1b\x1b"))
        }
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
            osc52("hi", Mux::Tmux(TmuxCopy::Passthrough)).unwrap(),
            "\x1bPtmux;\x1b\x1b]52;c;aGk=\x1b\x1b\\\x1b\\"
        );
        assert_eq!(
            osc52("hi", Mux::Tmux(TmuxCopy::SetClipboard)).unwrap(),
            "\x1b]52;c;aGk=\x1b\\"
        );
        assert!(osc52(&"x".repeat(MAX_COPY_BYTES + 1), Mux::None).is_err());
    }

    #[test]
    fn tmux_without_passthrough_or_set_clipboard_gets_a_caveat() {
        use TmuxCopy::*;
        let t = TmuxCopy::from_options;
        assert_eq!(t(Some("on"), Some("external")), Passthrough);
        assert_eq!(t(Some("all"), None), Passthrough);
        assert_eq!(t(Some("off"), Some("on")), SetClipboard);
        // tmux's defaults, and a tmux older than 3.3 with set-clipboard external.
        assert_eq!(t(Some("off"), Some("external")), Blocked);
        assert_eq!(t(None, Some("external")), Blocked);
        assert_eq!(t(None, None), Blocked);
        let caveat = Mux::Tmux(Blocked).caveat().unwrap();
        assert!(caveat.contains("set -g allow-passthrough on"), "{caveat}");
        assert!(caveat.contains("set-clipboard on"), "{caveat}");
        for ok in [
            Mux::None,
            Mux::Screen,
            Mux::Tmux(Passthrough),
            Mux::Tmux(SetClipboard),
        ] {
            assert_eq!(ok.caveat(), None, "{ok:?}");
        }
    }
}
