#!/usr/bin/env bash
# Browser test of registration on the viewer page (docs/registration.md): a phone-sized page
# registers in an open room, sees its invite link, and a second page registers through it.
#   bash tests/browser/register.sh          (or: cargo test --test browser_register)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/server.sh"

prepare
create_live_room "Autumn order meeting"
ctl set-registration "$room" open --phone-country CN >/dev/null
channel=$(ctl --json create-channel "$room" "WeChat group" | json_field code)

HTTP="http://127.0.0.1:$http" ROOM="$room" CHANNEL="$channel" \
ARTIFACTS="${ARTIFACTS:-${CARGO_TARGET_DIR:-$repo_root/target}/browser-artifacts}" \
  node "$here/register.mjs" || { server_log; exit 1; }

# What the pages did is what the host sees: the guest invited by the first registrant, through
# no channel; the first through the channel.
list=$(ctl --json registrations "$room")
echo "$list" | python3 -c '
import json, sys
regs = json.load(sys.stdin)["registrations"]
assert len(regs) == 2, regs
first, guest = regs
assert first["phone"] == "+8613800138000" and first["channel"], first
assert guest["inviter_id"] == first["viewer_id"], (guest, first)
print("ok - the host sees the inviter and the channel")
'
