#!/usr/bin/env python3
"""Runs one libFuzzer target for a time budget on its seed corpus.

Usage: run.py TARGET SEED_DIR SECONDS|runs=N ARTIFACT_DIR [KEEP_DIR]

New inputs go to a temporary corpus (the seeds in the repository are only
read). A crash, leak, sanitizer report or timeout leaves its input in
ARTIFACT_DIR and fails (exit 1); otherwise prints the execution count and
rate and exits 0. runs=N runs N inputs instead of a time budget; KEEP_DIR
keeps the grown corpus there (for merging into the seeds).
"""
import os
import re
import subprocess
import sys
import tempfile
import time


def main():
    exe, seeds, budget, art = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    keep = sys.argv[5] if len(sys.argv) > 5 else None
    limit = (f"-runs={int(budget[5:])}" if budget.startswith("runs=")
             else f"-max_total_time={int(budget)}")
    os.makedirs(art, exist_ok=True)
    if not os.path.isdir(seeds) or not os.listdir(seeds):
        print(f"FAIL: no seed corpus in {seeds}")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = keep or tmp
        os.makedirs(work, exist_ok=True)
        cmd = [exe, limit, "-print_final_stats=1", "-timeout=10",
               "-rss_limit_mb=4096", f"-artifact_prefix={art}/", work, seeds]
        print("$ " + " ".join(cmd), flush=True)
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        took = time.monotonic() - t0
        ncorpus = len(os.listdir(work))
    out = p.stderr
    tail = out[-6000:]
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    execs = int(m.group(1)) if m else 0
    print(tail)
    print(f"{os.path.basename(exe)}: {execs} executions in {took:.1f} s "
          f"({execs / max(took, 0.001):.0f}/s), {ncorpus} new corpus entries, status {p.returncode}")
    if p.returncode != 0 or "ERROR: " in out or "runtime error" in out:
        print(f"FAIL: {os.path.basename(exe)} found a problem; input saved under {art}")
        return 1
    if execs == 0:
        print("FAIL: no input was executed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
