#!/usr/bin/env bash
# Summarises a bench/run.sh result folder as Markdown tables:
#   bench/summary.sh bench/results/<run>
set -euo pipefail
DIR=${1:?result folder}
sed 's/^/    /' "$DIR/machine.txt"
echo
awk -F'\t' '
function med(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return ""
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
FNR == 1 && FILENAME !~ /skipped/ { next }
FILENAME ~ /memory.tsv$/ {
    k = $1 SUBSEP $2 SUBSEP $4
    if ($5 > 0) memc[k] = memc[k] " " sprintf("%.0f", ($7 - $6) * 1024 / $5)
    next
}
FILENAME ~ /skipped.tsv$/ { next }
{
    # scenario workers rep server rate achieved failed_pct completed us srv% sb% p50 p99 retrans pss
    k = $1 SUBSEP $2 SUBSEP $4; r = k SUBSEP $3
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    if (!(($1 SUBSEP $2) in kseen)) { kseen[$1 SUBSEP $2] = 1; korder[++nn] = $1 SUBSEP $2 }
    if (!((k SUBSEP $3) in repseen)) { repseen[k SUBSEP $3] = 1; reps[k] = reps[k] " " $3; nrep[$1 SUBSEP $2 SUBSEP $3] = 1 }
    if (!(r in first)) { first[r] = $5; fixed_us[k] = fixed_us[k] " " $9; fixed_rate[k] = $5; if (NF >= 17) fixed_run[k] = fixed_run[k] " " $17 }
    # Column 16 (system time per op) exists in runs from 2026-11 on. The
    # kernel splits the time of a process into user and system by sampling
    # at clock ticks, so the split of one short point is coarse: it is
    # summed over every passing point of the ramps.
    if (NF >= 16 && $7 < 0.1 && $8 > 0) { tot_ops[k] += $8; tot_cpu[k] += $9 * $8; tot_sys[k] += $16 * $8 }
    pass = ($7 < 0.1 && $6 >= 0.97 * $5)
    if (first[r] == $5) { fixed50[k] = fixed50[k] " " $12; fixed99[k] = fixed99[k] " " $13 }
    if (pass && NF >= 17) run_at[$1, $2, $3, $4, $5] = $17
    if (pass) { best[r] = $5; best_us[r] = $9; ok[$1, $2, $3, $4, $5] = $9; rates[$1, $2, $3] = rates[$1, $2, $3] " " $5; lat50[$1, $2, $3, $4, $5] = $12; lat99[$1, $2, $3, $4, $5] = $13 }
    else if (!(r in limit)) {
        if ($11 >= 90) why = "load generator (sipbench " $11 "% of a core)"
        else if ($10 + $11 >= 180) why = "machine: both cores busy (server " $10 "%, sipbench " $11 "%)"
        else if ($10 >= 90 * ($2 < 2 ? $2 : 2)) why = "server CPU (" $10 "%)"
        else why = sprintf("packet loss at %s%% server CPU (%.2f%% failed, %s retransmissions)", $10, $7, $14)
        limit[r] = why
    }
    if ($15 > pss[k]) pss[k] = $15
}
END {
    print "| scenario | workers | server | max rate, <0.1 % failed (per round) | CPU µs/op at max | CPU µs/op at the fixed rate | first failing point limited by | PSS max, kB | memory per contact |"
    print "|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nk; i++) {
        k = order[i]; split(k, p, SUBSEP)
        n = split(reps[k], rr, " "); mr = ""; mu = ""; lim = ""; top = 0; topus = ""
        for (j = 1; j <= n; j++) {
            r = k SUBSEP rr[j]
            v = (r in best) ? best[r] : 0
            mr = mr (j > 1 ? ", " : "") v
            if (v > top) { top = v; topus = best_us[r] }
            if (lim == "") lim = (r in limit) ? limit[r] : "none: top of the rate list passed"
        }
        mc = med(memc[k])
        printf "| %s | %s | %s | %s/s (%s) | %s | %s at %s/s | %s | %s | %s |\n", p[1], p[2], p[3], top, mr, topus, med(fixed_us[k]), fixed_rate[k], lim, pss[k], (mc == "" ? "" : mc " B")
        fx[p[1] SUBSEP p[2], p[3]] = med(fixed_us[k]); mx[p[1] SUBSEP p[2], p[3]] = top; mem[p[1] SUBSEP p[2], p[3]] = mc
    }
    print ""
    print "| scenario | workers | siprouter / Kamailio CPU per op at the fixed rate | at the highest rate both passed (per round) | the bar: ≤ 0.5 | max rate, siprouter / Kamailio | memory per contact, siprouter / Kamailio (bar ≤ 1) |"
    print "|---|---|---|---|---|---|---|"
    for (i = 1; i <= nn; i++) {
        key = korder[i]; split(key, p, SUBSEP)
        a = fx[key, "kamailio"]; b = fx[key, "siprouter"]
        if (a == "" || b == "" || a == 0) { printf "| %s | %s | n/a | n/a | n/a | n/a | n/a |\n", p[1], p[2]; continue }
        ratio = b / a
        common = ""; cr = ""
        for (rep = 1; rep <= 20; rep++) {
            if (!((p[1] SUBSEP p[2] SUBSEP rep) in nrep)) continue
            m = split(rates[p[1], p[2], rep], rl, " "); hi = 0
            for (j = 1; j <= m; j++) if (((p[1], p[2], rep, "kamailio", rl[j]) in ok) && ((p[1], p[2], rep, "siprouter", rl[j]) in ok) && rl[j] + 0 > hi) hi = rl[j] + 0
            if (hi > 0) { q = ok[p[1], p[2], rep, "siprouter", hi] / ok[p[1], p[2], rep, "kamailio", hi]; common = common (common == "" ? "" : ", ") sprintf("%.2f at %s/s", q, hi); cr = cr " " q; hic[key] = hi }
        }
        worst = ratio; if (cr != "" && med(cr) > worst) worst = med(cr)
        bar = (worst <= 0.5) ? "met" : sprintf("missed: %.2fx the allowed CPU", worst / 0.5)
        mr2 = (mx[key, "kamailio"] > 0) ? sprintf("%.2f", mx[key, "siprouter"] / mx[key, "kamailio"]) : "n/a"
        mm = (mem[key, "kamailio"] > 0 && mem[key, "siprouter"] != "") ? sprintf("%.2f", mem[key, "siprouter"] / mem[key, "kamailio"]) : "n/a"
        printf "| %s | %s | %.2f | %s | %s | %s | %s |\n", p[1], p[2], ratio, (common == "" ? "n/a" : common), bar, mr2, mm
    }
    print ""
    print "Latency (INVITE→200, or first REGISTER→200), µs, p50 / p99, medians over the rounds:"
    print ""
    print "| scenario | workers | Kamailio at the fixed rate | siprouter at the fixed rate | at the highest rate both passed (last round) | Kamailio there | siprouter there |"
    print "|---|---|---|---|---|---|---|"
    for (i = 1; i <= nn; i++) {
        key = korder[i]; split(key, p, SUBSEP)
        ka = key SUBSEP "kamailio"; sa = key SUBSEP "siprouter"
        if (fixed50[ka] == "" || fixed50[sa] == "") continue
        h = hic[key]; lastrep = 0
        for (rep = 1; rep <= 20; rep++) if (((p[1], p[2], rep, "kamailio", h) in lat50) && ((p[1], p[2], rep, "siprouter", h) in lat50)) lastrep = rep
        printf "| %s | %s | %s / %s | %s / %s | %s | %s | %s |\n", p[1], p[2], med(fixed50[ka]), med(fixed99[ka]), med(fixed50[sa]), med(fixed99[sa]), \
            (lastrep ? h "/s" : "n/a"), (lastrep ? lat50[p[1], p[2], lastrep, "kamailio", h] " / " lat99[p[1], p[2], lastrep, "kamailio", h] : ""), \
            (lastrep ? lat50[p[1], p[2], lastrep, "siprouter", h] " / " lat99[p[1], p[2], lastrep, "siprouter", h] : "")
    }
    # Column 17 (run time per op from schedstat) exists in runs from
    # 2026-11-28 on: the same CPU counted by the scheduler in nanoseconds
    # instead of sampled at clock ticks.
    hdr = 0
    for (i = 1; i <= nn; i++) {
        key = korder[i]; split(key, p, SUBSEP)
        ka = key SUBSEP "kamailio"; sa = key SUBSEP "siprouter"
        if (fixed_run[ka] == "" || fixed_run[sa] == "") continue
        if (!hdr) {
            print ""
            print "Cross-check: CPU µs per op from the run time of every thread (/proc/P/task/T/schedstat, nanoseconds, not sampled at clock ticks), medians over the rounds:"
            print ""
            print "| scenario | workers | Kamailio at the fixed rate | siprouter at the fixed rate | ratio | at the highest rate both passed (per round): Kamailio, siprouter, ratio |"
            print "|---|---|---|---|---|---|"
            hdr = 1
        }
        a = med(fixed_run[ka]); b = med(fixed_run[sa]); top = ""
        for (rep = 1; rep <= 20; rep++) {
            h = hic[key]
            if (((p[1], p[2], rep, "kamailio", h) in run_at) && ((p[1], p[2], rep, "siprouter", h) in run_at)) {
                x = run_at[p[1], p[2], rep, "kamailio", h]; y = run_at[p[1], p[2], rep, "siprouter", h]
                top = top (top == "" ? "" : "; ") sprintf("%s, %s, %s at %s/s", x, y, (x > 0 ? sprintf("%.2f", y / x) : "n/a"), h)
            }
        }
        printf "| %s | %s | %s | %s | %s | %s |\n", p[1], p[2], a, b, (a > 0 ? sprintf("%.2f", b / a) : "n/a"), (top == "" ? "n/a" : top)
    }
    print ""
    print "User and system (kernel) CPU µs per op over all passing points of both rounds (operations-weighted):"
    print ""
    print "| scenario | workers | Kamailio user | Kamailio system | siprouter user | siprouter system | user, siprouter / Kamailio | system, siprouter / Kamailio | siprouter system / Kamailio total |"
    print "|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nn; i++) {
        key = korder[i]; split(key, p, SUBSEP)
        ka = key SUBSEP "kamailio"; sa = key SUBSEP "siprouter"
        if (!(tot_ops[ka] > 0) || !(tot_ops[sa] > 0)) continue
        kt = tot_cpu[ka] / tot_ops[ka]; ks = tot_sys[ka] / tot_ops[ka]
        st = tot_cpu[sa] / tot_ops[sa]; ss = tot_sys[sa] / tot_ops[sa]
        ku = kt - ks; su = st - ss
        printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %s | %s |\n", p[1], p[2], ku, ks, su, ss, \
            (ku > 0 ? sprintf("%.2f", su / ku) : "n/a"), (ks > 0 ? sprintf("%.2f", ss / ks) : "n/a"), (kt > 0 ? sprintf("%.2f", ss / kt) : "n/a")
    }
}' "$DIR/memory.tsv" "$DIR/skipped.tsv" "$DIR/points.tsv"
if [ -s "$DIR/skipped.tsv" ]; then
    echo
    echo "Not measured:"
    sed 's/^/- /; s/\t/: /' "$DIR/skipped.tsv"
fi
