#!/usr/bin/env python3
"""bench/blk: virtio-blk throughput, skiff vs QEMU virtio-blk-pci vs host fio.

The same ring-3 driver guest (tests/guests/virtio_bench.elf) keeps `qd`
requests of `bs` bytes in flight on disk 0, polling the used ring, under
  - skiff:  --disk path=IMG            (page cache)  and  direct=on,
            with its default memfd RAM and with --memory 512M,thp=on
  - QEMU:   -M q35 -accel kvm, virtio-blk-pci (modern), aio=io_uring,
            cache=writeback (page cache) and cache=none (O_DIRECT)
and host `fio --ioengine=io_uring` runs the same pattern on the same file
(buffered and --direct=1): the limit.

Guest runs are timed on the host between the guest's "BENCH START" line and
its "BENCH ops=" line (the guest's own TSC rate estimate is not trusted).
The image is read once before the runs, so buffered runs are served from
the host page cache.

Usage: bench/blk/run.py [--build DIR] [--image PATH] [--size-mib N] [--secs S]
                        [--only 4k-randread-qd1,...] [--disk-opts ,poll=50] [--markdown]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

WORKLOADS = [
    # name, mode, bs, qd
    ("4k-randread-qd1", "randread", 4096, 1),
    ("4k-randread-qd32", "randread", 4096, 32),
    ("4k-randread-qd128", "randread", 4096, 128),
    ("128k-seqread-qd8", "seqread", 131072, 8),
    ("128k-seqwrite-qd8", "seqwrite", 131072, 8),
]


def guest_run(cmd, secs):
    """Runs a VMM with the bench guest; returns (ops, bytes, seconds)."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    t_start = t_end = None
    ops = nbytes = None
    deadline = time.monotonic() + secs * 4 + 60
    for raw in p.stdout:
        line = raw.decode(errors="replace")
        if "BENCH START" in line:
            t_start = time.monotonic()
        m = re.search(r"BENCH ops=(\d+) bytes=(\d+)", line)
        if m:
            t_end = time.monotonic()
            ops, nbytes = int(m.group(1)), int(m.group(2))
        if "TEST FAIL" in line or time.monotonic() > deadline:
            break
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if ops is None or t_start is None:
        err = p.stderr.read().decode(errors="replace")
        sys.exit(f"benchmark guest failed: {' '.join(cmd)}\n{err}")
    return ops, nbytes, t_end - t_start


def skiff_cmd(args, w, direct, thp=False):
    _, mode, bs, qd = w
    sectors = args.size_mib * 2048
    disk = f"path={args.image}" + (",direct=on" if direct else "") + args.disk_opts
    return [os.path.join(args.build, "skiff"), "run",
            "--kernel", os.path.join(args.build, "tests/guests/virtio_bench.elf"),
            "--memory", "512M,thp=on" if thp else "512M", "--debug-exit", "0xf4",
            "--serial", "stdio", "--disk", disk,
            "--cmdline", f"mode={mode} bs={bs} qd={qd} secs={args.secs} sectors={sectors} "
                         f"tsc_khz={args.tsc_khz}"]


def qemu_cmd(args, w, direct):
    _, mode, bs, qd = w
    sectors = args.size_mib * 2048
    cache = "none" if direct else "writeback"
    return [args.qemu, "-M", "q35", "-accel", "kvm", "-m", "512M", "-nographic",
            "-nodefaults", "-serial", "stdio", "-no-reboot",
            "-kernel", os.path.join(args.build, "tests/guests/virtio_bench.elf"),
            "-append", f"mode={mode} bs={bs} qd={qd} secs={args.secs} sectors={sectors} "
                       f"tsc_khz={args.tsc_khz}",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-drive", f"if=none,id=d0,file={args.image},format=raw,aio=io_uring,cache={cache}",
            "-device", "virtio-blk-pci,drive=d0,disable-legacy=on,num-queues=1"]


def fio_run(args, w, direct):
    _, mode, bs, qd = w
    rw = {"randread": "randread", "seqread": "read", "seqwrite": "write"}[mode]
    cmd = ["fio", "--name=bench", f"--filename={args.image}", "--ioengine=io_uring",
           f"--rw={rw}", f"--bs={bs}", f"--iodepth={qd}", f"--runtime={args.secs}",
           "--time_based", f"--direct={1 if direct else 0}", "--output-format=json",
           # fio drops the file's pages before a buffered job by default:
           # its page-cache rows would then start from the disk.
           "--invalidate=0",
           f"--size={args.size_mib}M", "--randrepeat=0", "--norandommap"]
    out = json.loads(subprocess.run(cmd, stdout=subprocess.PIPE, check=True).stdout)
    job = out["jobs"][0]
    side = job["write"] if mode == "seqwrite" else job["read"]
    secs = job["job_runtime"] / 1000.0
    return side["total_ios"], side["io_bytes"], secs


def tsc_khz():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return int(float(line.split(":")[1]) * 1000)
    return 3000000


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(here, "..", "..", "build"))
    ap.add_argument("--image", default="/var/tmp/skiff-bench-blk.img")
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64"))
    ap.add_argument("--only", default="")
    ap.add_argument("--disk-opts", default="", help="appended to skiff's --disk, e.g. ,poll=50")
    ap.add_argument("--no-direct", action="store_true", help="skip the O_DIRECT series")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    args.tsc_khz = tsc_khz()
    if not shutil.which("fio"):
        sys.exit("fio is not installed (apt-get install fio)")
    if not os.path.exists(args.image) or os.path.getsize(args.image) != args.size_mib << 20:
        print(f"creating {args.image} ({args.size_mib} MiB)", file=sys.stderr)
        with open(args.image, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
    with open(args.image, "rb") as f:   # into the page cache
        while f.read(1 << 24):
            pass
    only = set(args.only.split(",")) if args.only else None
    rows = []
    for w in WORKLOADS:
        if only and w[0] not in only:
            continue
        for direct in ([False] if args.no_direct else [False, True]):
            r = {"workload": w[0], "cache": "direct" if direct else "page cache"}
            for name, fn in [("fio", lambda: fio_run(args, w, direct)),
                             ("skiff", lambda: guest_run(skiff_cmd(args, w, direct), args.secs)),
                             ("skiff-thp", lambda: guest_run(skiff_cmd(args, w, direct, True),
                                                             args.secs)),
                             ("qemu", lambda: guest_run(qemu_cmd(args, w, direct), args.secs))]:
                if name == "qemu" and not args.qemu:
                    continue
                ops, nbytes, secs = fn()
                r[name] = (ops / secs, nbytes / secs / 1e6)
                print(f"{w[0]:20s} {r['cache']:10s} {name:9s} {ops / secs:10.0f} IOPS "
                      f"{nbytes / secs / 1e6:9.1f} MB/s", file=sys.stderr)
            rows.append(r)
    hdr = ["workload", "cache", "host fio IOPS", "skiff IOPS", "skiff thp IOPS", "QEMU IOPS",
           "skiff MB/s", "skiff/fio", "skiff/QEMU", "thp/fio", "thp/QEMU"]
    lines = []
    for r in rows:
        f, s, t = r["fio"], r["skiff"], r["skiff-thp"]
        q = r.get("qemu", (float("nan"), 0))
        lines.append([r["workload"], r["cache"], f"{f[0]:.0f}", f"{s[0]:.0f}", f"{t[0]:.0f}",
                      f"{q[0]:.0f}", f"{s[1]:.1f}", f"{s[0] / f[0]:.2f}", f"{s[0] / q[0]:.2f}",
                      f"{t[0] / f[0]:.2f}", f"{t[0] / q[0]:.2f}"])
    if args.markdown:
        print("| " + " | ".join(hdr) + " |")
        print("|" + "---|" * len(hdr))
        for ln in lines:
            print("| " + " | ".join(ln) + " |")
    else:
        print("  ".join(f"{h:>14s}" for h in hdr))
        for ln in lines:
            print("  ".join(f"{c:>14s}" for c in ln))


if __name__ == "__main__":
    main()
