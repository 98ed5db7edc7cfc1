#!/usr/bin/env bash
# Browser test of the organiser's set-up in the host console (docs/web.md): from an empty
# server, the console creates a room, adds brands, checks and imports a catalogue and a dealer
# list, creates a channel link, goes live and confirms the dealers' orders in bulk
# (scenario: console.mjs, which reads what the server holds back with `ctl --json`).
#   bash tests/browser/console.sh          (or: cargo test --test browser_console)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/server.sh"

prepare

HTTP="http://127.0.0.1:$http" KEY="$key" BIN="$bin" \
ARTIFACTS="${ARTIFACTS:-${CARGO_TARGET_DIR:-$repo_root/target}/browser-artifacts}" \
  node "$here/console.mjs" || { server_log; exit 1; }
