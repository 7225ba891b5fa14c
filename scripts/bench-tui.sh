#!/usr/bin/env bash
# Measures the TUI as a user runs it (release build, demo-like mock config, a real pty):
# time to first frame, idle CPU, CPU while streaming 1,000 tokens/s, RSS.
# Usage: scripts/bench-tui.sh   (builds target/release/llmux if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x target/release/llmux ]] || cargo build --release
work=$(mktemp -d)
rate=${RATE:-1000}   # tokens per second the mock streams
trap 'rm -rf "$work"' EXIT
cat > "$work/config.yaml" <<'YAML'
model_list:
  - model_name: firehose
    litellm_params: { model: mock/firehose, mock_tokens: 40000, mock_tokens_per_s: RATE, mock_ttft_ms: 10,
                      input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 }
YAML
sed -i "s/RATE/$rate/" "$work/config.yaml"
export LLMUX_DATA_DIR="$work/data" XDG_CONFIG_HOME="$work/cfg"
python3 - "$work/config.yaml" <<'PY'
import os, pty, select, sys, time, signal, fcntl, termios, struct

config = sys.argv[1]
HZ = os.sysconf("SC_CLK_TCK")

def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def drain(fd, seconds):
    end = time.monotonic() + seconds
    got = b""
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return got
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                got += os.read(fd, 65536)
            except OSError:
                return got

start = time.monotonic()
pid, fd = pty.fork()
if pid == 0:
    os.execv("target/release/llmux", ["llmux", "--config", config])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
os.kill(pid, signal.SIGWINCH)
buf = b""
while b"Conversation" not in buf:
    r, _, _ = select.select([fd], [], [], 5)
    if not r:
        sys.exit("no frame within 5 s")
    buf += os.read(fd, 65536)
first_frame_ms = (time.monotonic() - start) * 1000
drain(fd, 1.0)
idle_rss = rss_kb(pid)
t0 = cpu_ticks(pid); bytes_idle = len(drain(fd, 5.0)); t1 = cpu_ticks(pid)
idle_pct = 100.0 * (t1 - t0) / HZ / 5.0
os.write(fd, b"go\r")
drain(fd, 2.0)
t0 = cpu_ticks(pid); out = drain(fd, 20.0); t1 = cpu_ticks(pid)
stream_pct = 100.0 * (t1 - t0) / HZ / 20.0
stream_rss = rss_kb(pid)
os.write(fd, b"\x11")  # Ctrl+Q
drain(fd, 1.0)
try:
    os.kill(pid, signal.SIGTERM)
except ProcessLookupError:
    pass
print(f"first frame         {first_frame_ms:8.0f} ms")
print(f"idle CPU            {idle_pct:8.1f} % of a core  ({bytes_idle} bytes written in 5 s)")
print(f"streaming {os.environ.get('RATE', '1000'):>5} tok/s{stream_pct:8.1f} % of a core  ({len(out) / 20 / 1024:.1f} KiB/s to the terminal)")
print(f"RSS idle / streaming{idle_rss / 1024:8.1f} / {stream_rss / 1024:.1f} MiB")
PY
