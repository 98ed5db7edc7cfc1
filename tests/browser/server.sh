# Shared by the browser scenarios (sourced): installs Debian's chromium and playwright-core when
# missing (never a downloaded browser), finds or builds the showfloor binary, starts a server on
# free loopback ports with a fresh data directory, and stops it on exit.
# After `start_server`: $bin, $http, $grpc, $key, $data; `ctl …` runs the control-plane CLI.

browser_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$browser_dir/../.." && pwd)

ensure_browser() {
  if ! command -v chromium >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  fi
  (cd "$browser_dir" && npm install --no-audit --no-fund --silent)
}

# `cargo test` passes the binary it built; run by hand, build it here.
find_binary() {
  if [ -n "${SHOWFLOOR_BIN:-}" ]; then
    bin="$SHOWFLOOR_BIN"
  else
    (cd "$repo_root" && cargo build --bin showfloor)
    bin="${CARGO_TARGET_DIR:-$repo_root/target}/debug/showfloor"
  fi
}

# The server binds ports the kernel chooses (no race with another test's connections for a
# port picked beforehand) and names them in its "showfloor serving" log line.
start_server() {
  data=$(mktemp -d)
  key="browser-test-key-$(date +%s)-0123456789"
  SHOWFLOOR_LOG=info "$bin" serve --api-key "$key" --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 \
    --media-udp-addr 127.0.0.1:0 --data-dir "$data" >"$data/server.log" 2>&1 &
  server=$!
  trap stop_server EXIT
  http="" grpc=""
  for _ in $(seq 300); do
    line=$(grep -m1 "showfloor serving" "$data/server.log" || true)
    if [ -n "$line" ]; then
      http=$(echo "$line" | sed -n 's/.*http_addr=127\.0\.0\.1:\([0-9]*\).*/\1/p')
      grpc=$(echo "$line" | sed -n 's/.*grpc_addr=127\.0\.0\.1:\([0-9]*\).*/\1/p')
      break
    fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$http" ] || [ -z "$grpc" ]; then
    echo "showfloor serve did not start serving" >&2
    server_log >&2
    exit 1
  fi
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  export SHOWFLOOR_API_KEY="$key" SHOWFLOOR_SERVER="http://127.0.0.1:$grpc"
}

# Everything a scenario needs before its room: the browser, the binary, a running server.
prepare() { ensure_browser; find_binary; start_server; }

stop_server() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }

server_log() { echo "--- server log"; tail -50 "$data/server.log"; }

ctl() { "$bin" ctl "$@"; }

# Prints a field of the JSON that a `ctl --json` command prints, e.g. `json_field id`.
json_field() { python3 -c "import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split('.'): v=v[k]
print(v)" "$1"; }

# A live room titled $1 with brands Alpha and Bravo, Alpha on air: sets $room, $alpha, $bravo.
# $2, when given, runs between creating the brands and opening the room (e.g. the catalog).
create_live_room() {
  room=$(ctl --json create-room --title "$1" | json_field room.id)
  alpha=$(ctl --json add-brand "$room" --name Alpha | json_field id)
  bravo=$(ctl --json add-brand "$room" --name Bravo | json_field id)
  [ -z "${2:-}" ] || "$2"
  ctl switch-brand "$room" "$alpha" >/dev/null
  ctl open-room "$room" >/dev/null
}
