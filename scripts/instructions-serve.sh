#!/usr/bin/env bash
# User-space instructions per request of `llmux serve`, counted by valgrind's callgrind: the
# same count for the same build and load whatever else the machine is doing, so two builds
# compare exactly where scripts/bench-serve.sh's timings only compare within noise. It leaves
# out the kernel (about half of serve's CPU: socket writes and wake-ups).
#
#   scripts/instructions-serve.sh                     # plain and streamed, target/release/llmux
#   LLMUX_BIN=/tmp/old/llmux scripts/instructions-serve.sh
#   SECONDS_PER_RUN=10 scripts/instructions-serve.sh
#
# Starts the fake upstream (examples/fake_upstream.rs) and `llmux serve` under callgrind,
# warms up, zeroes the counters, sends requests one at a time with wrk, dumps the counters
# and divides by the requests wrk completed. Needs valgrind and wrk (Debian packages). The
# profile is left in the work directory it prints, for `callgrind_annotate --inclusive=yes`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/serve-load.sh
. scripts/serve-load.sh

SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}
BIN=${LLMUX_BIN:-target/release/llmux}
FAKE=${FAKE_BIN:-target/release/examples/fake_upstream}
for tool in valgrind callgrind_control callgrind_annotate wrk; do
    command -v "$tool" >/dev/null || { echo "instructions-serve: needs $tool (apt-get install valgrind wrk)" >&2; exit 2; }
done
if [ -z "${LLMUX_BIN:-}" ] || [ ! -x "$FAKE" ]; then
    cargo build --release --quiet --bin llmux --example fake_upstream
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

"$FAKE" 127.0.0.1:0 >"$WORK/fake.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/fake.out" && break; sleep 0.05; done
UPSTREAM=$(sed -n 's/^listening on //p' "$WORK/fake.out")
write_bench_config "$WORK/config.yaml" "$UPSTREAM"
LLMUX_DATA_DIR="$WORK/data" valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    "$BIN" --config "$WORK/config.yaml" serve --bind 127.0.0.1:0 >"$WORK/llmux.out" 2>&1 &
VG_PID=$!
PIDS+=("$VG_PID")
for _ in $(seq 1 300); do grep -q "listening on" "$WORK/llmux.out" && break; sleep 0.1; done
LLMUX=$(sed -n 's/^llmux serve: listening on \(http:[^ ]*\).*/\1/p' "$WORK/llmux.out")
[ -n "$LLMUX" ] || { echo "instructions-serve: llmux did not start" >&2; cat "$WORK/llmux.out" >&2; exit 1; }

dump=0
write_wrk_scripts "$WORK"
for stream in false true; do
    wrk -t1 -c1 -d2s -s "$WORK/$stream.lua" "$LLMUX/v1/chat/completions" >/dev/null
    callgrind_control -z "$VG_PID" >/dev/null 2>&1
    n=$(wrk -t1 -c1 -d"${SECONDS_PER_RUN}s" -s "$WORK/$stream.lua" "$LLMUX/v1/chat/completions" |
        awk '/requests in/ {print $1}')
    callgrind_control -d "$VG_PID" >/dev/null 2>&1
    dump=$((dump + 1))
    for _ in $(seq 1 50); do [ -s "$WORK/callgrind.out.$dump" ] && break; sleep 0.1; done
    total=$(callgrind_annotate "$WORK/callgrind.out.$dump" 2>/dev/null |
        awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    name=plain; [ "$stream" = true ] && name="stream (20 chunks)"
    printf '%-19s %6d requests, %7d instructions per request\n' "$name" "$n" $((total / n))
done
echo "profiles: $WORK/callgrind.out.1 (plain), $WORK/callgrind.out.2 (stream)"
