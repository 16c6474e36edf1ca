#!/usr/bin/env bash
# Starts (or stops) a local 3-node Orbit cluster on 127.0.0.1 with separate
# data directories under .cluster/, for trying failover by hand.
#   scripts/cluster.sh start   # node1 bootstraps, node2 and node3 join it
#   scripts/cluster.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cluster
token_file=$dir/admin-token

start() {
  mkdir -p "$dir"
  [ -s "$token_file" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file"
  token=$(cat "$token_file")
  for i in 1 2 3; do
    if [ -f "$dir/node$i.pid" ] && kill -0 "$(cat "$dir/node$i.pid")" 2>/dev/null; then
      echo "node$i already running (pid $(cat "$dir/node$i.pid"))"; continue
    fi
    join=()
    [ "$i" != 1 ] && join=(--join 127.0.0.1:8081)
    ./bin/orbitd --node-id "node$i" --data-dir "$dir/node$i" \
      --http-addr "127.0.0.1:808$i" --raft-addr "127.0.0.1:700$i" \
      --admin-token "$token" "${join[@]}" >"$dir/node$i.log" 2>&1 &
    echo $! > "$dir/node$i.pid"
    # The first node must lead before the others ask to join.
    for _ in $(seq 1 100); do
      curl -fs "http://127.0.0.1:808$i/readyz" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  cat <<MSG
Cluster up: http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083 (any node answers any request)
Admin token: $token_file
  export ORBIT_ADMIN_TOKEN=\$(cat $token_file)
  curl -s http://127.0.0.1:8082/admin/v1/cluster -H "Authorization: Bearer \$ORBIT_ADMIN_TOKEN"
  bin/orbitctl --url http://127.0.0.1:8083 demo
Logs: $dir/node*.log. Stop with: make cluster-stop
MSG
}

stop() {
  for i in 1 2 3; do
    if [ -f "$dir/node$i.pid" ]; then
      kill "$(cat "$dir/node$i.pid")" 2>/dev/null || true
      rm -f "$dir/node$i.pid"
    fi
  done
  echo "cluster stopped (data kept in $dir; rm -rf $dir to start afresh)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
