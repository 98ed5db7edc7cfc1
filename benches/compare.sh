#!/usr/bin/env bash
# Showfloor side by side with the systems people would pick instead, on this machine, in one
# run, with the same harness, and a ratio table at the end.
#
#   benches/compare.sh [events] [commerce] [media]     (default: all three)
#
#   events    showfloor-loadtest `audience` and `chat-storm --find-max-p99-ms` against Showfloor
#             and the Socket.IO peer (benches/peers/socketio). Each server is pinned to CPU 0,
#             the harness to CPU 1, so both get the same core and the harness never competes
#             with the server it measures.
#   commerce  `cargo bench --bench commerce`: durable flash-sale grabs vs a Redis Lua seckill.
#   media     showfloor-loadtest `media --find-max` against Showfloor and Janus VideoRoom
#             (benches/peers/janus), pinned as above — when this checkout has them.
#
# Sizes (environment): VIEWERS (events; default 2000), AUDIENCE (default 5000), STEP_SECS
# (seconds per search step; default 4), P99_MS (default 100), GRABS (default 100000).
# Installs what it needs (Node.js, the npm packages, redis-server, janus) and stops every
# server it started. Results and raw JSON go to target/compare/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
what=("$@")
[ ${#what[@]} -eq 0 ] && what=(events commerce media)
VIEWERS=${VIEWERS:-2000}
AUDIENCE=${AUDIENCE:-5000}
STEP_SECS=${STEP_SECS:-4}
P99_MS=${P99_MS:-100}
GRABS=${GRABS:-100000}
out=$root/target/compare
mkdir -p "$out"
ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then
  server_cpu=(taskset -c 0)
  harness_cpu=(taskset -c 1)
else
  server_cpu=()
  harness_cpu=()
fi
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Janus runs detached (janus.sh keeps its pid); an interrupted media part must not leave it.
  if [ -n "${janus_started:-}" ]; then benches/peers/janus/janus.sh stop || true; fi
  wait 2>/dev/null || true
}
trap cleanup EXIT

rows=()
row() { rows+=("$1|$2|$3|$4"); }

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

wait_http() {
  for _ in $(seq 1 100); do
    curl -fsS "http://$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server at $1 did not become ready" >&2
  exit 2
}

echo "== building (release)" >&2
cargo build --release -q -p showfloor -p showfloor-loadtest
bin=$root/target/release
lt=("${harness_cpu[@]}" "$bin/showfloor-loadtest")

key=compare-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_showfloor() {
  local data
  data=$(mktemp -d)
  "${server_cpu[@]}" "$bin/showfloor" serve --api-key "$key" --data-dir "$data" \
    --http-addr 127.0.0.1:17880 --grpc-addr 127.0.0.1:17881 \
    --media-udp-addr 127.0.0.1:17882 --max-connections 100000 \
    --max-media-subscribers 5000 >"$out/showfloor.log" 2>&1 &
  sf_pid=$!
  pids+=("$sf_pid")
  wait_http 127.0.0.1:17880
}
stop_showfloor() { kill "$sf_pid" 2>/dev/null || true; wait "$sf_pid" 2>/dev/null || true; }
sf=(--http 127.0.0.1:17880 --grpc http://127.0.0.1:17881 --api-key "$key" --json)

machine="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $ncpu CPUs, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
echo "== machine: $machine" >&2

for w in "${what[@]}"; do
  case $w in
  events)
    benches/peers/socketio/setup.sh
    echo "== events: audience of $AUDIENCE" >&2
    start_showfloor
    "${lt[@]}" "${sf[@]}" audience --viewers "$AUDIENCE" --rate 1000 --hold-secs 3 \
      --server-pid "$sf_pid" >"$out/audience-showfloor.json" || true
    stop_showfloor
    (cd benches/peers/socketio && exec "${server_cpu[@]}" node server.js 17890 >"$out/socketio.log" 2>&1) &
    io_pid=$!
    pids+=("$io_pid")
    sleep 1
    io_node=$(pgrep -P "$io_pid" node || echo "$io_pid")
    "${lt[@]}" --json audience --viewers "$AUDIENCE" --rate 1000 --hold-secs 3 \
      --socketio 127.0.0.1:17890 --server-pid "$io_node" >"$out/audience-socketio.json" || true
    a=$(json "$out/audience-showfloor.json" 'd["numbers"]["server_kb_per_viewer"]')
    b=$(json "$out/audience-socketio.json" 'd["numbers"]["server_kb_per_viewer"]')
    row "audience: server KB per idle viewer ($AUDIENCE)" "$a" "$b" \
      "$(python3 -c "print(f'{$b/$a:.2f}x less memory')" 2>/dev/null || echo n/a)"
    kill "$io_pid" 2>/dev/null || true
    wait "$io_pid" 2>/dev/null || true

    echo "== events: chat-storm search, $VIEWERS viewers, p99 <= $P99_MS ms" >&2
    (cd benches/peers/socketio && exec "${server_cpu[@]}" node server.js 17890 >>"$out/socketio.log" 2>&1) &
    io_pid=$!
    pids+=("$io_pid")
    sleep 1
    "${lt[@]}" --json chat-storm --viewers "$VIEWERS" --senders 20 --rate 10 \
      --seconds "$STEP_SECS" --find-max-p99-ms "$P99_MS" --socketio 127.0.0.1:17890 \
      >"$out/chat-socketio.json" || true
    kill "$io_pid" 2>/dev/null || true
    wait "$io_pid" 2>/dev/null || true
    start_showfloor
    "${lt[@]}" "${sf[@]}" chat-storm --viewers "$VIEWERS" --senders 20 --rate 10 \
      --seconds "$STEP_SECS" --find-max-p99-ms "$P99_MS" >"$out/chat-showfloor.json" || true
    stop_showfloor
    a=$(json "$out/chat-showfloor.json" 'd["numbers"].get("max_deliveries_per_s")')
    b=$(json "$out/chat-socketio.json" 'd["numbers"].get("max_deliveries_per_s")')
    row "chat-storm: deliveries/s at p99 <= $P99_MS ms, no loss ($VIEWERS viewers)" "$a" "$b" \
      "$(python3 -c "print(f'{$a/$b:.2f}x')" 2>/dev/null || echo n/a)"
    ;;
  commerce)
    echo "== commerce: durable grabs vs Redis Lua seckill" >&2
    command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
    cargo bench -q --bench commerce -- --grabs "$GRABS" | tee "$out/commerce.txt"
    rate() { grep "^$1" "$out/commerce.txt" | sed -n 's/.* \([0-9]*\) ops\/s.*/\1/p' | head -1; }
    a=$(rate "showfloor grab")
    b=$(rate "redis Lua seckill")
    r=$(sed -n 's/.*redis Lua grabs: \([0-9.]*x\).*/\1/p' "$out/commerce.txt")
    row "flash-sale: durable grabs/s (vs Redis Lua seckill)" "${a:-see commerce.txt}" "${b:-see commerce.txt}" "${r:-n/a}"
    ;;
  media)
    if [ ! -x benches/peers/janus/janus.sh ]; then
      echo "== media: skipped, this checkout has no Janus peer (benches/peers/janus/janus.sh)" >&2
      row "media" "not run" "not run" "no Janus peer in this checkout"
      continue
    fi
    echo "== media: WHEP subscribers at < 1 % loss" >&2
    start_showfloor
    "${lt[@]}" "${sf[@]}" media --find-max --server-pid "$sf_pid" >"$out/media-showfloor.json" || true
    stop_showfloor
    janus_started=1
    benches/peers/janus/janus.sh start "${server_cpu[@]}"
    "${lt[@]}" --json media --find-max --peer janus --janus-url http://127.0.0.1:8088/janus \
      --server-pid "$(benches/peers/janus/janus.sh pid)" >"$out/media-janus.json" || true
    benches/peers/janus/janus.sh stop
    a=$(json "$out/media-showfloor.json" 'd["numbers"].get("max_subscribers")')
    b=$(json "$out/media-janus.json" 'd["numbers"].get("max_subscribers")')
    row "media: WHEP subscribers at < 1 % loss (one core)" "$a" "$b" \
      "$(python3 -c "print(f'{$a/$b:.2f}x')" 2>/dev/null || echo n/a)"
    ;;
  *)
    echo "unknown part: $w (events, commerce, media)" >&2
    exit 2
    ;;
  esac
done

echo
echo "machine: $machine; servers on CPU 0, harness on CPU 1 (events, media); $(date -u +%FT%TZ)"
printf '%-70s | %-14s | %-14s | %s\n' "measure" "Showfloor" "peer" "ratio"
for r in "${rows[@]}"; do
  IFS='|' read -r m a b c <<<"$r"
  printf '%-70s | %-14s | %-14s | %s\n' "$m" "$a" "$b" "$c"
done | tee "$out/summary.txt"
