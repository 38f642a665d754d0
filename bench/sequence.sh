#!/usr/bin/env bash
# Points in sequence on ONE server: what a call costs in the steady state,
# when each point also pays for the transactions the previous one left
# (they end `wt_timer` after their final reply, after sipbench's point is
# over). run.sh measures each point the same way within a round; this
# script shows the effect alone, thread by thread.
#
#   bench/sequence.sh [kamailio|siprouter] SCENARIO SECONDS RATE...
#
# SCENARIO: stateless or stateful (bench/configs/). For each RATE, one
# `sipbench call` point of SECONDS (up to 3 s of drain) against the same
# server, two workers; prints the server's run time per call from every
# thread's /proc/.../schedstat (nanoseconds, not clock ticks), per thread
# for siprouter (its timer thread ends the transactions), its memory
# (PSS) and minor page faults per call. After the last point it waits
# AFTER seconds (default 8) and prints what the server spent meanwhile:
# the ends of the last point's transactions.
#
# Kamailio runs as in run.sh (-m 2048 -M 16, KAMAILIO_MEM, default tlsf).
#
# Example (docs/benchmarks.md, "Stateful calls in the steady state"):
#   bench/sequence.sh siprouter stateful 5 8000 8000 8000 8000
#   bench/sequence.sh kamailio stateful 5 8000 8000 8000 8000
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVER=${1:?server: kamailio or siprouter}
SCEN=${2:?scenario: stateless or stateful}
SECS=${3:?seconds per point}
shift 3
[ $# -gt 0 ] || { echo "give at least one rate" >&2; exit 2; }
AFTER=${AFTER:-8}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SR=$CARGO_TARGET_DIR/release/siprouter
SB=$CARGO_TARGET_DIR/release/sipbench
CFG=${CFG:-$ROOT/bench/configs/$SCEN.cfg}
for b in "$SB" $([ "$SERVER" = siprouter ] && echo "$SR"); do
    [ -x "$b" ] || { echo "$b missing: cargo build --release -p siprouter -p sipbench" >&2; exit 1; }
done
if [ "$SERVER" = kamailio ]; then
    command -v kamailio >/dev/null || { echo "kamailio missing (apt-get install -y kamailio)" >&2; exit 1; }
fi
OUT=$(mktemp -d)
case $SCEN in stateless | stateful) ;; *) echo "calls only: stateless or stateful" >&2; exit 2 ;; esac
if [ "$SERVER" = kamailio ]; then
    mem=${KAMAILIO_MEM:-tlsf}
    cmd=(kamailio -DD -E -f "$CFG" -n 2 -m 2048 -M 16 -x "$mem" -X "$mem")
else
    cmd=("$SR" -DD -E -f "$CFG" -n 2)
fi
setsid "${cmd[@]}" >"$OUT/server.log" 2>&1 &
PID=$!
cleanup() { kill -TERM -- "-$PID" 2>/dev/null || true; sleep 1; kill -KILL -- "-$PID" 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT
sleep 2

# One line per thread: "process.thread-name run-ns minor-faults".
snap() {
    local p t
    for p in $(pgrep -g "$PID"); do
        for t in /proc/"$p"/task/*; do
            [ -r "$t/schedstat" ] || continue
            printf '%s.%s %s %s\n' "$p" "$(tr ' ' '_' <"$t/comm")" \
                "$(awk '{print $1}' "$t/schedstat")" "$(awk '{print $10}' "$t/stat")"
        done
    done | sort
}
# Per-thread run time per op (threads above 0.05 us), total, faults.
report() {
    join "$1" "$2" | awk -v c="$3" -v per="$4" '
        { d = ($4 - $2) / 1e3 / c; t += d; f += $5 - $3
          split($1, n, "."); name[n[2]] += d }
        END { if (per == "yes") for (k in name) if (name[k] > 0.05) printf "%s %.1f  ", k, name[k]
              printf "| total %.1f us/op, minflt %.2f/op", t, f / c }'
}
# Proportional memory (shared pages counted once over Kamailio's processes).
pss() { for p in $(pgrep -g "$PID"); do cat /proc/"$p"/smaps_rollup; done | awk '/^Pss:/{s += $2} END {print s}'; }
per=no
[ "$SERVER" = siprouter ] && per=yes
for rate in "$@"; do
    snap >"$OUT/s0"
    "$SB" call -r "$rate" -d "$SECS" --drain 3 >"$OUT/sb.txt" 2>&1
    snap >"$OUT/s1"
    ops=$(grep -o "completed [0-9]*" "$OUT/sb.txt" | awk '{print $2}')
    failed=$(grep -o "failed [0-9]*" "$OUT/sb.txt" | head -1 | awk '{print $2}')
    [ "${ops:-0}" -gt 0 ] || { echo "point $rate: no call completed"; cat "$OUT/sb.txt"; exit 1; }
    echo "$SERVER $SCEN $rate/s: $ops calls, $failed failed; $(report "$OUT/s0" "$OUT/s1" "$ops" $per), pss $(pss) kB"
done
sleep "$AFTER"
snap >"$OUT/s2"
echo "in the ${AFTER} s after the last point (per call of it): $(report "$OUT/s1" "$OUT/s2" "$ops" $per)"
