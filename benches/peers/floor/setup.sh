#!/usr/bin/env bash
# Builds the fan-out floor (floor.c) with the system's C compiler (Debian's gcc when missing)
# into target/peers/floor, and prints its path. Idempotent; used by benches/compare.sh and
# loadtest/tests/floor_peer.rs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../../../target/peers
mkdir -p "$out"
if ! command -v cc >/dev/null; then
  echo "installing gcc from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq gcc libc6-dev >/dev/null
fi
if [ ! -x "$out/floor" ] || [ "$here/floor.c" -nt "$out/floor" ]; then
  cc -O2 -Wall -Wextra -Werror -o "$out/floor.tmp" "$here/floor.c"
  mv "$out/floor.tmp" "$out/floor"
fi
echo "$(cd "$out" && pwd)/floor"
