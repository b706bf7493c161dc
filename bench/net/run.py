#!/usr/bin/env python3
"""virtio-net benchmark: skiff vs QEMU's virtio-net-pci (userspace tap
backend, vhost=off), both driving the same ring-3 guest
(tests/guests/virtio_net.elf, mode=tx|rx), on one tap in a network
namespace this script makes. See README.md.

  guest -> host (tx): the guest keeps its transmit ring full for SECS
      seconds and reports frames completed and the time (guest TSC);
  host -> guest (rx): bench/net/sender.c writes frames into the tap's
      transmit path as fast as it can; the guest counts frames received.

Sizes: 64-byte frames (packets/s) and 64 KiB TSO frames (Gbit/s).
Usage: run.py [--skiff PATH] [--guest-dir DIR] [--secs N] [--runs N] [--json]
Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN for unshare), /dev/kvm and
qemu-system-x86_64 (QEMU is skipped if missing).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TAP = "bn0"
MAC = "02:00:00:00:00:42"
# A TSO frame: 65000 bytes with its Ethernet header (the tap refuses a
# GSO packet of a full 64 KiB in the host -> guest direction).
TSO_SIZE = 65000


def sh(*cmd):
    subprocess.run(cmd, check=True)


def in_netns():
    if os.environ.get("SKIFF_BENCH_NETNS") == "1":
        return
    env = dict(os.environ, SKIFF_BENCH_NETNS="1")
    os.execvpe("unshare", ["unshare", "-n", sys.executable] + sys.argv, env)


def setup_tap():
    for p in ("default", "all"):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{p}/disable_ipv6", "w") as f:
                f.write("1")
        except OSError:
            pass
    sh("ip", "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr")
    sh("ip", "link", "set", TAP, "txqueuelen", "4096", "up")


def tap_stat(name):
    """From /proc/net/dev (per namespace; /sys still shows the parent's)."""
    cols = {"rx_packets": 2, "tx_packets": 10, "tx_dropped": 12}
    with open("/proc/net/dev") as f:
        for line in f:
            if line.strip().startswith(TAP + ":"):
                return int(line.split(":", 1)[1].split()[cols[name] - 1])
    return 0


def vmm_cmd(vmm, args, cmdline, direction, size):
    elf = os.path.join(args.guest_dir, "virtio_net.elf")
    if vmm == "host":
        return [args.tapmax, direction, TAP, str(size), str(args.secs)]
    if vmm == "skiff":
        return [args.skiff, "run", "--kernel", elf, "--debug-exit", "0xf4", "--serial", "stdio",
                "--net", f"tap={TAP},mac={MAC}{args.net_opts}", "--cmdline", cmdline]
    return ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-m", "256M", "-nographic",
            "-nodefaults", "-serial", "stdio", "-no-reboot", "-kernel", elf, "-append", cmdline,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no,vhost=off",
            "-device", f"virtio-net-pci,netdev=n0,mac={MAC},disable-legacy=on"]


def parse(out, direction):
    m = re.search(rf"BENCH {direction} frames=(\d+) bytes=(\d+) ns=(\d+)", out)
    if not m or int(m.group(3)) == 0:
        raise RuntimeError("no BENCH line:\n" + out[-2000:])
    frames, nbytes, ns = (int(x) for x in m.groups())
    return frames / (ns / 1e9), nbytes * 8 / ns   # frames/s, Gbit/s


def run_once(vmm, args, direction, size, sender):
    cmdline = f"mode={direction} size={size} secs={args.secs}"
    cmd = vmm_cmd(vmm, args, cmdline, direction, size)
    before = (tap_stat("rx_packets"), tap_stat("tx_packets"), tap_stat("tx_dropped"))
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out = ""
    if direction == "rx":
        while "BENCH rx ready" not in out:
            line = p.stdout.readline()
            if not line:
                break
            out += line
        time.sleep(0.2)
        subprocess.run([sender, TAP, str(size), str(args.secs)], check=True,
                       stdout=subprocess.DEVNULL)
    rest, err = p.communicate(timeout=args.secs + 60)
    out += rest
    after = (tap_stat("rx_packets"), tap_stat("tx_packets"), tap_stat("tx_dropped"))
    if p.returncode != (0 if vmm == "host" else 1):
        raise RuntimeError(f"{vmm} exited with {p.returncode}:\n{out[-1000:]}\n{err[-2000:]}")
    rate, gbit = parse(out, direction)
    tapdelta = [a - b for a, b in zip(after, before)]
    return rate, gbit, tapdelta


def build_tool(d, name):
    exe = os.path.join(d, name)
    sh("cc", "-O2", "-Wall", "-o", exe, os.path.join(HERE, name + ".c"))
    return exe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skiff", default=os.path.join(ROOT, "build", "skiff"))
    ap.add_argument("--guest-dir", default=os.path.join(ROOT, "build", "tests", "guests"))
    ap.add_argument("--secs", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--net-opts", default="", help="appended to skiff's --net, e.g. ,poll=50")
    args = ap.parse_args()
    in_netns()
    setup_tap()
    vmms = ["host", "skiff"] + (["qemu"] if shutil.which("qemu-system-x86_64") else [])
    results = {}
    with tempfile.TemporaryDirectory() as d:
        sender = build_tool(d, "sender")
        args.tapmax = build_tool(d, "tapmax")
        for direction in ("tx", "rx"):
            for size in (64, TSO_SIZE):
                for vmm in vmms:
                    runs = [run_once(vmm, args, direction, size, sender) for _ in range(args.runs)]
                    key = f"{direction}-{size}-{vmm}"
                    results[key] = {
                        "pps": statistics.median(r[0] for r in runs),
                        "gbit": statistics.median(r[1] for r in runs),
                        "tap": runs[-1][2],
                    }
                    print(f"{key:18} {results[key]['pps']:>12,.0f} frames/s "
                          f"{results[key]['gbit']:>8.2f} Gbit/s  "
                          f"(tap rx/tx/tx_dropped of the last run: {runs[-1][2]})",
                          flush=True)
    print()
    print("direction  size    metric   host limit       skiff        qemu  skiff/limit  "
          "skiff/qemu  limit/qemu")
    for direction in ("tx", "rx"):
        for size in (64, TSO_SIZE):
            metric = "pps" if size == 64 else "gbit"
            h = results[f"{direction}-{size}-host"][metric]
            s = results[f"{direction}-{size}-skiff"][metric]
            q = results.get(f"{direction}-{size}-qemu", {}).get(metric)
            fq = "-" if q is None else format(q, ",.2f")
            print(f"{'guest->host' if direction == 'tx' else 'host->guest':11}{size:>6}  "
                  f"{metric:6} {h:>12,.2f} {s:>11,.2f} {fq:>11}  {s / h:>10.2f}  "
                  f"{s / q if q else 0:>10.2f}  {h / q if q else 0:>10.2f}")
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
