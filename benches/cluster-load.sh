#!/usr/bin/env bash
# The load-test harness against a cluster: three Showfloor nodes on one nats-server (its own,
# started here) and one PostgreSQL database (created here, dropped at the end), the viewers
# spread over the three nodes in turn. Each scenario runs twice on the same cluster: viewers
# on all three nodes, then all of them on the room's owner (node 1), for a ratio.
#
#   benches/cluster-load.sh                     # VIEWERS=3000 RATE=300 SWITCHES=10 DEALERS=3000
#   SCENARIOS="flash" WHERE="spread" benches/cluster-load.sh     # a subset
#
# Needs nats-server (installed with apt-get if missing) and a PostgreSQL server that lets
# PG_URL (default postgres://postgres@127.0.0.1:5432) create a database. Everything runs on
# this machine, unpinned: the nodes share its cores with each other and with the harness, so
# what it shows is what crossing nodes costs at the same total load, not what three machines
# would do. Results and raw JSON go to target/cluster-load/.
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS=${VIEWERS:-3000}
RATE=${RATE:-300}
SWITCHES=${SWITCHES:-10}
DEALERS=${DEALERS:-3000}
SCENARIOS=${SCENARIOS:-"chat switchover flash"}
WHERE=${WHERE:-"spread owner"}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
out=target/cluster-load
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

command -v nats-server >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server >&2
echo "== building (release)" >&2
cargo build --release -p showfloor --bin showfloor >&2
cargo build --release -p showfloor-loadtest >&2
bin=target/release

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
db=showfloor_load_$(date +%s)_$$
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql "$PG_URL/postgres" -qc "CREATE DATABASE $db" >/dev/null
nats_port=$(free_port)
rm -rf "$out/js"
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$out/js" >"$out/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "Server is ready" "$out/nats.log" && break; sleep 0.1; done

key=load-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
http=()
for i in 1 2 3; do
  SHOWFLOOR_LOG=info "$bin/showfloor" serve --api-key "$key" --node-id "node-$i" \
    --nats "nats://127.0.0.1:$nats_port" --postgres "$PG_URL/$db" \
    --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 --media-udp-addr 127.0.0.1:0 --relay-udp-addr 127.0.0.1:0 \
    --max-connections 100000 >"$out/node-$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do grep -q "showfloor serving" "$out/node-$i.log" && break; sleep 0.1; done
  line=$(grep -m1 "showfloor serving" "$out/node-$i.log")
  http+=("$(echo "$line" | sed -n 's/.*http_addr=\([0-9.:]*\).*/\1/p')")
  [ "$i" = 1 ] && grpc=$(echo "$line" | sed -n 's/.*grpc_addr=\([0-9.:]*\).*/\1/p')
done
for h in "${http[@]}"; do
  for _ in $(seq 100); do curl -fs "http://$h/readyz" >/dev/null && break; sleep 0.1; done
done
all=$(IFS=,; echo "${http[*]}")
echo "== nodes: $all (gRPC of node-1: $grpc)" >&2

lt() { "$bin/showfloor-loadtest" --grpc "http://$grpc" --api-key "$key" --json "$@"; }
rows=()
report() { # name file
  python3 - "$1" "$2" <<'EOF' || echo "$1: no result"
import json, sys
d = json.load(open(sys.argv[2]))
lat = d.get("latency") or {}
checks = all(c["ok"] for c in d.get("checks", []))
n = d.get("numbers", {})
extra = {k: n[k] for k in ("deliveries_per_s", "server_cpu_percent") if k in n}
print(f"{sys.argv[1]:<44} p50 {lat.get('p50_ms')} ms  p99 {lat.get('p99_ms')} ms  checks {'ok' if checks else 'FAILED'}  {extra}")
EOF
}
has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
for where in $WHERE; do
  if [ "$where" = spread ]; then hosts=$all; else hosts=${http[0]}; fi
  if has chat; then
  echo "== chat-storm, $VIEWERS viewers ($where)" >&2
  lt --http "$hosts" chat-storm --viewers "$VIEWERS" --senders 50 --rate "$RATE" --seconds 6 \
    >"$out/chat-$where.json" || true
  rows+=("$(report "chat-storm $RATE msg/s, $VIEWERS viewers, $where" "$out/chat-$where.json")")
  fi
  if has switchover; then
  echo "== switchover, $VIEWERS viewers ($where)" >&2
  lt --http "$hosts" switchover --viewers "$VIEWERS" --subscribers 10 --switches "$SWITCHES" \
    >"$out/switchover-$where.json" || true
  rows+=("$(report "switchover brand_switched, $VIEWERS viewers, $where" "$out/switchover-$where.json")")
  fi
  if has flash; then
  echo "== flash-sale, $DEALERS dealers ($where)" >&2
  lt --http "$hosts" flash-sale --dealers "$DEALERS" --stock 100 \
    >"$out/flash-$where.json" || true
  rows+=("$(report "flash-sale $DEALERS dealers, $where" "$out/flash-$where.json")")
  fi
done
echo
printf '%s\n' "${rows[@]}"
