#!/usr/bin/env python3
"""bench/startup: start-to-exit wall time and peak RSS, skiff vs QEMU microvm.

Both VMMs boot the same trivial PVH guest (tests/guests/trivial.elf: it writes
"ok" to COM1 and exits through isa-debug-exit at 0xf4). Runs are alternated
(skiff, QEMU, skiff, ...) in one process so that both see the same machine
state; a second series alternates skiff with --memory 256M and --memory 64G.

Wall time is measured by bench-spawn (bench/startup/spawn.c, a static helper)
from just before fork/exec to the reaping of the VMM, peak RSS from the same
wait4's ru_maxrss (the helper is tiny, so this is the VMM's own peak). Medians are reported
with the 10th and 90th percentiles and the ratio of medians.

Usage: bench/startup/run.py [--runs N] [--build DIR] [--qemu PATH] [--markdown]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


SPAWN = None  # path of bench-spawn, set in main()


def run_once(cmd):
    """Returns (wall ms, max RSS KiB, exit status), measured by bench-spawn."""
    out = subprocess.run([SPAWN] + cmd, stdout=subprocess.PIPE, check=True).stdout.split()
    return int(out[0]) / 1e6, int(out[1]), int(out[2])


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def series(cmds, runs, warmup=3):
    """Alternates the commands; returns {name: [(ms, rss), ...]}."""
    out = {name: [] for name in cmds}
    for i in range(warmup + runs):
        for name, cmd in cmds.items():
            ms, rss, rc = run_once(cmd)
            if rc != 1:  # debug-exit value 0 -> status 1
                sys.exit(f"{name}: unexpected exit status {rc} from {' '.join(cmd)}")
            if i >= warmup:
                out[name].append((ms, rss))
            time.sleep(0.02)  # let a previous VM's teardown settle
    return out


def summary(name, xs):
    ms = [x[0] for x in xs]
    rss = [x[1] for x in xs]
    return {
        "name": name,
        "median_ms": statistics.median(ms),
        "p10_ms": pct(ms, 0.1),
        "p90_ms": pct(ms, 0.9),
        "rss_kib": statistics.median(rss),
    }


def print_table(rows, markdown):
    if markdown:
        print("| VMM | median ms | p10 ms | p90 ms | peak RSS MiB |")
        print("|---|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['name']} | {r['median_ms']:.2f} | {r['p10_ms']:.2f} | "
                  f"{r['p90_ms']:.2f} | {r['rss_kib'] / 1024:.1f} |")
    else:
        for r in rows:
            print(f"{r['name']:<28} median {r['median_ms']:7.2f} ms  p10 {r['p10_ms']:7.2f}  "
                  f"p90 {r['p90_ms']:7.2f}  peak RSS {r['rss_kib'] / 1024:6.1f} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--build", default="build")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64"))
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()

    global SPAWN
    SPAWN = os.path.join(a.build, "bench", "startup", "bench-spawn")
    skiff = os.path.join(a.build, "skiff")
    guest = os.path.join(a.build, "tests", "guests", "trivial.elf")
    for f in (skiff, guest, SPAWN):
        if not os.path.exists(f):
            sys.exit(f"{f} not found: build skiff first (meson setup build && ninja -C build)")
    if not a.qemu:
        sys.exit("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")

    skiff_cmd = [skiff, "run", "--kernel", guest, "--memory", "256M", "--serial", "none",
                 "--debug-exit", "0xf4"]
    qemu_cmd = [a.qemu, "-M", "microvm", "-accel", "kvm", "-m", "256M", "-nodefaults",
                "-no-user-config", "-nographic", "-serial", "null", "-kernel", guest,
                "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]

    print(f"# bench/startup: {a.runs} alternated runs each, trivial PVH guest, 256 MiB")
    res = series({"skiff": skiff_cmd, "qemu microvm": qemu_cmd}, a.runs)
    rows = [summary(n, xs) for n, xs in res.items()]
    print_table(rows, a.markdown)
    ratio = rows[1]["median_ms"] / rows[0]["median_ms"]
    print(f"ratio (QEMU median / skiff median): {ratio:.1f}x faster")
    print(f"RSS difference (QEMU - skiff): {(rows[1]['rss_kib'] - rows[0]['rss_kib']) / 1024:.1f} MiB")

    print(f"\n# skiff --memory 256M vs --memory 64G, {a.runs} alternated runs each")
    big = list(skiff_cmd)
    big[big.index("256M")] = "64G"
    res = series({"skiff 256M": skiff_cmd, "skiff 64G": big}, a.runs)
    rows = [summary(n, xs) for n, xs in res.items()]
    print_table(rows, a.markdown)
    print(f"64G / 256M median: {rows[1]['median_ms'] / rows[0]['median_ms']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
