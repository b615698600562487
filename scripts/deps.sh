#!/bin/sh
# scripts/deps.sh [build|test]
#
# Installs the Debian 12 packages souk needs, and only those that are
# missing: "build" for building and running the marketplace, "test" adds the
# real peers the tests talk to (kcat, redis-tools, ...).  Needs root (or sudo)
# when something is missing; does nothing when everything is there.
set -eu

what=${1:-build}

# Compilers and build tools, then the libraries of ARCHITECTURE.md.
BUILD_PKGS="gcc libc6-dev pkg-config meson ninja-build
  libevent-dev librdkafka-dev libsqlite3-dev libcjson-dev libssl-dev libhiredis-dev
  libcurl4-openssl-dev uuid-dev libargon2-dev libjwt-dev"
# Test peers: real clients and servers, never mocks.
TEST_PKGS="check kcat redis-tools redis-server python3 python3-aiosmtpd procps jq chromium"

case "$what" in
build) pkgs=$BUILD_PKGS ;;
test) pkgs="$BUILD_PKGS $TEST_PKGS" ;;
fuzz) pkgs="$BUILD_PKGS $TEST_PKGS clang libclang-rt-14-dev" ;;
*) echo "usage: $0 [build|test|fuzz]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root to install:$missing" >&2; exit 1; }
  SUDO=sudo
fi
echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
