#!/usr/bin/env bash
# Showfloor side by side with the systems people would pick instead, on this machine, in one
# run, with the same harness, and a table at the end (ratios where a peer exists).
#
#   benches/compare.sh [events] [floor] [commerce] [media] [targets]     (default: all five)
#
#   events    `audience` (memory per idle viewer) and `chat-storm --find-max-p99-ms` against
#             Showfloor and the Socket.IO peer (benches/peers/socketio).
#   floor     Showfloor against the fan-out floor (benches/peers/floor: one pre-built frame,
#             one write() per connection, nothing else): the p99 of one broadcast to
#             FLOOR_VIEWERS after a quiet spell (a brand switch's shape), and the same
#             `chat-storm --find-max-p99-ms` searches as `events`.
#   commerce  `cargo bench --bench commerce` (durable grabs vs a Redis Lua seckill), then the
#             harness's `flash-sale` against Showfloor (no peer speaks our WebSocket).
#   media     `media --find-max` against Showfloor and Janus VideoRoom (benches/peers/janus),
#             Janus both with its default threading and with `event_loops = 1`.
#   targets   `switchover` and `reconnect-storm` against Showfloor (no peer has brand switching
#             or resume), unpinned, the harness on the same machine.
#
# Servers are pinned to CPU 0 and the harness to CPU 1 for the side-by-side parts, so both
# servers get the same single core and the harness never competes with the server it
# measures. Every server process but the memory one (`audience`) gets a warm-up run first: on
# this kind of VM a fresh process's first thousands of connections are slow (memory the
# kernel gave back to the host is faulted in again), which is not what the comparison is about.
#
# Sizes (environment): AUDIENCE (default 10000), CHAT ("viewers:p99_ms ...", default
# "2000:100 5000:200"), STEP_SECS (seconds per search step; default 4), GRABS (default 100000),
# MEDIA_SECS (seconds per media step; default 4), RUNS (media searches per server; default 2),
# TARGET_VIEWERS (switchover and reconnect-storm; default 5000).
# Installs what it needs (Node.js and the npm packages, redis-server, janus) and stops every
# server it started. Results and raw JSON go to target/compare/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
what=("$@")
[ ${#what[@]} -eq 0 ] && what=(events floor commerce media targets)
AUDIENCE=${AUDIENCE:-10000}
CHAT=${CHAT:-"2000:100 5000:200"}
STEP_SECS=${STEP_SECS:-4}
GRABS=${GRABS:-100000}
MEDIA_SECS=${MEDIA_SECS:-4}
RUNS=${RUNS:-2}
TARGET_VIEWERS=${TARGET_VIEWERS:-5000}
FLOOR_VIEWERS=${FLOOR_VIEWERS:-5000}
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
# Each side holds one descriptor per connection; ask for more than the largest audience.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((AUDIENCE + 1000)) ]; then
  echo "open-file limit $(ulimit -n) is below AUDIENCE + 1000; lower AUDIENCE" >&2
  exit 2
fi

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Janus runs detached (janus.sh keeps its pid); an interrupted media part must not leave it.
  if [ -n "${janus_started:-}" ]; then benches/peers/janus/janus.sh stop >/dev/null 2>&1 || true; fi
  wait 2>/dev/null || true
}
trap cleanup EXIT

rows=()
row() { rows+=("$1|$2|$3|$4"); }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@" 2>/dev/null || echo n/a; }
ratio() { python3 -c "print(f'{$1/$2:.2f}x')" 2>/dev/null || echo n/a; }

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
# Shedding by load (--media-shed-lag-ms) is off: the media search measures what a core carries
# under the loss bound, as it does for Janus, which admits every subscriber.
start_showfloor() { # [cpu prefix...]
  local data
  data=$(mktemp -d)
  "$@" "$bin/showfloor" serve --api-key "$key" --data-dir "$data" \
    --http-addr 127.0.0.1:17880 --grpc-addr 127.0.0.1:17881 \
    --media-udp-addr 127.0.0.1:17882 --max-connections 100000 \
    --max-media-subscribers 5000 --media-shed-lag-ms 0 >"$out/showfloor.log" 2>&1 &
  sf_pid=$!
  pids+=("$sf_pid")
  wait_http 127.0.0.1:17880
  [ "${WARM:-1}" = 1 ] || return 0
  "$bin/showfloor-loadtest" "${sf[@]}" audience --viewers 2000 --rate 2000 --hold-secs 1 >/dev/null || true
}
stop_showfloor() { kill "$sf_pid" 2>/dev/null || true; wait "$sf_pid" 2>/dev/null || true; }
sf=(--http 127.0.0.1:17880 --grpc http://127.0.0.1:17881 --api-key "$key" --json)
start_socketio() {
  (cd benches/peers/socketio && exec "${server_cpu[@]}" node server.js 17890 >>"$out/socketio.log" 2>&1) &
  io_pid=$!
  pids+=("$io_pid")
  sleep 1
  [ "${WARM:-1}" = 1 ] || return 0
  "$bin/showfloor-loadtest" --json audience --viewers 2000 --rate 2000 --hold-secs 1 \
    --socketio 127.0.0.1:17890 >/dev/null || true
}
stop_socketio() { kill "$io_pid" 2>/dev/null || true; wait "$io_pid" 2>/dev/null || true; }
start_floor() {
  local floor
  floor=$(benches/peers/floor/setup.sh)
  "${server_cpu[@]}" "$floor" 17891 >>"$out/floor.log" 2>&1 &
  fl_pid=$!
  pids+=("$fl_pid")
  sleep 0.3
  [ "${WARM:-1}" = 1 ] || return 0
  "$bin/showfloor-loadtest" --json audience --viewers 2000 --rate 2000 --hold-secs 1 \
    --socketio 127.0.0.1:17891 >/dev/null || true
}
stop_floor() { kill "$fl_pid" 2>/dev/null || true; wait "$fl_pid" 2>/dev/null || true; }

# chat_storm_vs PEER PORT PID_VAR RATE SUFFIX LABEL RATIO_NOTE: for each VIEWERS:P99 of $CHAT, the
# chat-storm search for the most deliveries/s at that p99, against PEER (a server the harness
# speaks Socket.IO to, started by start_PEER on PORT, its pid in PID_VAR; senders start at
# RATE messages/s) and then against Showfloor (results in chat-VIEWERS-SUFFIX.json); one row
# each. LABEL is a printf format given the viewers.
chat_storm_vs() {
  local peer=$1 port=$2 pid_var=$3 rate=$4 suffix=$5 label=$6 note=$7 set v p99 a b
  for set in $CHAT; do
    v=${set%%:*}
    p99=${set##*:}
    echo "== $peer: chat-storm search, $v viewers, p99 <= $p99 ms" >&2
    "start_$peer"
    "${lt[@]}" --json chat-storm --viewers "$v" --senders 50 --rate "$rate" \
      --seconds "$STEP_SECS" --find-max-p99-ms "$p99" --socketio "127.0.0.1:$port" \
      --server-pid "${!pid_var}" >"$out/chat-$v-$peer.json" || true
    "stop_$peer"
    start_showfloor "${server_cpu[@]}"
    "${lt[@]}" "${sf[@]}" chat-storm --viewers "$v" --senders 50 --rate 20 \
      --seconds "$STEP_SECS" --find-max-p99-ms "$p99" --server-pid "$sf_pid" \
      >"$out/chat-$v-$suffix.json" || true
    stop_showfloor
    a=$(json "$out/chat-$v-$suffix.json" 'd["numbers"].get("max_deliveries_per_s")')
    b=$(json "$out/chat-$v-$peer.json" 'd["numbers"].get("max_deliveries_per_s")')
    # shellcheck disable=SC2059 # the label is the format
    row "chat-storm: deliveries/s at p99 <= $p99 ms $(printf "$label" "$v")" "$a" "$b" "$(ratio "$a" "$b")$note"
  done
}

machine="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $ncpu CPUs, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
echo "== machine: $machine" >&2

for w in "${what[@]}"; do
  case $w in
  events)
    benches/peers/socketio/setup.sh
    echo "== events: audience of $AUDIENCE" >&2
    # Memory is measured on a fresh process: a warm-up's freed memory would be reused and
    # hide what the audience costs (its connect times then include the cold start).
    WARM=0 start_showfloor "${server_cpu[@]}"
    "${lt[@]}" "${sf[@]}" audience --viewers "$AUDIENCE" --rate 1000 --hold-secs 3 \
      --server-pid "$sf_pid" >"$out/audience-showfloor.json" || true
    stop_showfloor
    WARM=0 start_socketio
    "${lt[@]}" --json audience --viewers "$AUDIENCE" --rate 1000 --hold-secs 3 \
      --socketio 127.0.0.1:17890 --server-pid "$io_pid" >"$out/audience-socketio.json" || true
    stop_socketio
    a=$(json "$out/audience-showfloor.json" 'd["numbers"]["server_kb_per_viewer"]')
    b=$(json "$out/audience-socketio.json" 'd["numbers"]["server_kb_per_viewer"]')
    row "audience: server KB per idle viewer ($AUDIENCE)" "$a" "$b" "$(ratio "$b" "$a") less memory"

    chat_storm_vs socketio 17890 io_pid 10 showfloor "no loss (%s viewers)" ""
    ;;
  floor)
    echo "== floor: one broadcast to $FLOOR_VIEWERS after a quiet spell, 1 message/s for 20 s" >&2
    start_floor
    "${lt[@]}" --json chat-storm --viewers "$FLOOR_VIEWERS" --senders 1 --rate 1 --seconds 20 \
      --socketio 127.0.0.1:17891 >"$out/broadcast-floor.json" || true
    stop_floor
    start_showfloor "${server_cpu[@]}"
    "${lt[@]}" "${sf[@]}" chat-storm --viewers "$FLOOR_VIEWERS" --senders 1 --rate 1 --seconds 20 \
      --server-pid "$sf_pid" >"$out/broadcast-showfloor.json" || true
    stop_showfloor
    a=$(json "$out/broadcast-showfloor.json" 'd["latency"]["p99_ms"]')
    b=$(json "$out/broadcast-floor.json" 'd["latency"]["p99_ms"]')
    row "one broadcast to $FLOOR_VIEWERS: delivery p99 ms (peer: the floor)" "$a" "$b" "$(ratio "$a" "$b") of the floor"
    chat_storm_vs floor 17891 fl_pid 20 showfloor-vs-floor "(%s viewers; peer: the floor)" " of the floor"
    ;;
  commerce)
    echo "== commerce: durable grabs vs Redis Lua seckill" >&2
    command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
    cargo bench -q --bench commerce -- --grabs "$GRABS" | tee "$out/commerce.txt"
    rate() { grep "^$1" "$out/commerce.txt" | sed -n 's/.* \([0-9]*\) ops\/s.*/\1/p' | head -1; }
    a=$(rate "showfloor grab")
    b=$(rate "redis Lua seckill")
    r=$(sed -n 's/.*redis Lua grabs: \([0-9.]*x\).*/\1/p' "$out/commerce.txt")
    row "flash-sale bench: durable grabs/s (vs Redis Lua seckill)" "${a:-see commerce.txt}" "${b:-see commerce.txt}" "${r:-n/a}"
    echo "== commerce: flash-sale through the harness" >&2
    start_showfloor "${server_cpu[@]}"
    "${lt[@]}" "${sf[@]}" flash-sale --dealers 500 --stock 50000 --limit 100 --attempts 100 \
      >"$out/flash-sale.json" || true
    stop_showfloor
    row "flash-sale harness: grab answers/s, 500 dealers x 100, all checks" \
      "$(json "$out/flash-sale.json" 'd["numbers"]["grab_answers_per_s"]')" "-" \
      "$(json "$out/flash-sale.json" '"pass" if all(c["ok"] for c in d["checks"]) else "FAIL"')"
    ;;
  media)
    echo "== media: WHEP subscribers at < 1 % loss, $RUNS searches each" >&2
    best() { python3 -c "import json,sys; print(max((json.load(open(f))['numbers'].get('max_subscribers') or 0) for f in sys.argv[1:]))" "$@" 2>/dev/null || echo n/a; }
    for i in $(seq "$RUNS"); do
      start_showfloor "${server_cpu[@]}"
      "${lt[@]}" "${sf[@]}" media --find-max --seconds "$MEDIA_SECS" --server-pid "$sf_pid" \
        >"$out/media-showfloor-$i.json" || true
      stop_showfloor
      for loops in default 1; do
        janus_started=1
        if [ "$loops" = 1 ]; then export JANUS_EVENT_LOOPS=1; else unset JANUS_EVENT_LOOPS; fi
        benches/peers/janus/janus.sh start "${server_cpu[@]}" >/dev/null
        "${lt[@]}" --json media --find-max --seconds "$MEDIA_SECS" --peer janus \
          --janus-url http://127.0.0.1:8088/janus --server-pid "$(benches/peers/janus/janus.sh pid)" \
          >"$out/media-janus-$loops-$i.json" || true
        benches/peers/janus/janus.sh stop >/dev/null
      done
      unset JANUS_EVENT_LOOPS
    done
    a=$(best "$out"/media-showfloor-*.json)
    b=$(best "$out"/media-janus-default-*.json)
    c=$(best "$out"/media-janus-1-*.json)
    row "media: subscribers at < 1 % loss, one core (Janus default)" "$a" "$b" "$(ratio "$a" "$b")"
    row "media: subscribers at < 1 % loss, one core (Janus event_loops=1)" "$a" "$c" "$(ratio "$a" "$c")"
    ;;
  targets)
    echo "== targets: switchover and reconnect-storm (unpinned)" >&2
    start_showfloor
    lu=("$bin/showfloor-loadtest")
    "${lu[@]}" "${sf[@]}" switchover --viewers "$TARGET_VIEWERS" --subscribers 50 --brands 3 \
      --switches 20 >"$out/switchover.json" || true
    "${lu[@]}" "${sf[@]}" reconnect-storm --viewers "$TARGET_VIEWERS" --drop-percent 50 \
      >"$out/reconnect-storm.json" || true
    stop_showfloor
    row "switchover: brand_switched p99 ms / key frame p99 ms ($TARGET_VIEWERS + 50)" \
      "$(json "$out/switchover.json" 'd["numbers"]["brand_switched_ms"]["p99_ms"]') / $(json "$out/switchover.json" 'd["numbers"]["keyframe_after_switch_ms"]["p99_ms"]')" "-" \
      "$(json "$out/switchover.json" '"pass" if all(c["ok"] for c in d["checks"]) else "FAIL"')"
    row "reconnect-storm: ms until half of $TARGET_VIEWERS resumed" \
      "$(json "$out/reconnect-storm.json" 'd["numbers"]["recovered_in_ms"]')" "-" \
      "$(json "$out/reconnect-storm.json" '"pass" if all(c["ok"] for c in d["checks"]) else "FAIL"')"
    ;;
  *)
    echo "unknown part: $w (events, floor, commerce, media, targets)" >&2
    exit 2
    ;;
  esac
done

echo
echo "machine: $machine; side by side: servers on CPU 0, harness on CPU 1; $(date -u +%FT%TZ)"
printf '%-72s | %-16s | %-14s | %s\n' "measure" "Showfloor" "peer" "ratio / result"
for r in "${rows[@]}"; do
  IFS='|' read -r m a b c <<<"$r"
  printf '%-72s | %-16s | %-14s | %s\n' "$m" "$a" "$b" "$c"
done | tee "$out/summary.txt"
