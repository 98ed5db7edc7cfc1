#!/usr/bin/env bash
# Browser test of the pages the binary serves: the host console (/host) and the viewer page
# (/r/{room}) in headless Chromium against a local showfloor (scenario: pages.mjs). Installs
# what it needs (Debian's chromium, playwright-core from npm), builds the server when run by
# hand, saves screenshots to $ARTIFACTS (default target/browser-artifacts).
#   bash tests/browser/pages.sh          (or: cargo test --test browser_pages, part of the suite)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/server.sh"

prepare

# Prices and links a public viewer must never receive; distinctive so a leak cannot hide.
add_catalog() {
  ctl upsert-product "$room" --brand "$alpha" --name "Down jacket" --description "700-fill, navy or sand" --moq 10 \
    --link https://shop.example/jacket-7319 --price gold=731943 --price silver=742957 --price bronze=753961 >/dev/null
  ctl upsert-product "$room" --brand "$bravo" --name "Trail boots" --description "Waterproof, sizes 36-47" --moq 6 \
    --link https://shop.example/boots-8642 --price gold=864211 --price silver=875323 --price bronze=886437 >/dev/null
}
create_live_room "Spring order meeting" add_catalog

HTTP="http://127.0.0.1:$http" ROOM="$room" BRAND_A="$alpha" BRAND_B="$bravo" KEY="$key" \
ARTIFACTS="${ARTIFACTS:-${CARGO_TARGET_DIR:-$repo_root/target}/browser-artifacts}" \
SECRET_CENTS="731943,742957,753961,864211,875323,886437" SECRET_TEXT="shop.example,jacket-7319,boots-8642" \
TOKEN_CHEN=$(ctl issue-token "$room" chen --name "Ms Chen" 2>/dev/null) \
TOKEN_LI=$(ctl issue-token "$room" li --name "Mr Li" 2>/dev/null) \
TOKEN_WANG=$(ctl issue-token "$room" wang --name "Wang Trading" 2>/dev/null) \
  node "$here/pages.mjs" || { server_log; exit 1; }
