#!/usr/bin/env bash
# Starts, stops and names the Janus VideoRoom peer for `showfloor-loadtest media --peer janus`.
#
#   janus.sh start [command prefix...]   e.g. `janus.sh start taskset -c 0`
#   janus.sh stop
#   janus.sh pid
#
# Environment (all optional):
#   JANUS_HTTP_PORT    REST API port on 127.0.0.1 (default 8088)
#   JANUS_RTP_PORTS    RTP/RTCP port range (default 10000-20000, apart from the clients'
#                      ephemeral ports 32768-60999)
#   JANUS_EVENT_LOOPS  shared media event loops (default: unset, Janus's own default of one
#                      thread per handle)
#   JANUS_DEBUG_LEVEL  0-7 (default 2, errors: at saturation level 3 writes a warning per
#                      discarded packet, hundreds of thousands a minute, on Janus's CPU)
#   JANUS_RUN_DIR      private folder for configs, log and pid (default
#                      target/janus/run-$JANUS_HTTP_PORT)
# One instance per HTTP port: stop and pid find it by the same JANUS_HTTP_PORT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${JANUS_CACHE_DIR:-$(cd "$here/../../.." && pwd)/target/janus}
export JANUS_CACHE_DIR=$cache
port=${JANUS_HTTP_PORT:-8088}
run=${JANUS_RUN_DIR:-$cache/run-$port}
pidfile=$run/janus.pid

running_pid() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# Fills in a template's @NAME@ values.
render() {
  sed -e "s|@RUN_DIR@|$run|g" -e "s|@HTTP_PORT@|$port|g" \
    -e "s|@RTP_PORTS@|${JANUS_RTP_PORTS:-10000-20000}|g" \
    -e "s|@DEBUG_LEVEL@|${JANUS_DEBUG_LEVEL:-2}|g" \
    -e "s|@EVENT_LOOPS@|$event_loops|g" "$here/$1.in" >"$run/$1"
}

start() {
  if pid=$(running_pid); then
    echo "janus already runs on port $port (pid $pid); stop it first" >&2
    exit 1
  fi
  "$here/setup.sh"
  local lib
  lib=$(dpkg -L janus | sed -n 's|/plugins/libjanus_videoroom\.so$||p' | head -1)
  [ -n "$lib" ] || { echo "janus is installed without its VideoRoom plugin" >&2; exit 2; }
  rm -rf "$run"
  mkdir -p "$run/plugins" "$run/transports" "$run/events" "$run/loggers"
  # Private folders holding only what is loaded: nothing else can be picked up.
  ln -s "$lib/plugins/libjanus_videoroom.so" "$run/plugins/"
  ln -s "$lib/transports/libjanus_http.so" "$run/transports/"
  event_loops=""
  if [ -n "${JANUS_EVENT_LOOPS:-}" ]; then
    event_loops="	event_loops = $JANUS_EVENT_LOOPS"
  fi
  render janus.jcfg
  render janus.transport.http.jcfg
  render janus.plugin.videoroom.jcfg
  LD_PRELOAD=$cache/loopback-shim.so "$@" janus --config="$run/janus.jcfg" \
    --configs-folder="$run" >"$run/janus.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/janus/info" >/dev/null 2>&1; then
      echo "janus runs on http://127.0.0.1:$port/janus (pid $pid, log $run/janus.log)" >&2
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "janus exited at start; its log ($run/janus.log):" >&2
      tail -n 30 "$run/janus.log" >&2
      exit 2
    fi
    sleep 0.1
  done
  echo "janus did not answer on port $port within 10 s; its log ($run/janus.log):" >&2
  tail -n 30 "$run/janus.log" >&2
  kill "$pid" 2>/dev/null || true
  exit 2
}

stop() {
  local pid
  if pid=$(running_pid); then
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case ${1:-} in
start) shift; start "$@" ;;
stop) stop ;;
pid) running_pid || { echo "janus does not run on port $port" >&2; exit 1; } ;;
*) echo "usage: $0 start [command prefix...] | stop | pid" >&2; exit 2 ;;
esac
