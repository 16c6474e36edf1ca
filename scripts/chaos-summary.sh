#!/usr/bin/env bash
# chaos-summary.sh builds the table of `make chaos` from the lines the long
# tests print:
#   CHAOS name=<name> histories=<n> seeds=<n> faults=<n> violations=<n>
# Usage: scripts/chaos-summary.sh [log...]   (stdin when no file is given)
# Exits 1 when a run reported violations, 2 when no CHAOS line was found.
set -euo pipefail

grep -ho 'CHAOS name=[^ ]* histories=[0-9]* seeds=[0-9]* faults=[0-9]* violations=[0-9]*' "$@" | awk '
function val(field,   kv) { split(field, kv, "="); return kv[2] }
{
	name = val($2); h = val($3); s = val($4); f = val($5); v = val($6)
	rows[++n] = sprintf("%-28s %10d %8d %8d %11d", name, h, s, f, v)
	th += h; ts += s; tf += f; tv += v
}
END {
	if (n == 0) { print "chaos-summary: no CHAOS lines found" > "/dev/stderr"; exit 2 }
	printf "%-28s %10s %8s %8s %11s\n", "run", "histories", "seeds", "faults", "violations"
	for (i = 1; i <= n; i++) print rows[i]
	printf "%-28s %10d %8d %8d %11d\n", "total", th, ts, tf, tv
	exit tv > 0 ? 1 : 0
}'
