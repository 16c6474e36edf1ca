#!/usr/bin/env bash
# Compares Orbit with its peers on this machine, in one run, with the same
# connection count everywhere (the machine is shared and noisy: quote the
# ratios, not the absolute figures):
#   postgres-ledger  the SQL debit + ledger row, fsync on (charges/s)
#   redis-ledger     the Lua debit + XADD, appendfsync always (charges/s)
#   http-ceiling     fasthttp decoding the charge and debiting memory (req/s)
#   orbit http       orbit-bench --scenario http (one charge per request)
#   orbit http-batch orbit-bench --scenario http-batch=1000
# The peers live in ../shared/peers next to the repository (PEERS_DIR
# overrides); they install what they need with apt-get.
#   scripts/bench-compare.sh [seconds=10] [connections=64] [orgs=1000]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
peers=${PEERS_DIR:-$(cd "$root/../shared/peers" 2>/dev/null && pwd || true)}
[ -n "$peers" ] && [ -x "$peers/postgres-ledger.sh" ] || { echo "bench-compare: no peers directory (../shared/peers or PEERS_DIR)" >&2; exit 2; }
secs=${1:-10} conns=${2:-64} orgs=${3:-1000}
work=$(mktemp -d /tmp/bench-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/" ./cmd/orbitd ./cmd/orbit-bench)
status=0

# peer NAME CMD...: runs one peer script and keeps its one-line result.
peer() {
  local name=$1; shift
  echo "bench-compare: running $name ..." >&2
  local out
  if out=$("$@" 2> >(tail -5 >&2)) && line=$(printf '%s\n' "$out" | grep "^$name: [0-9]" | tail -1); then
    echo "$line" | tee "$work/$name.line"
  else
    echo "$name: failed" | tee "$work/$name.line"
    status=1
  fi
}
figure() { sed -n 's/^[a-z-]*: \([0-9][0-9]*\) .*/\1/p' "$work/$1.line" 2>/dev/null; }

peer postgres-ledger "$peers/postgres-ledger.sh" "$secs" "$conns" "$orgs"
# redis-benchmark runs a number of requests, not a time: about secs seconds
# at the rate seen on machines of this kind (~56k/s).
peer redis-ledger "$peers/redis-ledger.sh" "$((secs * 56000))" "$conns" "$orgs" always
peer http-ceiling "$peers/http-ceiling.sh" "$secs" "$conns"

echo "bench-compare: running orbit-bench http, http-batch=1000 ..." >&2
if ! "$work/orbit-bench" --orbitd "$work/orbitd" --scenario http,http-batch=1000 \
    --duration "${secs}s" --connections "$conns" --orgs "$orgs" --json "$work/orbit.json"; then
  status=1
fi
[ -s "$work/orbit.json" ] || { echo "bench-compare: orbit-bench wrote no result" >&2; exit 1; }
python3 - "$work/orbit.json" "$(figure postgres-ledger)" "$(figure redis-ledger)" "$(figure http-ceiling)" "$conns" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
if isinstance(results, dict):
    results = [results]
ours = {r["scenario"]: r for r in results}
def num(s):
    return float(s) if s else None
pg, redis, ceiling, conns = num(sys.argv[2]), num(sys.argv[3]), num(sys.argv[4]), sys.argv[5]
rows = []
def ratio(label, a, b):
    if a is None or not b:
        rows.append((label, "n/a", ""))
    else:
        rows.append((label, "%.2fx" % (a / b), "(%s / %s)" % (f"{a:,.0f}", f"{b:,.0f}")))
for name in ("http", "http-batch"):
    r = ours.get(name)
    if r is None:
        continue
    ok = "verified" if r["verification"]["ok"] else "VERIFICATION FAILED"
    print(f"orbit {name}: {r['charges_per_sec']:,.0f} charges/s, {r['requests_per_sec']:,.0f} req/s, "
          f"p99 {r['latency']['p99_us'] / 1000:.2f} ms, {conns} connections, {ok}")
    ratio(f"{name} charges/s / postgres-ledger charges/s", r["charges_per_sec"], pg)
    ratio(f"{name} charges/s / redis-ledger charges/s (always)", r["charges_per_sec"], redis)
    if name == "http":
        ratio("http req/s / http-ceiling req/s", r["requests_per_sec"], ceiling)
    else:
        ratio("http-batch charges/s / http-ceiling req/s", r["charges_per_sec"], ceiling)
print()
print("ratios (ours / peer), same machine, same run, %s connections:" % conns)
w = max(len(r[0]) for r in rows)
for label, value, detail in rows:
    print(f"  {label:<{w}}  {value:>7}  {detail}")
PY
exit $status
