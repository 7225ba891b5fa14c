//! Runs a program in a real pseudo-terminal (through python3's `pty` module, which every
//! Linux CI image has), so tests see exactly what a terminal would: the bytes written, the
//! alternate screen and cursor sequences, the exit status or the signal that ended it.
//!
//! Keys go in with [`Pty::write`]; everything the program writes is collected by a reader
//! thread, and [`Pty::wait_for`] blocks (with a deadline) until a condition on it holds.
//! The program's pid is known, so tests can send it signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Forks the program on a pty of the given size, copies stdin to it and its output to
/// stdout, and reports `pid N` first and `exit N` or `signal N` last on stderr.
const DRIVER: &str = r#"
import os, pty, sys, select, struct, fcntl, termios
rows, cols = int(sys.argv[1]), int(sys.argv[2])
argv = sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.execv(argv[0], argv)
sys.stderr.write(f"pid {pid}\n"); sys.stderr.flush()
out = sys.stdout.buffer
stdin_open = True
while True:
    r, _, _ = select.select([fd] + ([0] if stdin_open else []), [], [])
    if fd in r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            break
        out.write(data); out.flush()
    if 0 in r:
        data = os.read(0, 65536)
        if data:
            os.write(fd, data)
        else:
            stdin_open = False
_, status = os.waitpid(pid, 0)
if os.WIFEXITED(status):
    sys.stderr.write(f"exit {os.WEXITSTATUS(status)}\n")
else:
    sys.stderr.write(f"signal {os.WTERMSIG(status)}\n")
sys.stderr.flush()
"#;

#[derive(Default)]
struct Seen {
    output: Vec<u8>,
    /// `exit N` or `signal N` once the program ended.
    end: Option<String>,
    /// The driver's stdout reached its end: `output` holds everything the program wrote.
    output_done: bool,
}

/// A program running in a pty.
pub struct Pty {
    driver: Child,
    stdin: Option<ChildStdin>,
    /// The program's pid (not the driver's).
    pub pid: u32,
    seen: Arc<(Mutex<Seen>, Condvar)>,
}

impl Pty {
    /// Starts `program args` in a `cols`x`rows` pty with these extra environment variables.
    pub fn spawn(program: &str, args: &[&str], env: &[(&str, &str)], cols: u16, rows: u16) -> Pty {
        let mut cmd = Command::new("python3");
        cmd.arg("-c")
            .arg(DRIVER)
            .arg(rows.to_string())
            .arg(cols.to_string())
            .arg(program)
            .args(args)
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut driver = cmd
            .spawn()
            .expect("python3 runs the pty driver (python3 is required for the pty tests)");
        let stdin = driver.stdin.take();
        let mut stderr = BufReader::new(driver.stderr.take().expect("stderr"));
        let mut first = String::new();
        stderr
            .read_line(&mut first)
            .expect("the driver reports the pid");
        let pid = first
            .trim()
            .strip_prefix("pid ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the pty driver said {first:?}"));
        let seen: Arc<(Mutex<Seen>, Condvar)> = Arc::default();
        let mut stdout = driver.stdout.take().expect("stdout");
        let s = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.0.lock().unwrap().output.extend_from_slice(&buf[..n]);
                s.1.notify_all();
            }
            s.0.lock().unwrap().output_done = true;
            s.1.notify_all();
        });
        let s = seen.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if line.starts_with("exit ") || line.starts_with("signal ") {
                    s.0.lock().unwrap().end = Some(line);
                    s.1.notify_all();
                }
            }
        });
        Pty {
            driver,
            stdin,
            pid,
            seen,
        }
    }

    /// Types these bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to the pty");
        stdin.flush().expect("flush");
    }

    /// Everything the program wrote so far.
    pub fn output(&self) -> Vec<u8> {
        self.seen.0.lock().unwrap().output.clone()
    }

    /// Waits until `cond` holds for the output (true), or `limit` passes (false).
    pub fn wait_for(&self, limit: Duration, cond: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let (lock, cvar) = &*self.seen;
        let mut seen = lock.lock().unwrap();
        loop {
            if cond(&seen.output) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            seen = cvar.wait_timeout(seen, deadline - now).unwrap().0;
        }
    }

    /// Waits until the output contains `text`.
    pub fn wait_for_text(&self, limit: Duration, text: &str) -> bool {
        self.wait_for(limit, |out| contains(out, text.as_bytes()))
    }

    /// Sends a signal (`KILL`, `TERM`, `HUP`, ...) to the program.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {}", self.pid);
    }

    /// Waits for the program to end: `exit N` or `signal N`, or `None` after `limit`. Once it
    /// returns an end, [`Pty::output`] holds all the program wrote: the exit line and the
    /// output come through different pipes, read by different threads, so the last output
    /// can trail the exit line (it did, on a loaded machine).
    pub fn wait_end(&self, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        let (lock, cvar) = &*self.seen;
        let mut seen = lock.lock().unwrap();
        while seen.end.is_none() || !seen.output_done {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            seen = cvar.wait_timeout(seen, deadline - now).unwrap().0;
        }
        seen.end.clone()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // A test that failed half-way must not leave the program running.
        if self.seen.0.lock().map(|s| s.end.is_none()).unwrap_or(true) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(self.pid.to_string())
                .status();
        }
        self.stdin.take();
        let _ = self.driver.wait();
    }
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The printable text of terminal output, escape sequences (CSI, OSC, two-byte ESC) removed.
pub fn visible_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            if !c.is_control() {
                out.push(c);
            }
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // Until BEL or ESC \.
                while let Some(c) = chars.next() {
                    if c == '\x07' || c == '\x1b' && chars.next_if_eq(&'\\').is_some() {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether the visible characters of `needle` appear in `haystack` in order (not
/// necessarily together): a screen updated a few cells at a time still writes them in typing
/// order, and skips the blanks that were blank already.
pub fn in_order(haystack: &str, needle: &str) -> bool {
    let mut hay = haystack.chars();
    needle
        .chars()
        .filter(|c| !c.is_whitespace())
        .all(|n| hay.any(|h| h == n))
}
