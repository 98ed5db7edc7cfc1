#!/usr/bin/env bash
# Makes the Socket.IO peer runnable: Node.js (Debian's, when missing) and the locked npm
# dependencies. Idempotent; used by benches/compare.sh and loadtest/tests/socketio_peer.rs.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing Node.js from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f node_modules/socket.io/package.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
