#!/usr/bin/env bash
# Where a server's CPU goes in one benchmark scenario, counted by callgrind
# (instruction counts do not depend on the machine's load, unlike times).
#
#   bench/profile.sh SCENARIO [kamailio|siprouter] [CALLS] [RATE]
#
# Starts the server under `valgrind --tool=callgrind` with instrumentation
# off, turns it on for exactly the load (CALLS calls or registrations from
# sipbench at RATE per second, default 1000 at 100/s), stops the server and
# prints user-space instructions per operation (summed over all the
# server's processes and threads) and the top functions by self cost.
# Kernel time (system calls, the network stack) is not counted.
# Output files go to bench/results/profile-<scenario>-<server>/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCEN=${1:?scenario: stateless stateful registrar registrar-sqlite auth}
SERVER=${2:-siprouter}
CALLS=${3:-1000}
RATE=${4:-100}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SR=$CARGO_TARGET_DIR/release/siprouter
SB=$CARGO_TARGET_DIR/release/sipbench
OUT=$ROOT/bench/results/profile-$SCEN-$SERVER
rm -rf "$OUT"
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install -y valgrind)" >&2; exit 1; }

cfg=$ROOT/bench/configs/$SCEN.cfg
load="call"
defs=()
db=/dev/shm/sipbench-profile-$$.sqlite
KAM_SQL=/usr/share/kamailio/db_sqlite
case $SCEN in
    registrar) load="register" ;;
    registrar-sqlite)
        load="register"
        cat "$KAM_SQL/standard-create.sql" "$KAM_SQL/usrloc-create.sql" | sqlite3 "$db"
        defs=(-A "ANCHOR_DB=\"sqlite://$db\"") ;;
    auth)
        load="register --auth --users 10000"
        cat "$KAM_SQL/standard-create.sql" "$KAM_SQL/auth_db-create.sql" | sqlite3 "$db"
        sqlite3 "$db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 10000)
            INSERT INTO subscriber (username, domain, password) SELECT 'user'||i, '127.0.0.1', 'pass'||i FROM n;"
        defs=(-A "AUTH_DB=\"sqlite://$db\"") ;;
esac
workers=2
[ "$SCEN" = registrar-sqlite ] && workers=1

if [ "$SERVER" = kamailio ]; then
    mem=${KAMAILIO_MEM:-tlsf}
    cmd=(kamailio -DD -E -f "$cfg" -n "$workers" -m 2048 -M 16 -x "$mem" -X "$mem" "${defs[@]}")
else
    cmd=("$SR" -DD -E -f "$cfg" -n "$workers" "${defs[@]}")
fi
setsid valgrind --tool=callgrind --trace-children=yes --instr-atstart=no \
    --callgrind-out-file="$OUT/callgrind.out.%p" "${cmd[@]}" >"$OUT/server.log" 2>&1 &
PID=$!
cleanup() { kill -TERM -- "-$PID" 2>/dev/null || true; rm -f "$db"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
    ss -Hlun 'sport = :5060' | grep -q . && break
    sleep 0.1
done
sleep 2
pids=$(ps -o pid= -g "$PID" | tr -d ' ')
for p in $pids; do callgrind_control -i on "$p" >/dev/null 2>&1 || true; done
# shellcheck disable=SC2086
"$SB" $load -r "$RATE" -m "$CALLS" -d 3600 --drain 5 --timeout 8000 | tee "$OUT/sipbench.txt"
for p in $pids; do callgrind_control -i off "$p" >/dev/null 2>&1 || true; done
kill -TERM -- "-$PID"
for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
done_ops=$(awk '/completed/ {print $4; exit}' "$OUT/sipbench.txt")
total=0
for f in "$OUT"/callgrind.out.*; do
    ir=$(awk '/^totals:/ {t = $2} /^summary:/ && !t {s = $2} END {print (t ? t : s)}' "$f")
    total=$((total + ${ir:-0}))
done
echo "$SERVER $SCEN: $total instructions (user space, all processes) for $done_ops operations: $((total / (done_ops > 0 ? done_ops : 1))) per operation"
# The busiest file (the worker that did most) for the function list.
big=$(for f in "$OUT"/callgrind.out.*; do echo "$(awk '/^totals:/ {print $2}' "$f") $f"; done | sort -n | tail -1 | cut -d' ' -f2)
callgrind_annotate --threshold=95 "$OUT"/callgrind.out.* 2>/dev/null | sed -n '1,60p' >"$OUT/annotate.txt" || true
echo "busiest process file: $big; top functions (self, all processes):"
grep -E '^ *[0-9,]+ \(' "$OUT/annotate.txt" | head -25
