#!/usr/bin/env bash
# Side-by-side benchmark: Kamailio and siprouter, the same config text,
# the same sipbench load, alternated A B A B on one machine.
#
#   bench/run.sh [--quick] [--scenarios "stateless stateful ..."]
#                [--workers "2 4"] [--reps N] [--out DIR] [--no-build]
#
# --quick: a few seconds per scenario (1 s points, two rates, -n 2, one
# round, 2000 contacts), for CI to show the harness works.
# --no-build: use the release binaries already in CARGO_TARGET_DIR.
#
# Environment: BENCH_SECONDS (seconds per measured point, default 10),
# BENCH_REPS (A B rounds, default 2), BENCH_CONTACTS (registrations for the
# memory-per-contact figure, default 100000), KAMAILIO_MEM (Kamailio's memory
# manager, default tlsf; qm is the Debian default), CARGO_TARGET_DIR.
#
# Scenarios (configs in bench/configs/, see bench/configs/README.md):
#   stateless         forward() relay                     sipbench call
#   stateful          record_route() + t_relay(), loose_route()   call
#   registrar         save("location"), usrloc in memory  sipbench register
#   registrar-sqlite  the same, usrloc db_mode 1 (SQLite), one worker
#   auth              www_authorize() (auth_db, SQLite) + save(), in memory
#
# For each scenario, worker count and server: a ramp over a fixed list of
# rates (stops at the first point with >= 0.1 % failed calls or achieving
# less than 97 % of the target), the server's CPU time per call or
# registration (user+system of all its processes and threads, from
# /proc/PID/stat, before and after each point), its memory (PSS summed over
# its processes), and for the registrar the memory per stored contact after
# BENCH_CONTACTS registrations. SQLite files go to BENCH_DB_DIR (default
# /dev/shm). Output: a table on stdout and in
# OUT/summary.md, every point in OUT/points.tsv, logs in OUT/.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONFIGS=$ROOT/bench/configs
BENCH_SECONDS=${BENCH_SECONDS:-10}
REPS=${BENCH_REPS:-2}
CONTACTS=${BENCH_CONTACTS:-100000}
SCENARIOS="stateless stateful registrar registrar-sqlite auth"
WORKERS="2 4"
QUICK=0
NO_BUILD=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --workers) WORKERS=$2; shift ;;
        --reps) REPS=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) NO_BUILD=1 ;;
        -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    BENCH_SECONDS=1
    REPS=1
    CONTACTS=2000
    WORKERS=2
fi
OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SIP_PORT=5060
# SQLite files live in memory (tmpfs) unless told otherwise: the figure
# wanted is CPU per registration, not the disk's fsync latency.
DB_DIR=${BENCH_DB_DIR:-/dev/shm}
# Kamailio's memory manager (-x/-X). The Debian build's default, qm, is the
# debugging allocator (compiled with DBG_SR_MEMORY): on this machine it took
# about half of Kamailio's CPU (qm_malloc), doubling its CPU per call over
# the reference figures. tlsf (or fm) gives figures in line with them.
KAM_MEM=${KAMAILIO_MEM:-tlsf}
UAS_PORT=5090

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# ---------------------------------------------------------------- setup
if ! command -v kamailio >/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ]; then
    log "installing kamailio and kamailio-sqlite-modules"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kamailio kamailio-sqlite-modules sqlite3 >&2 \
        || { echo "could not install kamailio" >&2; exit 1; }
fi
command -v sqlite3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >&2
KAM=$(command -v kamailio)
KAM_SQL=/usr/share/kamailio/db_sqlite

if [ "$NO_BUILD" = 0 ]; then
    log "building siprouter and sipbench (release) in $CARGO_TARGET_DIR"
    (cd "$ROOT" && cargo build --release -q -p siprouter -p sipbench) || { echo "build failed" >&2; exit 1; }
fi
SR=$CARGO_TARGET_DIR/release/siprouter
SB=$CARGO_TARGET_DIR/release/sipbench

for p in $SIP_PORT $UAS_PORT; do
    if ss -Hlun "sport = :$p" | grep -q .; then
        echo "UDP port $p on this machine is in use: stop what holds it first" >&2
        exit 1
    fi
done

# ------------------------------------------------------- per scenario
# cfg, sipbench arguments, rates (ascending; the first is the fixed-rate
# comparison point), worker counts, "mem" when memory per contact is measured.
scenario_cfg() { case $1 in
    stateless) echo stateless.cfg ;; stateful) echo stateful.cfg ;;
    registrar) echo registrar.cfg ;; registrar-sqlite) echo registrar-sqlite.cfg ;;
    auth) echo auth.cfg ;; esac; }
scenario_load() { case $1 in
    stateless|stateful) echo "call" ;;
    registrar|registrar-sqlite) echo "register" ;;
    auth) echo "register --auth --users 10000 --password pass%d" ;; esac; }
scenario_rates() {
    if [ "$QUICK" = 1 ]; then case $1 in
        stateless|stateful) echo "500 1000" ;; registrar|auth) echo "1000 2000" ;;
        registrar-sqlite) echo "200 400" ;; esac; return; fi
    case $1 in
        stateless) echo "1000 2000 4000 6000 8000 10000 12000 15000" ;;
        stateful) echo "1000 2000 3000 4000 5000 6000 8000 10000" ;;
        registrar) echo "2000 5000 10000 15000 20000 25000 30000 40000" ;;
        registrar-sqlite) echo "500 1000 1500 2000 3000 4000" ;;
        auth) echo "1000 2000 4000 6000 8000 10000 15000" ;;
    esac; }
scenario_workers() { case $1 in
    # db_sqlite in Kamailio 5.6 sets no busy timeout: two writers fail
    # with "database is locked" (see registrar-sqlite.cfg), so one worker.
    registrar-sqlite) echo 1 ;;
    *) echo "$WORKERS" ;; esac; }

# Fresh SQLite files for the scenarios that use one (per server run).
prepare_db() { # scenario file
    rm -f "$2"
    case $1 in
        registrar-sqlite) cat "$KAM_SQL/standard-create.sql" "$KAM_SQL/usrloc-create.sql" | sqlite3 "$2" ;;
        auth)
            cat "$KAM_SQL/standard-create.sql" "$KAM_SQL/auth_db-create.sql" | sqlite3 "$2"
            sqlite3 "$2" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 10000)
                INSERT INTO subscriber (username, domain, password) SELECT 'user'||i, '127.0.0.1', 'pass'||i FROM n;"
            ;;
    esac
}
scenario_defines() { # scenario dbfile -> -A arguments
    case $1 in
        registrar-sqlite) echo "-A ANCHOR_DB=\"sqlite://$2\"" ;;
        auth) echo "-A AUTH_DB=\"sqlite://$2\"" ;;
    esac
}

# --------------------------------------------------------- processes
PID=""
SETSID_PID=""
# All processes in the server's process group (setsid made it the leader).
group_pids() { ps -o pid= -g "$1" 2>/dev/null | tr -d ' '; }
# user+system and system clock ticks (1/100 s) of every process of the
# group ("total system"; each /proc/P/stat counts all threads of P), and
# the nanoseconds its threads ran (/proc/P/task/T/schedstat, first field:
# the scheduler's own count, not sampled at clock ticks, so exact for
# short points and low rates where the ticks are few).
cpu_ticks() {
    local t=0 s=0 ns=0 p u k f r
    for p in $(group_pids "$1"); do
        [ -r "/proc/$p/stat" ] || continue
        read -r u k < <(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12, $13}')
        t=$((t + u + k)); s=$((s + k))
        for f in /proc/"$p"/task/*/schedstat; do
            read -r r _ <"$f" 2>/dev/null || continue
            ns=$((ns + r))
        done
    done
    echo "$t $s $ns"
}
# Proportional set size (kB) summed over the group: shared memory of
# Kamailio's processes is counted once.
pss_kb() {
    local t=0 p v
    for p in $(group_pids "$1"); do
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo $t
}

start_server() { # server cfg workers log [defines...]
    local server=$1 cfg=$2 n=$3 logf=$4
    shift 4
    local bin=$KAM extra="-m 2048 -M 16 -x $KAM_MEM -X $KAM_MEM"
    [ "$server" = siprouter ] && bin=$SR && extra=""
    # shellcheck disable=SC2086
    setsid -w "$bin" -DD -E -f "$cfg" -n "$n" $extra "$@" >"$logf" 2>&1 &
    PID=$!
    local i
    # setsid runs the server itself when it can, else forks it as a new
    # process group leader: the server is PID or its only child.
    for i in $(seq 1 20); do
        [ "$(ps -o pgid= -p "$PID" | tr -d ' ')" = "$PID" ] && break
        local child
        child=$(pgrep -P "$PID" | head -1)
        [ -n "$child" ] && { SETSID_PID=$PID; PID=$child; break; }
        sleep 0.05
    done
    for i in $(seq 1 100); do
        if ss -Hlun "sport = :$SIP_PORT" | grep -q .; then sleep 0.3; return 0; fi
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    log "$server did not start: $(tail -3 "$logf" | tr '\n' ' ')"
    stop_server
    return 1
}

stop_server() {
    [ -n "$PID" ] || return 0
    kill -TERM -- "-$PID" 2>/dev/null
    local i
    for i in $(seq 1 50); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$PID" 2>/dev/null
    wait "${SETSID_PID:-$PID}" 2>/dev/null
    PID=""
    SETSID_PID=""
    # Wait for the port to be free for the next server.
    for i in $(seq 1 50); do
        ss -Hlun "sport = :$SIP_PORT" | grep -q . || break
        sleep 0.1
    done
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

jnum() { grep -o "\"$1\":[-0-9.e+]*" "$2" | head -1 | cut -d: -f2; }

# One measured point: sipbench at a rate, server CPU before and after.
# Appends to points.tsv; returns 0 when the point passed.
USER_BASE=1
point() { # server scenario workers rep rate
    local server=$1 scen=$2 n=$3 rep=$4 rate=$5
    local f="$OUT/$scen-n$n-r$rep-$server-$rate.json"
    local load users
    load=$(scenario_load "$scen")
    users=$(awk -v r="$rate" -v s="$BENCH_SECONDS" 'BEGIN {print int(r * s + r * 5 + 10)}')
    local c0 c1 t0 t1 k0 k1 n0 n1
    read -r c0 k0 n0 < <(cpu_ticks "$PID"); t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    local offset=$USER_BASE
    case $load in *--users*) offset=1 ;; esac
    "$SB" $load -r "$rate" -d "$BENCH_SECONDS" --drain 3 --user-offset "$offset" --json >"$f" 2>>"$OUT/sipbench.log"
    read -r c1 k1 n1 < <(cpu_ticks "$PID"); t1=$(date +%s.%N)
    case $load in *--users*) ;; register*) USER_BASE=$((USER_BASE + users)) ;; esac
    local done failed pct ach sbcpu wall p50 p99 retr pss
    done=$(jnum completed "$f"); failed=$(jnum failed "$f"); pct=$(jnum failed_pct "$f")
    ach=$(jnum achieved_rate "$f"); sbcpu=$(jnum cpu_s "$f"); wall=$(jnum wall_s "$f")
    p50=$(jnum p50_us "$f"); p99=$(jnum p99_us "$f"); retr=$(jnum retransmissions "$f")
    pss=$(pss_kb "$PID")
    [ -n "$done" ] || { log "sipbench failed, see $OUT/sipbench.log"; done=0; failed=0; pct=100; ach=0; sbcpu=0; wall=1; p50=0; p99=0; retr=0; }
    local us sys_us run_us srv_pct sb_pct
    us=$(awk -v c=$((c1 - c0)) -v d="$done" 'BEGIN {printf "%.1f", (d > 0 ? c * 10000 / d : 0)}')
    sys_us=$(awk -v c=$((k1 - k0)) -v d="$done" 'BEGIN {printf "%.1f", (d > 0 ? c * 10000 / d : 0)}')
    run_us=$(awk -v c=$((n1 - n0)) -v d="$done" 'BEGIN {printf "%.1f", (d > 0 ? c / 1000 / d : 0)}')
    srv_pct=$(awk -v c=$((c1 - c0)) -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", c / (b - a)}')
    sb_pct=$(awk -v c="$sbcpu" -v w="$wall" 'BEGIN {printf "%.0f", 100 * c / w}')
    printf '%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$n" "$rep" "$server" "$rate" "$ach" "$pct" "$done" \
        "$us" "$srv_pct" "$sb_pct" "$p50" "$p99" "$retr" "$pss" "$sys_us" "$run_us" >>"$OUT/points.tsv"
    log "  $server $scen n=$n rate $rate: achieved $(printf %.0f "$ach")/s failed ${pct}% cpu ${us} us/op (system ${sys_us}, run time ${run_us}) server ${srv_pct}% sipbench ${sb_pct}% p99 ${p99}us retrans $retr"
    awk -v p="$pct" -v a="$ach" -v r="$rate" 'BEGIN {exit !(p < 0.1 && a >= 0.97 * r)}'
}

# Memory per contact: PSS before and after CONTACTS new registrations.
memory() { # server scenario workers rep
    local server=$1 scen=$2 n=$3 rep=$4 f="$OUT/$2-n$3-r$4-$1-mem.json"
    sleep 0.5
    local m0 m1 rate=5000
    [ "$QUICK" = 1 ] && rate=2000
    m0=$(pss_kb "$PID")
    "$SB" register -r "$rate" -m "$CONTACTS" -d 3600 --drain 5 --user-offset 10000000 --json >"$f" 2>>"$OUT/sipbench.log"
    sleep 1
    m1=$(pss_kb "$PID")
    local done
    done=$(jnum completed "$f")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$n" "$rep" "$server" "${done:-0}" "$m0" "$m1" >>"$OUT/memory.tsv"
    log "  $server memory: $m0 kB -> $m1 kB after ${done:-0} registrations ($(awk -v a="$m0" -v b="$m1" -v d="${done:-0}" 'BEGIN {printf "%.0f", (d > 0 ? (b - a) * 1024 / d : 0)}') B/contact)"
}

# Whether siprouter can run a config (the config check), else why not.
SR_SKIP=""
sr_check() { # scenario cfg
    local msg
    # shellcheck disable=SC2046
    if msg=$("$SR" -c -f "$2" $(scenario_defines "$1" /tmp/sipbench-check.sqlite) 2>&1); then
        return 0
    fi
    echo "$msg" | grep -v '^$' | head -3 | tr '\n' ' '
    return 1
}

printf 'scenario\tworkers\trep\tserver\trate\tachieved\tfailed_pct\tcompleted\tcpu_us_per_op\tserver_cpu_pct\tsipbench_cpu_pct\tp50_us\tp99_us\tretrans\tpss_kb\tsys_us_per_op\trun_us_per_op\n' >"$OUT/points.tsv"
printf 'scenario\tworkers\trep\tserver\tregistrations\tpss_before_kb\tpss_after_kb\n' >"$OUT/memory.tsv"
: >"$OUT/skipped.tsv"
{
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "kernel: $(uname -r); kamailio: $($KAM -v 2>/dev/null | head -1)"
    echo "siprouter: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null) (+ working tree)"
    echo "BENCH_SECONDS=$BENCH_SECONDS REPS=$REPS CONTACTS=$CONTACTS QUICK=$QUICK KAMAILIO_MEM=$KAM_MEM"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

for scen in $SCENARIOS; do
    cfg=$CONFIGS/$(scenario_cfg "$scen")
    [ -f "$cfg" ] || { log "unknown scenario $scen"; continue; }
    servers="kamailio siprouter"
    if ! why=$(sr_check "$scen" "$cfg"); then
        log "siprouter cannot run $scen yet: $why"
        printf '%s\t%s\n' "$scen" "$why" >>"$OUT/skipped.tsv"
        servers="kamailio"
    fi
    for n in $(scenario_workers "$scen"); do
        for rep in $(seq 1 "$REPS"); do
            for server in $servers; do
                db="$DB_DIR/sipbench-$scen-$server-$$.sqlite"
                prepare_db "$scen" "$db"
                log "$scen: $server -n $n (round $rep)"
                # shellcheck disable=SC2046
                start_server "$server" "$cfg" "$n" "$OUT/$scen-n$n-r$rep-$server.log" $(scenario_defines "$scen" "$db") || {
                    printf '%s\t%s did not start (n=%s)\n' "$scen" "$server" "$n" >>"$OUT/skipped.tsv"
                    continue
                }
                [ "$scen" = registrar ] && memory "$server" "$scen" "$n" "$rep"
                for rate in $(scenario_rates "$scen"); do
                    point "$server" "$scen" "$n" "$rep" "$rate" || break
                done
                stop_server
                rm -f "$db" "$db-journal"
            done
        done
    done
done

"$ROOT/bench/summary.sh" "$OUT" | tee "$OUT/summary.md"
