#!/usr/bin/env python3
"""Prints 'N passed, N failed[, N skipped]' from meson test logs.

meson writes testlog.json, or testlog-<setup>.json for `meson test --setup X`;
pass the files (several are summed). A missing log counts as nothing run
(0 passed, 0 failed) and is named on stderr."""
import json
import sys

passed = failed = skipped = 0
for path in sys.argv[1:] or ["build/meson-logs/testlog.json"]:
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                r = json.loads(line).get("result", "")
                if r in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif r == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    except FileNotFoundError:
        print(f"test-summary: no log {path} (nothing ran there)", file=sys.stderr)
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
