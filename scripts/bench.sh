#!/usr/bin/env bash
# Runs every benchmark of BENCHMARKS.md and rewrites its tables and
# docs/bench.svg, in one go:
#
#   scripts/bench.sh            # everything (about 27 minutes on 2 cores)
#   QUICK=1 scripts/bench.sh    # a fast look: criterion --quick, fewer messages
#   PARTS=codec scripts/bench.sh  # the codec only (about 20 minutes); the
#                               # end-to-end tables keep their last results
#   CODEC_ROUNDS=3 scripts/bench.sh  # fewer codec rounds (default 5)
#
# Needs mosquitto and mosquitto-clients (apt-get install -y mosquitto
# mosquitto-clients), valgrind (for the instruction counts) and python3.
# Everything runs on 127.0.0.1; no test of the crate depends on any of it.
#
# Timing needs a quiet machine: the script first waits (up to
# BENCH_WAIT_MAX seconds, default 1200) for the 1-minute load average to
# fall below BENCH_MAX_LOAD (default 0.6), and records the load it got.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${CARGO_TARGET_DIR:-target}"
OUT="$TARGET/bench"
mkdir -p "$OUT"
QUICK="${QUICK:-0}"
PARTS="${PARTS:-codec e2e}"
MAX_LOAD="${BENCH_MAX_LOAD:-0.6}"
WAIT_MAX="${BENCH_WAIT_MAX:-1200}"
CODEC_ROUNDS="${CODEC_ROUNDS:-5}"

step() { printf '\n== %s ==\n' "$*" >&2; }

for tool in mosquitto mosquitto_pub mosquitto_sub python3; do
    command -v "$tool" >/dev/null || { echo "bench.sh: $tool is not installed" >&2; exit 1; }
done

# 10,000 connections need 10,000 descriptors in the client process and as
# many in mosquitto: take the hard limit (the e2e bench raises its own too).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

step "building the benchmarks"
cargo bench --no-run --bench codec --bench codec_counts --bench codec_paired --bench e2e

load1() { cut -d' ' -f1 /proc/loadavg; }
quiet() { awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }'; }
step "waiting for a quiet machine (1-minute load < $MAX_LOAD, at most ${WAIT_MAX}s)"
waited=0
while ! quiet && [ "$waited" -lt "$WAIT_MAX" ]; do
    echo "load $(load1), waiting" >&2
    sleep 30
    waited=$((waited + 30))
done
echo "load average: $(cat /proc/loadavg)" >&2

{
    echo "date:        $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "cpu:         $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
    echo "memory:      $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel:      $(uname -sr)"
    echo "rustc:       $(rustc --version)"
    echo "mosquitto:   $(mosquitto -h 2>/dev/null | head -1)"
    echo "load before: $(cat /proc/loadavg)"
} > "$OUT/machine.txt"
grep -E '^name = "(rumqttc|mqttrs|mqtt-protocol)"' -A1 Cargo.lock | grep -v '^--$' | paste - - | sed 's/name = //; s/version = //; s/"//g' \
    | awk '{ printf "%s %s, ", $1, $2 }' | sed 's/, $/\n/' | sed 's/^/peer crates: /' >> "$OUT/machine.txt"

case " $PARTS " in *" codec "*)
    # In rounds of short measurements, every other round in the reverse
    # order: the tables take each ratio round by round (plover and the peer
    # measured seconds apart) and give the median, which a drift in the
    # machine's speed over the minutes of a run does not move.
    if [ "$QUICK" = 1 ]; then
        rounds=1 codec_args="--quick"
    else
        rounds="$CODEC_ROUNDS" codec_args="--warm-up-time 0.3 --measurement-time 1"
    fi
    : > "$OUT/codec_rounds.txt"
    for r in $(seq 1 "$rounds"); do
        order=forward
        [ $((r % 2)) = 0 ] && order=reverse
        step "codec round $r of $rounds ($order): criterion, all crates side by side (benches/codec.rs)"
        # shellcheck disable=SC2086 # codec_args is a list of arguments
        PLOVER_BENCH_ORDER=$order cargo bench --bench codec -- $codec_args --noplot --save-baseline "round-$r"
        echo "round-$r" >> "$OUT/codec_rounds.txt"
    done

    step "codec: paired rounds, every crate timed in turn (benches/codec_paired.rs)"
    paired_args=""
    [ "$QUICK" = 1 ] && paired_args="--rounds 31"
    # shellcheck disable=SC2086 # paired_args is a list of arguments
    cargo bench --bench codec_paired -- $paired_args --out "$OUT/paired.jsonl"

    step "codec: allocations per packet (benches/codec_counts.rs)"
    cargo bench --bench codec_counts -- --out "$OUT/counts.jsonl"

    step "codec: instruction counts under callgrind"
    COUNTS_BIN=$(cargo bench --no-run --bench codec_counts 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
    : > "$OUT/callgrind.jsonl"
    if command -v valgrind >/dev/null && [ -n "$COUNTS_BIN" ]; then
        for spec in "publish_qos1_v311/64B 2000" "publish_qos1_v311/1MiB 200" "mixed_v311/10000 2" "acks_v311/1000 20" \
                    "connect_v311/1 2000" "subscribe_v311/1 2000" \
                    "publish_qos1_v5/64B 2000" "mixed_v5/10000 2" "acks_v5/1000 20" "connect_v5/1 2000" "subscribe_v5/1 2000"; do
            set -- $spec
            case_id=$1 iters=$2
            crates="plover plover-slice rumqttc"
            case "$case_id" in *v311*) crates="plover plover-slice rumqttc mqttrs mqtt-protocol" ;; esac
            for crate in $crates; do
                ops="decode encode"
                # plover-slice differs from plover only in how it decodes.
                [ "$crate" = plover-slice ] && ops=decode
                for op in $ops; do
                    cg="$OUT/callgrind.out"
                    valgrind --tool=callgrind --callgrind-out-file="$cg" --toggle-collect='*measured*' \
                        "$COUNTS_BIN" --callgrind "$case_id" "$crate" "$op" "$iters" >/dev/null 2>"$OUT/callgrind.log"
                    total=$(sed -n 's/^summary: *//p; s/^totals: *//p' "$cg" | head -1)
                    echo "{\"case\":\"$case_id\",\"crate\":\"$crate\",\"op\":\"$op\",\"iters\":$iters,\"instructions\":$(awk -v t="$total" -v n="$iters" 'BEGIN { printf "%.0f", t / n }')}" \
                        >> "$OUT/callgrind.jsonl"
                done
            done
        done
        rm -f "$OUT/callgrind.out"
    else
        echo "valgrind not installed: no instruction counts" >&2
    fi
    ;;
esac

case " $PARTS " in *" e2e "*)
    step "end to end through mosquitto (benches/e2e.rs)"
    if [ "$QUICK" = 1 ]; then
        cargo bench --bench e2e -- --quick --out "$OUT/e2e.jsonl"
    else
        cargo bench --bench e2e -- --out "$OUT/e2e.jsonl"
    fi
    ;;
esac

echo "load after:  $(cat /proc/loadavg)" >> "$OUT/machine.txt"
step "tables"
python3 scripts/bench_report.py
