#!/usr/bin/env bash
# Overhead of `llmux serve`: the same load straight to a fast fake upstream, through a bare
# pass-through proxy (the floor: what one proxy hop costs on this machine), and through llmux,
# side by side. Loopback only; every process it starts is stopped on exit.
#
#   scripts/bench-serve.sh            # 10 s per run
#   DURATION=5 scripts/bench-serve.sh
#   ROUNDS=3 DURATION=4 scripts/bench-serve.sh   # each scenario 3 times in turn: medians
#   LAYOUT=shared scripts/bench-serve.sh   # every process on one core (see below)
#   LLMUX_BIN=/tmp/old/llmux scripts/bench-serve.sh   # another build (A/B); no cargo build
#   OTEL=1 scripts/bench-serve.sh   # llmux with `callbacks: [otel]`, exporting every request's
#                                   # trace to a dummy collector (a second fake upstream that
#                                   # answers each export 200): run with and without, compare
#
# Builds the release binary, the fake upstream (examples/fake_upstream.rs) and the floor proxy
# (examples/floor_proxy.rs) once, needs `wrk` (Debian package; installed with apt-get when
# missing and running as root), and prints: p50/p99 latency and requests/s at concurrency 1
# and 16, plain and streaming (20 content chunks), direct vs the floor vs llmux; the CPU time
# per request of the floor and of llmux (from /proc/PID/stat) and llmux's RSS idle and after
# load. Numbers from a box where something else is compiling are noise: check `uptime` first.
#
# LAYOUT=split (the default, on two or more cores): the proxies (floor, llmux) on CPU 1, the
# upstream and wrk on CPU 0, so they do not fight for one core. Every hop then crosses cores,
# and on a VM whose idle vCPUs halt (Firecracker with haltpoll off) each cross-core wake-up
# costs tens of µs of the host's time: the floor column shows how much. LAYOUT=shared puts
# everything on CPU 0: no cross-core wake-ups, and at c=1 the added latency is the proxy's own
# work; at c=16 the proxy competes with wrk and the upstream for the core.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/serve-load.sh
. scripts/serve-load.sh

DURATION=${DURATION:-10}
# Rounds per scenario: direct, floor and llmux run in turn, ROUNDS times, and each figure is
# the median over the rounds. The VM's speed drifts by tens of percent within minutes;
# interleaving and medians keep one slow minute from deciding a column.
ROUNDS=${ROUNDS:-1}
WARMUP=${WARMUP:-2}
LAYOUT=${LAYOUT:-split}
OTEL=${OTEL:-0}
case "$LAYOUT" in split|shared) ;; *) echo "bench-serve: LAYOUT is split or shared" >&2; exit 2 ;; esac

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
    else
        echo "bench-serve: needs wrk (apt-get install wrk)" >&2
        exit 2
    fi
fi

BIN=${LLMUX_BIN:-target/release/llmux}
FAKE=${FAKE_BIN:-target/release/examples/fake_upstream}
FLOOR=${FLOOR_BIN:-target/release/examples/floor_proxy}
if [ -z "${LLMUX_BIN:-}" ] || [ ! -x "$FAKE" ] || [ ! -x "$FLOOR" ]; then
    echo "building release (llmux, the fake upstream and the floor proxy)…" >&2
    cargo build --release --quiet --bin llmux --example fake_upstream --example floor_proxy
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

CORES=$(nproc)
PIN0=(); PIN1=()
if [ "$CORES" -ge 2 ] && command -v taskset >/dev/null; then
    PIN0=(taskset -c 0); PIN1=(taskset -c 1)
    [ "$LAYOUT" = shared ] && PIN1=(taskset -c 0)
fi
pin() { # pin CPU CMD...: run on one core when there are two (taskset execs: same PID)
    local cpu=$1; shift
    if [ "$cpu" = 0 ]; then "${PIN0[@]}" "$@"; else "${PIN1[@]}" "$@"; fi
}

wait_for_line() { # wait_for_line FILE PATTERN
    for _ in $(seq 1 200); do
        if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "bench-serve: timed out waiting for '$2' in $1" >&2
    cat "$1" >&2
    exit 1
}

"${PIN0[@]}" "$FAKE" 127.0.0.1:0 >"$WORK/fake.out" 2>&1 &
PIDS+=($!)
wait_for_line "$WORK/fake.out" "listening on"
UPSTREAM=$(sed -n 's/^listening on //p' "$WORK/fake.out")

"${PIN1[@]}" "$FLOOR" 127.0.0.1:0 "${UPSTREAM#http://}" >"$WORK/floor.out" 2>&1 &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
wait_for_line "$WORK/floor.out" "listening on"
FLOOR_URL=$(sed -n 's/^listening on //p' "$WORK/floor.out")

write_bench_config "$WORK/config.yaml" "$UPSTREAM"
if [ "$OTEL" = 1 ]; then
    # The dummy collector: the fake upstream answers any POST 200, which the OTLP exporter
    # takes as a sent batch; on the upstream's core.
    "${PIN0[@]}" "$FAKE" 127.0.0.1:0 >"$WORK/collector.out" 2>&1 &
    PIDS+=($!)
    wait_for_line "$WORK/collector.out" "listening on"
    COLLECTOR=$(sed -n 's/^listening on //p' "$WORK/collector.out")
    printf 'litellm_settings:\n  callbacks: [otel]\nenvironment_variables:\n  OTEL_EXPORTER_OTLP_ENDPOINT: %s\n' \
        "$COLLECTOR" >>"$WORK/config.yaml"
fi
LLMUX_DATA_DIR="$WORK/data" "${PIN1[@]}" "$BIN" --config "$WORK/config.yaml" serve --bind 127.0.0.1:0 \
    >"$WORK/llmux.out" 2>&1 &
LLMUX_PID=$!
PIDS+=("$LLMUX_PID")
wait_for_line "$WORK/llmux.out" "listening on"
LLMUX=$(sed -n 's/^llmux serve: listening on \(http:[^ ]*\).*/\1/p' "$WORK/llmux.out")

write_wrk_scripts "$WORK"

# Sanity: all three answer.
for target in "$UPSTREAM" "$FLOOR_URL" "$LLMUX"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
        -d '{"model":"bench","messages":[{"role":"user","content":"hi"}]}' "$target/v1/chat/completions")
    [ "$code" = 200 ] || { echo "bench-serve: $target answered $code" >&2; exit 1; }
done

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
RSS_IDLE=$(rss_kb "$LLMUX_PID")

# to_us VALUE: wrk's "123.45us" / "1.20ms" / "1.01s" in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") print n; else if (u == "ms") print n * 1000; else if (u == "s") print n * 1000000; else print n
    }'
}

# run TARGET STREAM CONNS → "p50_us p99_us req_per_s requests"
run() {
    local target=$1 stream=$2 conns=$3 threads=1
    [ "$conns" -gt 1 ] && threads=2
    pin 0 wrk -t1 -c"$conns" -d"${WARMUP}s" -s "$WORK/$stream.lua" "$target/v1/chat/completions" >/dev/null
    local out
    out=$(pin 0 wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency -s "$WORK/$stream.lua" \
        "$target/v1/chat/completions")
    if grep -q "Non-2xx" <<<"$out"; then
        echo "bench-serve: errors during the run against $target:" >&2
        echo "$out" >&2
    fi
    local p50 p99 rps reqs
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    echo "$p50 $p99 $rps $reqs"
}

# measure TARGET STREAM CONNS PID → "p50_us p99_us req_per_s cpu_us_per_request"
measure() {
    local before after p50 p99 rps reqs
    before=$(cpu_ticks "$4")
    read -r p50 p99 rps reqs <<<"$(run "$1" "$2" "$3")"
    after=$(cpu_ticks "$4")
    # CPU over the measured run and its warm-up; requests of the measured run only, scaled
    # to both (so this slightly overstates the cost when the warm-up ran slower).
    local cpu
    cpu=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$reqs" -v w="$WARMUP" -v d="$DURATION" \
        'BEGIN { printf "%.0f", t / hz * 1000000 / (n * (w + d) / d) }')
    echo "$p50 $p99 $rps $cpu"
}

# median V...: the middle value (the lower middle of an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

declare -A CPU_US FLOOR_CPU_US
printf '\nllmux serve overhead, layout %s, %ss runs, %s round(s), %s cores, exporter %s, load: %s\n\n' "$LAYOUT" \
    "$DURATION" "$ROUNDS" "$CORES" "$([ "$OTEL" = 1 ] && echo "on (otel)" || echo off)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-11s | %6s %6s %7s | %6s %7s | %6s %6s %7s | %8s %8s | %s\n' \
    "scenario" "p50" "p99" "req/s" "p50" "req/s" "p50" "p99" "req/s" "floor" "llmux" "llmux/direct"
printf '%-11s | %-22s | %-14s | %-22s | %-17s | %s\n' "(µs)" "direct to upstream" "floor proxy" "through llmux" "added p50" "req/s ratio"
printf -- '------------+------------------------+----------------+------------------------+-------------------+-------------\n'
for stream in false true; do
    for conns in 1 16; do
        name="plain"; [ "$stream" = true ] && name="stream"
        D50=(); D99=(); DRPS=(); F50=(); FRPS=(); FCPU=(); L50=(); L99=(); LRPS=(); LCPU=()
        FADDED=(); ADDED=(); RATIO=()
        for _ in $(seq 1 "$ROUNDS"); do
            read -r d50 d99 drps _ <<<"$(run "$UPSTREAM" "$stream" "$conns")"
            read -r f50 _ frps fcpu <<<"$(measure "$FLOOR_URL" "$stream" "$conns" "$FLOOR_PID")"
            read -r l50 l99 lrps lcpu <<<"$(measure "$LLMUX" "$stream" "$conns" "$LLMUX_PID")"
            D50+=("$d50"); D99+=("$d99"); DRPS+=("$drps"); F50+=("$f50"); FRPS+=("$frps")
            FCPU+=("$fcpu"); L50+=("$l50"); L99+=("$l99"); LRPS+=("$lrps"); LCPU+=("$lcpu")
            # Added latency and the throughput ratio within a round, against that round's direct.
            FADDED+=("$(awk -v a="$f50" -v b="$d50" 'BEGIN { print a - b }')")
            ADDED+=("$(awk -v a="$l50" -v b="$d50" 'BEGIN { print a - b }')")
            RATIO+=("$(awk -v a="$lrps" -v b="$drps" 'BEGIN { print a / b }')")
        done
        CPU_US["$name c=$conns"]=$(median "${LCPU[@]}")
        FLOOR_CPU_US["$name c=$conns"]=$(median "${FCPU[@]}")
        fadded=$(awk -v v="$(median "${FADDED[@]}")" 'BEGIN { printf "%+.0f", v }')
        added=$(awk -v v="$(median "${ADDED[@]}")" 'BEGIN { printf "%+.0f", v }')
        ratio=$(awk -v v="$(median "${RATIO[@]}")" 'BEGIN { printf "%.2f", v }')
        printf '%-11s | %6.0f %6.0f %7.0f | %6.0f %7.0f | %6.0f %6.0f %7.0f | %8s %8s | %s\n' \
            "$name c=$conns" "$(median "${D50[@]}")" "$(median "${D99[@]}")" "$(median "${DRPS[@]}")" \
            "$(median "${F50[@]}")" "$(median "${FRPS[@]}")" \
            "$(median "${L50[@]}")" "$(median "${L99[@]}")" "$(median "${LRPS[@]}")" \
            "$fadded" "$added" "$ratio"
    done
done
RSS_AFTER=$(rss_kb "$LLMUX_PID")
echo
printf 'CPU per request (µs)  %6s %6s\n' "floor" "llmux"
for k in "plain c=1" "plain c=16" "stream c=1" "stream c=16"; do
    printf '  %-19s %6s %6s\n' "$k" "${FLOOR_CPU_US[$k]}" "${CPU_US[$k]}"
done
printf 'llmux RSS idle: %.1f MB, after load: %.1f MB\n' "$(awk -v k="$RSS_IDLE" 'BEGIN{print k/1024}')" \
    "$(awk -v k="$RSS_AFTER" 'BEGIN{print k/1024}')"
