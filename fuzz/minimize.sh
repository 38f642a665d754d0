#!/usr/bin/env bash
# Rebuilds the committed corpus of one fuzz target: libFuzzer merge over
# seeds/, regressions/ and the working corpus (corpus-work/, gitignored),
# then a greedy set cover of the coverage features capped at MAX files, keeping
# every seed and regression input. Files over 4 KiB are never kept.
#
#   fuzz/minimize.sh message [MAX]
set -euo pipefail
cd "$(dirname "$0")"
T=$1
MAX=${2:-200}
mkdir -p "seeds/$T" "regressions/$T" "corpus-work/$T"
CTL=$(mktemp)
TMP=$(mktemp -d)
trap 'rm -rf "$CTL" "$TMP"' EXIT
# The control file lists, for every input, the coverage features (edges) it reaches.
cargo +nightly fuzz run -O "$T" "$TMP" "seeds/$T" "regressions/$T" "corpus-work/$T" -- \
    -merge=1 -use_counters=0 -max_len=4096 -merge_control_file="$CTL" >/dev/null 2>&1
python3 - "$CTL" "corpus/$T" "$MAX" <<'PY'
import os, shutil, sys
ctl, out, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(ctl).read().splitlines()
n = int(lines[0])
files = lines[2:2 + n]
cov = {}
for l in lines[2 + n:]:
    if l.startswith("FT "):
        p = l.split()
        cov[int(p[1])] = set(p[2:])
keep, seen = [], set()
for i, f in enumerate(files):  # seeds and regressions first, always kept
    if f.startswith(("seeds/", "regressions/")):
        keep.append(i)
        seen |= cov.get(i, set())
cand = [i for i, f in enumerate(files)
        if i not in keep and os.path.getsize(f) < 4096]
while len(keep) < cap:
    best = max(cand, key=lambda i: (len(cov.get(i, set()) - seen),
                                    -os.path.getsize(files[i])), default=None)
    if best is None or not (cov.get(best, set()) - seen):
        break
    keep.append(best)
    seen |= cov[best]
    cand.remove(best)
total = set().union(*cov.values()) if cov else set()
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
for i in keep:
    data = open(files[i], "rb").read()
    import hashlib
    open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb").write(data)
print(f"{out}: {len(os.listdir(out))} files cover {len(seen)} of {len(total)} features")
PY
