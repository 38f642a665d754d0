#!/usr/bin/env bash
# Instructions per parsed message (parse + routing-header reads), sip-msg vs
# rsip, counted by callgrind. Instruction counts do not depend on machine
# load, unlike wall-clock timings.
#
#   bench/parse-callgrind.sh [N] [invite|register|200]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
MSG=${2:-invite}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install -y valgrind)" >&2; exit 1; }
cargo build --release -q -p sip-msg --example parse_loop
BIN="$CARGO_TARGET_DIR/release/examples/parse_loop"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

count() { # parser iterations -> total instructions (Ir)
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$1.$2" "$BIN" "$1" "$2" "$MSG" \
        >/dev/null 2>"$OUT/log.$1.$2"
    grep -E '^(summary|totals):' "$OUT/cg.$1.$2" | head -n1 | awk '{print $2}'
}

# Two runs per parser (N and 2N messages) so that start-up cost cancels out.
printf '%-14s %14s\n' parser "instr/message"
# sip-msg and rsip: parse + routing-header reads (the benchmark's work);
# sip-msg-parse: Message::parse alone.
for p in sip-msg rsip sip-msg-parse; do
    a=$(count "$p" "$N")
    b=$(count "$p" "$((2 * N))")
    per=$(( (b - a) / N ))
    printf '%-14s %14d\n' "$p" "$per"
    eval "per_${p//-/_}=$per"
done
awk -v s="$per_sip_msg" -v r="$per_rsip" 'BEGIN { printf "ratio          %13.1fx fewer instructions with sip-msg (%s)\n", r / s, "'"$MSG"'" }'
