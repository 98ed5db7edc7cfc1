#!/usr/bin/env bash
# Browser test: headless Chromium publishes by WHIP and plays by WHEP through a local
# showfloor, across brand switches. Installs what it needs (Debian's chromium, playwright-core
# from npm — never a downloaded browser), builds the server, runs, cleans up.
#   bash tests/browser/run.sh            (or: cargo test --test browser, part of the suite)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/server.sh"

prepare
create_live_room "Browser test"

HTTP="http://127.0.0.1:$http" ROOM="$room" BRAND_A="$alpha" BRAND_B="$bravo" SHOWFLOOR_BIN="$bin" \
TOKEN_A=$(ctl issue-presenter-token "$room" "$alpha" 2>/dev/null) \
TOKEN_B=$(ctl issue-presenter-token "$room" "$bravo" 2>/dev/null) \
TOKEN_V=$(ctl issue-token "$room" browser-viewer 2>/dev/null) \
  node "$here/whip_whep.mjs" || { server_log; exit 1; }
