#!/usr/bin/env bash
# Browser test: headless Chromium publishes by WHIP and plays by WHEP through a local
# showfloor, across brand switches. Installs what it needs (Debian's chromium, playwright-core
# from npm — never a downloaded browser), builds the server, runs, cleans up.
#   bash tests/browser/run.sh            (or: cargo test --test browser, part of the suite)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v chromium >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
(cd "$here" && npm install --no-audit --no-fund --silent)

# `cargo test --test browser` passes the binary it built; run by hand, build it here.
if [ -n "${SHOWFLOOR_BIN:-}" ]; then
  bin="$SHOWFLOOR_BIN"
else
  (cd "$root" && cargo build --bin showfloor)
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/showfloor"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port)
grpc=$(free_port)
data=$(mktemp -d)
key="browser-test-key-$(date +%s)-0123456789"
"$bin" serve --api-key "$key" --http-addr "127.0.0.1:$http" --grpc-addr "127.0.0.1:$grpc" \
  --media-udp-addr 127.0.0.1:0 --data-dir "$data" >"$data/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

export SHOWFLOOR_API_KEY="$key" SHOWFLOOR_SERVER="http://127.0.0.1:$grpc"
ctl() { "$bin" ctl "$@"; }
room=$(ctl --json create-room --title "Browser test" | python3 -c 'import json,sys; print(json.load(sys.stdin)["room"]["id"])')
a=$(ctl --json add-brand "$room" --name Alpha | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
b=$(ctl --json add-brand "$room" --name Bravo | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
ctl switch-brand "$room" "$a" >/dev/null
ctl open-room "$room" >/dev/null

HTTP="http://127.0.0.1:$http" ROOM="$room" BRAND_A="$a" BRAND_B="$b" SHOWFLOOR_BIN="$bin" \
TOKEN_A=$(ctl issue-presenter-token "$room" "$a" 2>/dev/null) \
TOKEN_B=$(ctl issue-presenter-token "$room" "$b" 2>/dev/null) \
TOKEN_V=$(ctl issue-token "$room" browser-viewer 2>/dev/null) \
  node "$here/whip_whep.mjs" || { echo "--- server log"; tail -50 "$data/server.log"; exit 1; }
