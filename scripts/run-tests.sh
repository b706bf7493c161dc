#!/usr/bin/env bash
# The whole test suite, as CI runs it (after scripts/setup.sh or
# scripts/install-deps.sh + a build in build/):
#   1. build/: every suite, nested-host tests included (meson --setup full);
#   2. build-asan/ (-Dsanitize=true, ASan+UBSan): every suite but the nested
#      host (which copies a plain binary into its initramfs);
#   3. build-fuzz/ (clang, -Dfuzz=true): each libFuzzer target for
#      fuzz_seconds (15 s) on its seed corpus (scripts/fuzz.sh runs longer).
# Ends with one line "N passed, N failed[, N skipped]" over all three logs.
# Exit status: 0 when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

meson test -C build --setup full --print-errorlogs || status=1

if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan -Dsanitize=true >/dev/null || status=1
fi
if ninja -C build-asan >/dev/null; then
  meson test -C build-asan --print-errorlogs || status=1
else
  echo "sanitizer build failed"; status=1
fi

if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true >/dev/null || status=1
fi
if ninja -C build-fuzz >/dev/null; then
  meson test -C build-fuzz --suite fuzz --print-errorlogs || status=1
else
  echo "fuzz build failed"; status=1
fi

python3 scripts/test-summary.py build/meson-logs/testlog-full.json \
  build-asan/meson-logs/testlog.json build-fuzz/meson-logs/testlog.json
exit $status
