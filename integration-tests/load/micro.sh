#!/usr/bin/env bash
# Every criterion micro benchmark of the workspace, RUNS times (default 3), then a Markdown
# table of each bench's median estimate: min / median / max over the runs.
#
#   integration-tests/load/micro.sh [RUNS] [extra criterion args, e.g. --measurement-time 2]
#
# Benches: ID validation, schema check and catalog load (xgate-catalog: ids, schema), view
# filtering (xgate-catalog: views), the policy step (xgate-policy: decide), audit append and
# verify (xgate-audit: append; its PostgreSQL arm runs when 127.0.0.1:5432 answers), request
# validation, the per-record check and the 63-type FetchResponse encode (xgate: request).
set -euo pipefail

runs="${1:-3}"
shift || true
cd "$(dirname "$0")/../.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for i in $(seq 1 "$runs"); do
    echo "== run $i of $runs" >&2
    cargo bench -p xgate-catalog -p xgate-policy -p xgate-audit -p xgate \
        --bench ids --bench schema --bench views --bench decide --bench append --bench request -- \
        --noplot "$@" 2>&1 | tee "$out/run-$i.txt" >&2 || echo "run $i: cargo bench failed; the table keeps what ran" >&2
done

python3 - "$out" "$runs" <<'PY'
import re, sys, glob, statistics
out, runs = sys.argv[1], int(sys.argv[2])
unit = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
time_re = re.compile(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]")
results = {}
order = []
for path in sorted(glob.glob(f"{out}/run-*.txt")):
    prev = ""
    for raw in open(path, encoding="utf-8", errors="replace"):
        line = raw.rstrip("\n").split("\r")[-1]
        m = time_re.search(line)
        if m:
            head = line.split("time:")[0].strip()
            name = head or prev.strip()
            ns = float(m.group(1)) * unit[m.group(2)]
            if name not in results:
                order.append(name)
            results.setdefault(name, []).append(ns)
        if line.strip():
            prev = line
def fmt(ns):
    for u, f in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= f:
            return f"{ns / f:.3g} {u}"
    return f"{ns:.3g} ns"
print(f"| bench | min | median | max | runs |")
print(f"|---|---|---|---|---|")
for name in order:
    v = results[name]
    print(f"| `{name}` | {fmt(min(v))} | {fmt(statistics.median(v))} | {fmt(max(v))} | {len(v)} |")
PY
