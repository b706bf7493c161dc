#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install dependencies, build
# skiff, and boot the embedded demo guest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build
fi
ninja -C build
echo "== booting the embedded demo guest: build/skiff run"
exec build/skiff run
