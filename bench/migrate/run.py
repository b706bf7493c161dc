#!/usr/bin/env python3
"""bench/migrate: live migration over loopback TCP, skiff vs QEMU, side by side.

Both VMMs run the same guest (tests/guests/migtest.elf) with 1 GiB of RAM,
idle or rewriting 64 MiB at 50 or 500 MB/s, and migrate it to a second
process of their own kind on 127.0.0.1. Both are driven through the same
QMP client (migrate, query-migrate), so total time, downtime and bytes come
from each VMM's own query-migrate. The guest's pause is measured the same
way for both: from the source's STOP event (vCPUs parked) to the
destination's RESUME event (vCPUs released), both stamped in microseconds
by the VMMs on the same host clock. Each VMM's own "downtime" is shown
too, but the two differ in what they cover (QEMU's, in whole ms, ends when
its source has sent the last byte; skiff's when its destination has loaded
and resumed the VM and acknowledged it). Two settings: each VMM's defaults, and
the bandwidth cap lifted (QEMU: max-bandwidth 100 GB/s; skiff's default is
already unlimited). Runs are alternated (skiff, QEMU, skiff, ...).

A migration that has not completed after --timeout seconds counts as "did
not converge" (it is cancelled). After each migration the destination's
guest must report again (it runs) — otherwise the run is an error.

Usage: bench/migrate/run.py [--runs N] [--build DIR] [--qemu PATH] [--markdown]
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def tsc_khz():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return int(float(line.split(":")[1]) * 1000)
    return 3000000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


_events = {}   # socket path -> data of its last MIGRATION event
_stamps = {}   # socket path -> {event name: its last timestamp, in seconds}


class Qmp:
    """A minimal QMP client; remembers the last MIGRATION event's data
    (skiff's completed event carries the summary: its source exits)."""

    def __init__(self, path, timeout=20):
        self.path = path
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.s.settimeout(30)
        self.f = self.s.makefile("rwb")
        self.recv()                      # greeting
        self.cmd("qmp_capabilities")

    def recv(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QMP connection closed")
            m = json.loads(line)
            if "event" in m and "timestamp" in m:
                t = m["timestamp"]
                _stamps.setdefault(self.path, {})[m["event"]] = (
                    t["seconds"] + t["microseconds"] / 1e6)
            if m.get("event") == "MIGRATION":
                _events[self.path] = m.get("data", {})
            if "event" not in m:
                return m

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        try:
            self.f.write((json.dumps(req) + "\n").encode())
            self.f.flush()
        except OSError:
            # The peer is gone (skiff's source exits after migrating):
            # still read what it sent before, for its last events.
            while True:
                self.recv()
        r = self.recv()
        if "error" in r:
            raise RuntimeError(f"{name}: {r['error']}")
        return r["return"]

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def vm_cmd(kind, args, work, tag, guest, cmdline, incoming=None):
    sock = os.path.join(work, f"{kind}-{tag}.sock")
    if kind == "skiff":
        cmd = [os.path.join(args.build, "skiff"), "run", "--kernel", guest, "--memory", "1G",
               "--serial", f"file={work}/{kind}-{tag}.out", "--api-socket", sock,
               "--cmdline", cmdline]
        if incoming:
            cmd += ["--incoming", incoming]
    else:
        cmd = [args.qemu, "-M", "microvm", "-accel", "kvm", "-m", "1G",
               "-smp", "1", "-nodefaults", "-no-user-config", "-nographic",
               "-serial", f"file:{work}/{kind}-{tag}.out", "-kernel", guest,
               "-append", cmdline, "-qmp", f"unix:{sock},server=on,wait=off"]
        if incoming:
            cmd += ["-incoming", incoming]
    return cmd, sock, f"{work}/{kind}-{tag}.out"


def reports(path):
    try:
        with open(path, errors="replace") as f:
            return sum(1 for l in f if l.startswith("MIG pass="))
    except OSError:
        return 0


def one_run(kind, args, work, rate, capped, n):
    guest = os.path.join(args.build, "tests", "guests", "migtest.elf")
    cmdline = f"tsc_khz={tsc_khz()} mib=64 rate={rate} report_ms=100"
    port = free_port()
    uri = f"tcp:127.0.0.1:{port}"
    scmd, ssock, sout = vm_cmd(kind, args, work, f"src{n}", guest, cmdline)
    dcmd, dsock, dout = vm_cmd(kind, args, work, f"dst{n}", guest, cmdline, uri)
    procs = []
    devnull = subprocess.DEVNULL
    try:
        serr, derr = open(sout + ".err", "wb"), open(dout + ".err", "wb")
        procs.append(subprocess.Popen(scmd, stdin=devnull, stdout=devnull, stderr=serr))
        procs.append(subprocess.Popen(dcmd, stdin=devnull, stdout=devnull, stderr=derr))
        src = Qmp(ssock)
        dst = Qmp(dsock)
        deadline = time.monotonic() + 30
        while reports(sout) < 3:        # filled and rewriting
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind}: the guest does not report")
            time.sleep(0.05)
        if not capped:
            src.cmd("migrate-set-parameters", {"max-bandwidth": 100 * 10**9})
        src.cmd("migrate", {"uri": uri})
        t0 = time.monotonic()
        q = {}
        while time.monotonic() - t0 < args.timeout:
            try:
                q = src.cmd("query-migrate")
            except (EOFError, OSError):
                break                   # skiff's source exits when done
            if q.get("status") in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.02)
        # skiff's source exits once the destination runs the VM; its
        # completed event carries the summary.
        ev = _events.get(ssock, {})
        if q.get("status") != "completed" and ev.get("status") == "completed":
            q = dict(ev)
        if q.get("status") != "completed":
            try:
                src.cmd("migrate_cancel")
            except Exception:
                pass
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            print(f"{kind}: not completed: {q}; source exit {procs[0].returncode}", file=sys.stderr)
            for f in (sout + ".err", dout + ".err"):
                with open(f, errors="replace") as e:
                    print(f"  {os.path.basename(f)}: " + e.read()[-400:].replace("\n", " | "),
                          file=sys.stderr)
            return None
        before = reports(dout)
        deadline = time.monotonic() + 10
        while reports(dout) <= before + 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind}: the destination guest does not run")
            time.sleep(0.05)
        dst.cmd("query-status")          # reads the destination's RESUME
        stop = _stamps.get(ssock, {}).get("STOP")
        resume = _stamps.get(dsock, {}).get("RESUME")
        if stop is None or resume is None:
            raise RuntimeError(f"{kind}: no STOP event from the source ({stop}) or "
                               f"RESUME from the destination ({resume})")
        ram = q.get("ram", {})
        return {"total": q.get("total-time", 0), "downtime": q.get("downtime", 0),
                "pause": (resume - stop) * 1000,
                "bytes": ram.get("transferred", q.get("transferred", 0))}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(here, "..", "..", "build"))
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if not args.qemu:
        sys.exit("qemu-system-x86_64 not found")
    work = tempfile.mkdtemp(prefix="skiff-bench-mig-")
    rows = []
    try:
        for kind in ("skiff", "qemu"):   # warm-up (page cache, KVM module state)
            one_run(kind, args, work, 0, False, f"warmup-{kind}")
        for rate in (0, 50, 500):
            for capped in (True, False):
                res = {"skiff": [], "qemu": []}
                for n in range(args.runs):
                    for kind in ("skiff", "qemu"):
                        r = one_run(kind, args, work, rate, capped, f"{rate}-{int(capped)}-{n}")
                        res[kind].append(r)
                        print(f"rate {rate} MB/s {'default' if capped else 'uncapped'} "
                              f"{kind} run {n}: {r if r else 'did not converge'}", file=sys.stderr)
                rows.append((rate, capped, res))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(rs, k):
        ok = [r[k] for r in rs if r]
        return statistics.median(ok) if ok else None

    def fmt(v, unit=""):
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:.2f}{unit}" if v < 10 else f"{v:.1f}{unit}"
        return f"{v}{unit}"

    hdr = ("| guest (1 GiB) | settings | skiff total ms | QEMU total ms | skiff pause ms | "
           "QEMU pause ms | pause QEMU/skiff | skiff downtime ms | QEMU downtime ms | "
           "skiff MiB sent | QEMU MiB sent | converged s/q |")
    print(hdr)
    print("|" + "---|" * 12)
    for rate, capped, res in rows:
        st, qt = med(res["skiff"], "total"), med(res["qemu"], "total")
        sp, qp = med(res["skiff"], "pause"), med(res["qemu"], "pause")
        sd, qd = med(res["skiff"], "downtime"), med(res["qemu"], "downtime")
        sb, qb = med(res["skiff"], "bytes"), med(res["qemu"], "bytes")
        ratio = f"{qp / sp:.1f}x" if sp and qp else "—"
        conv = (f"{sum(1 for r in res['skiff'] if r)}/{len(res['skiff'])} "
                f"{sum(1 for r in res['qemu'] if r)}/{len(res['qemu'])}")
        name = "idle" if rate == 0 else f"64 MiB at {rate} MB/s"
        fl = lambda v: fmt(float(v) if v is not None else None)
        print(f"| {name} | {'default' if capped else 'uncapped'} | {fmt(st)} | {fmt(qt)} | "
              f"{fmt(sp and round(sp, 2))} | {fmt(qp and round(qp, 2))} | {ratio} | "
              f"{fl(sd)} | {fl(qd)} | "
              f"{fmt(sb / 2**20 if sb else None)} | {fmt(qb / 2**20 if qb else None)} | {conv} |")

if __name__ == "__main__":
    main()
