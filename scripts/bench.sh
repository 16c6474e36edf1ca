#!/usr/bin/env bash
# Runs orbit-bench's standard set briefly on this machine and prints the table:
# engine, durable (one charge and 1,000 charges per submit), http,
# http-batch (1,000 charges per request), reservations and hot-org, the
# HTTP ones each starting its own orbitd on loopback ports with a temp data
# directory. Exits non-zero if any run fails,
# including a run whose money does not add up.
#   scripts/bench.sh [seconds=5] [more orbit-bench flags, e.g. --connections 128]
# BENCH_JSON=file also writes every result as JSON.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
[ $# -gt 0 ] && shift
work=$(mktemp -d /tmp/orbit-bench-sh.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/" ./cmd/orbitd ./cmd/orbit-bench)
json=()
[ -n "${BENCH_JSON:-}" ] && json=(--json "$BENCH_JSON")
"$work/orbit-bench" --orbitd "$work/orbitd" --duration "${secs}s" \
  --scenario engine,durable,durable=1000,http,http-batch=1000,reservations,hot-org "${json[@]}" "$@"
