#!/usr/bin/env bash
# Measures the TUI as a user runs it (release build, mock deployments, a real terminal):
#  1. bytes written to the terminal per byte of answer: a 2,000-byte markdown answer streamed
#     at 100 tok/s into the TUI at 80x24 and at 160x48, in a private tmux server whose
#     pipe-pane records every byte the TUI writes (tmux is the terminal: it answers the TUI's
#     queries, and its screen must show the answer's last words afterwards, so a renderer
#     that saves bytes by not drawing fails);
#  2. time to first frame, idle CPU, CPU while streaming 1,000 tokens/s, RSS (python pty).
# Usage: scripts/bench-tui.sh [--bytes-only]   (builds target/release/llmux if needed)
# Environment: LLMUX_BIN (default target/release/llmux), SIZES (default "80x24 160x48"),
#   TUI_TOKENS_PER_S (for 1., default 100), RATE (tok/s for 2., default 1000),
#   BENCH_KEEP=DIR keeps what the TUI wrote and the final screen of 1. there.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LLMUX_BIN:-target/release/llmux}
[[ -x $bin ]] || cargo build --release
bin=$(realpath "$bin")
work=$(mktemp -d)
rate=${RATE:-1000}   # tokens per second the mock streams
sock="bench-tui-$$"
t() { tmux -L "$sock" "$@"; }
trap 't kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

# ---- 1. bytes on the wire ----
answer_json=$(python3 - <<'PY'
import json
para = ("The router picks a deployment for each {w} request, and when one fails it retries, "
        "cools the deployment down, and falls back to the next group in the list. ")
words = ["latency", "budget", "cooldown", "fallback", "retry", "usage", "tokens", "stream"]
parts, i = ["## How routing works\n\n"], 0
while sum(map(len, parts)) < 2100:
    i += 1
    if i % 4 == 0:
        parts.append(f"\n- each {words[i % 8]} is counted once\n- the {words[(i + 3) % 8]} is kept\n\n")
    else:
        parts.append(para.format(w=words[i % 8]) + ("\n\n" if i % 2 == 0 else ""))
text = "".join(parts)[:1985] + " the last word."
assert len(text.encode()) == 2000, len(text.encode())
print(json.dumps(text))
PY
)
cat > "$work/answer.yaml" <<YAML
model_list:
  - model_name: answer
    litellm_params: { model: mock/answer, mock_response: $answer_json,
                      mock_tokens_per_s: ${TUI_TOKENS_PER_S:-100}, mock_ttft_ms: 200,
                      input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 }
YAML
# Prints the bytes the TUI wrote from Enter until the answer finished (and 1 s after).
bytes_for() {
  local size=$1 raw="$work/raw-$1" screen="$work/screen-$1" i
  : > "$raw"
  t kill-server 2>/dev/null || true
  t -f /dev/null new-session -d -s b -x "${size%x*}" -y "${size#*x}" \
    "env LLMUX_DATA_DIR=$work/data-$size XDG_CONFIG_HOME=$work/cfg TERM=xterm-256color $bin --config $work/answer.yaml"
  t set -g status off
  t pipe-pane -o -t b "cat >> $raw"
  for i in $(seq 100); do t capture-pane -p -t b | grep -q 'Type a message' && break; sleep 0.1; done
  t send-keys -t b 'go'
  sleep 1
  local before; before=$(stat -c %s "$raw")
  t send-keys -t b Enter
  for i in $(seq 600); do t capture-pane -p -t b | grep -q 'last: ' && break; sleep 0.1; done
  sleep 1
  local after; after=$(stat -c %s "$raw")
  t capture-pane -p -t b > "$screen"
  t send-keys -t b C-q
  sleep 0.3
  if ! grep -q 'the last word\.' "$screen" || ! grep -q 'last: ' "$screen"; then
    echo "the finished answer is not on the screen at $size:" >&2
    cat "$screen" >&2
    exit 1
  fi
  if [[ -n ${BENCH_KEEP:-} ]]; then
    mkdir -p "$BENCH_KEEP"
    tail -c +$((before + 1)) "$raw" | head -c $((after - before)) > "$BENCH_KEEP/stream-$size.raw"
    cp "$screen" "$BENCH_KEEP/screen-$size.txt"
  fi
  echo $((after - before))
}
echo "bytes written to the terminal per answer byte (2,000-byte answer at ${TUI_TOKENS_PER_S:-100} tok/s):"
for size in ${SIZES:-80x24 160x48}; do
  bytes=$(bytes_for "$size")
  printf '  %-8s %7d bytes  %5.1fx\n' "$size" "$bytes" "$(bc -l <<< "$bytes / 2000")"
done
[[ ${1:-} == --bytes-only ]] && exit 0

# ---- 2. first frame, CPU, memory ----
cat > "$work/config.yaml" <<'YAML'
model_list:
  - model_name: firehose
    litellm_params: { model: mock/firehose, mock_tokens: 40000, mock_tokens_per_s: RATE, mock_ttft_ms: 10,
                      input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 }
YAML
sed -i "s/RATE/$rate/" "$work/config.yaml"
export LLMUX_DATA_DIR="$work/data" XDG_CONFIG_HOME="$work/cfg"
LLMUX_BIN_ABS=$bin python3 - "$work/config.yaml" <<'PY'
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
    os.execv(os.environ["LLMUX_BIN_ABS"], ["llmux", "--config", config])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
os.kill(pid, signal.SIGWINCH)
buf = b""
answered = False
while b"Conversation" not in buf:
    r, _, _ = select.select([fd], [], [], 5)
    if not r:
        sys.exit("no frame within 5 s")
    buf += os.read(fd, 65536)
    # Answer the primary device attributes query as a terminal without the kitty keyboard
    # protocol does; left unanswered, crossterm waits 2 s for it before the first frame.
    if not answered and b"\x1b[c" in buf:
        os.write(fd, b"\x1b[?62;22c")
        answered = True
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
