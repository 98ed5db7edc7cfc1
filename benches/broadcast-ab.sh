#!/usr/bin/env bash
# One broadcast to 5,000 after a quiet spell (1 message/s), the floor and one or more Showfloor
# binaries in the same run: for A/B tests of the fan-out path (BENCHMARKS.md, "Profiled,
# changed, re-run"). The floor first, then each binary in turn; servers on CPU 0, the harness
# on CPU 1, as benches/compare.sh does.
#
#   benches/broadcast-ab.sh [--perf record|stat] BIN...
#
#   --perf stat    also the server's CPU (perf stat -e task-clock) over 10 of the broadcasts
#                  (from 8 s into the storm: keep SECS at 18 or more)
#   --perf record  also a call-graph profile of the server, in target/compare/perf-N.data
# Needs the release harness (cargo build --release -p showfloor-loadtest), the floor
# (benches/peers/floor/setup.sh) and, for --perf, perf. VIEWERS and SECS override 5000 / 20.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
perf_mode=
if [ "${1:-}" = --perf ]; then perf_mode=$2; shift 2; fi
[ $# -ge 1 ] || { sed -n 2,14p "$0" >&2; exit 2; }
viewers=${VIEWERS:-5000}
secs=${SECS:-20}
out=$root/target/compare
mkdir -p "$out"
lt=target/release/showfloor-loadtest
floor=$(benches/peers/floor/setup.sh)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
key=broadcast-ab-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
p99() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['latency']['p99_ms'])" "$1"; }
storm() { # output file, the harness's own options, --, the scenario's extra options
  local f=$1 g=()
  shift
  while [ "$1" != -- ]; do
    g+=("$1")
    shift
  done
  shift
  taskset -c 1 "$lt" --json "${g[@]}" chat-storm --viewers "$viewers" --senders 1 --rate 1 \
    --seconds "$secs" "$@" >"$f"
}

taskset -c 0 "$floor" 17891 >/dev/null 2>&1 &
fp=$!
sleep 0.3
taskset -c 1 "$lt" --json audience --viewers 2000 --rate 2000 --hold-secs 1 \
  --socketio 127.0.0.1:17891 >/dev/null
storm "$out/ab-floor.json" -- --socketio 127.0.0.1:17891
kill "$fp" 2>/dev/null || true
wait "$fp" 2>/dev/null || true
floor_p99=$(p99 "$out/ab-floor.json")
echo "floor: p99 $floor_p99 ms"

n=0
for bin in "$@"; do
  n=$((n + 1))
  data=$(mktemp -d)
  taskset -c 0 "$bin" serve --api-key "$key" --data-dir "$data" --http-addr 127.0.0.1:17880 \
    --grpc-addr 127.0.0.1:17881 --media-udp-addr 127.0.0.1:17882 --max-connections 100000 \
    >"$out/ab-$n.log" 2>&1 &
  sp=$!
  for _ in $(seq 100); do
    curl -fsS http://127.0.0.1:17880/readyz >/dev/null 2>&1 && break
    sleep 0.1
  done
  sf=(--http 127.0.0.1:17880 --grpc http://127.0.0.1:17881 --api-key "$key")
  taskset -c 1 "$lt" "${sf[@]}" audience --viewers 2000 --rate 2000 --hold-secs 1 >/dev/null
  pp=
  case $perf_mode in
  stat) (sleep 8; perf stat -e task-clock -x, -o "$out/ab-$n.stat" -p "$sp" -- sleep 10 >/dev/null 2>&1) & pp=$! ;;
  record) (sleep 8; perf record -F 2000 -g -o "$out/perf-$n.data" -p "$sp" -- sleep 8 >/dev/null 2>&1) & pp=$! ;;
  esac
  storm "$out/ab-$n.json" "${sf[@]}" -- --server-pid "$sp"
  [ -z "$pp" ] || wait "$pp"
  kill "$sp" 2>/dev/null || true
  wait "$sp" 2>/dev/null || true
  rm -rf "$data"
  line="$bin: p99 $(p99 "$out/ab-$n.json") ms, $(python3 -c "print(f'{$(p99 "$out/ab-$n.json")/$floor_p99:.2f}')")x the floor"
  if [ "$perf_mode" = stat ]; then
    line="$line, server CPU $(cut -d, -f1 "$out/ab-$n.stat" | grep -E '^[0-9.]+$' | head -1) ms over 10 broadcasts"
  fi
  echo "$line"
done
