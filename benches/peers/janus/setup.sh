#!/usr/bin/env bash
# Makes the Janus peer runnable: Debian's janus (when missing) and the loopback LD_PRELOAD shim
# built into target/janus/. Idempotent; used by janus.sh, benches/compare.sh and
# loadtest/tests/janus_peer.rs. Prints nothing when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${JANUS_CACHE_DIR:-$here/../../../target/janus}
if ! command -v janus >/dev/null; then
  echo "installing janus from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  # A package list as old as this machine may lack janus; refresh it once then.
  apt-get install -y -qq janus >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq janus >/dev/null; }
fi
# gcc builds the shim; janus.sh asks curl whether Janus answers.
if ! command -v gcc >/dev/null || ! command -v curl >/dev/null || [ ! -f /usr/include/ifaddrs.h ]; then
  echo "installing gcc and curl from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq gcc libc6-dev curl >/dev/null
fi
mkdir -p "$cache"
shim=$cache/loopback-shim.so
if [ ! -f "$shim" ] || [ "$here/loopback-shim.c" -nt "$shim" ]; then
  # Build beside and rename, so a concurrent start never loads a half-written library.
  gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$shim.$$" "$here/loopback-shim.c" -ldl
  mv -f "$shim.$$" "$shim"
fi
