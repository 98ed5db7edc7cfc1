#!/usr/bin/env bash
# Browser test of the viewer page moving between the nodes of a cluster (scenario:
# failover.mjs). `cargo test --test browser_failover` starts the nodes and passes them in the
# environment (see failover.mjs); this installs what the browser needs (Debian's chromium,
# playwright-core from npm) and runs the scenario.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/server.sh"

ensure_browser
node "$here/failover.mjs"
