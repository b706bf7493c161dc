#!/usr/bin/env python3
"""Live migration end to end: two skiff processes run the migtest guest
(tests/guests/migtest.c), which rewrites its memory at a set rate and checks
every page; after the move the destination's guest is asked to check all of
its pages (`q` on its console) and must find none bad, with its rewrite
counter carrying on from the source's. Fault cases check that the source
keeps running and the destination refuses.

Usage: migration_test.py CASE   (exit 0 pass, 1 fail, 77 skipped)
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "control"))
from testlib import SKIP, Failed, expect, need_kvm  # noqa: E402
from qmp import Client  # noqa: E402

SKIFF = os.environ.get("SKIFF", "build/skiff")
GUEST_DIR = os.environ.get("GUEST_DIR", "build/tests/guests")


def tsc_khz():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return int(float(line.split(":")[1]) * 1000)
    return 3000000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Vm:
    """skiff run with the migtest guest, console on pipes, a control socket."""

    def __init__(self, work, name, memory="256M", cmdline="", extra=()):
        self.name = name
        self.sock = os.path.join(work, name + ".sock")
        guest = os.path.join(GUEST_DIR, "migtest.elf")
        expect(os.path.exists(guest), f"{guest} was not built")
        cmd = [SKIFF, "run", "--kernel", guest, "--memory", memory, "--debug-exit", "0xf4",
               "--serial", "stdio", "--api-socket", self.sock,
               "--cmdline", f"tsc_khz={tsc_khz()} {cmdline}"] + list(extra)
        print(f"[{name}] $ " + " ".join(cmd))
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.lines = []
        self.err = b""
        self.lock = threading.Lock()
        threading.Thread(target=self._out, daemon=True).start()
        self.t_err = threading.Thread(target=self._errf, daemon=True)
        self.t_err.start()

    def _out(self):
        for line in self.p.stdout:
            with self.lock:
                self.lines.append(line.decode(errors="replace").rstrip("\n"))

    def _errf(self):
        self.err = self.p.stderr.read()

    def wait_sock(self, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                s.close()
            expect(self.p.poll() is None, f"[{self.name}] exited with {self.p.returncode}: "
                   + self.stderr())
            expect(time.monotonic() < deadline, f"[{self.name}] no control socket")
            time.sleep(0.01)

    def qmp(self):
        return Client(self.sock)

    def cmd(self, name, args=None):
        c = self.qmp()
        try:
            return c.cmd(name, args)
        finally:
            c.s.close()

    def counters(self):
        """The last MIG report: dict with pass, counter, verified, bad."""
        with self.lock:
            lines = list(self.lines)
        for l in reversed(lines):
            if l.startswith("MIG pass="):
                try:
                    d = {k: int(v) for k, v in (f.split("=") for f in l.split()[1:])}
                except ValueError:
                    continue   # cut by the migration: the rest is on the destination
                if {"pass", "counter", "verified", "bad"} <= d.keys():
                    return d
        return None

    def has(self, text):
        with self.lock:
            return any(text in l for l in self.lines)

    def wait_line(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while not self.has(text):
            expect(self.p.poll() is None or self.has(text),
                   f"[{self.name}] exited ({self.p.returncode}) before '{text}'")
            expect(time.monotonic() < deadline, f"[{self.name}] no '{text}' within {timeout} s")
            time.sleep(0.05)

    def wait_reports(self, n=2, timeout=30):
        """Waits until n more MIG reports arrived; returns the last."""
        with self.lock:
            start = sum(1 for l in self.lines if l.startswith("MIG pass="))
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                got = sum(1 for l in self.lines if l.startswith("MIG pass="))
            if got >= start + n:
                return self.counters()
            expect(self.p.poll() is None, f"[{self.name}] exited with {self.p.returncode}: "
                   + self.stderr())
            expect(time.monotonic() < deadline, f"[{self.name}] the guest does not report")
            time.sleep(0.05)

    def finish(self, timeout=120):
        """Asks the guest for its full check; returns (status, FINAL line)."""
        self.p.stdin.write(b"q")
        self.p.stdin.flush()
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failed(f"[{self.name}] did not finish its check within {timeout} s")
        time.sleep(0.1)
        with self.lock:
            final = [l for l in self.lines if l.startswith("MIG FINAL")]
        return rc, final[-1] if final else None

    def stderr(self):
        return self.err.decode(errors="replace")

    def wait_exit(self, timeout=60):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failed(f"[{self.name}] did not exit within {timeout} s")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def dump(self):
        self.t_err.join(1)
        with self.lock:
            tail = self.lines[-5:]
        print(f"--- [{self.name}] status {self.p.poll()}, console tail:\n" + "\n".join(tail))
        print(f"--- [{self.name}] stderr\n{self.stderr()}---")


def migrate_status(vm, timeout=120):
    """Polls query-migrate until a final status; returns the answer."""
    deadline = time.monotonic() + timeout
    c = vm.qmp()
    try:
        while True:
            r = c.cmd("query-migrate")["return"]
            if r.get("status") in ("completed", "failed", "cancelled"):
                return r
            expect(time.monotonic() < deadline, f"migration still {r.get('status')}")
            time.sleep(0.05)
    finally:
        c.s.close()


def check_dest(dst, last_src_counter):
    rc, final = dst.finish()
    dst.dump()
    with dst.lock:
        disk = [l for l in dst.lines if l.startswith("MIG DISK")]
    if disk:
        print(disk[-1])
    expect(final is not None, "the destination guest printed no MIG FINAL line")
    print(final)
    f = {k: int(v) for k, v in (x.split("=") for x in final.split()[2:])}
    expect(f["bad"] == 0, f"bad pages after migration: {final}")
    expect(rc == 1, f"destination exit status {rc}, expected 1 (TEST PASS)")
    expect(f["counter"] >= last_src_counter,
           f"the counter went back: {f['counter']} < source's {last_src_counter}")


def live(work, memory, mib, rate, uri_kind="tcp", params=None, ctl=False, disk=False):
    port = free_port()
    uri = f"tcp:127.0.0.1:{port}" if uri_kind == "tcp" else "unix:" + os.path.join(work, "m.sock")
    extra, cmdline = [], f"mib={mib} rate={rate}"
    if disk:
        img = os.path.join(work, "disk.img")
        with open(img, "wb") as f:
            f.truncate(4 << 20)
        extra, cmdline = ["--disk", f"path={img}"], cmdline + " disk=1"
    src = Vm(work, "src", memory, cmdline, extra)
    dst = Vm(work, "dst", memory, cmdline, extra + ["--incoming", uri])
    try:
        src.wait_sock()
        dst.wait_sock()
        src.wait_line("MIG READY", 120)
        before = src.wait_reports(2)
        expect(before["bad"] == 0, f"bad pages before migrating: {before}")
        expect(dst.cmd("query-status")["return"]["status"] == "inmigrate", "destination status")
        if params:
            r = src.cmd("migrate-set-parameters", params)
            expect(r == {"return": {}}, f"migrate-set-parameters: {r}")
        if ctl:
            p = subprocess.run([SKIFF, "ctl", src.sock, "migrate", uri], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=180)
            print(p.stderr.decode(errors="replace"))
            expect(p.returncode == 0, f"skiff ctl migrate exited {p.returncode}")
            expect(b"migration completed" in p.stderr, "no summary from skiff ctl")
        else:
            r = src.cmd("migrate", {"uri": uri})
            expect(r == {"return": {}}, f"migrate: {r}")
        last = src.counters()
        rc = src.wait_exit(180)
        src.dump()
        expect(rc == 0, f"source exit status {rc}, expected 0 after migrating")
        expect("migrated to" in src.stderr(), "the source did not say where it migrated")
        last = src.counters() or last
        after = dst.wait_reports(2)
        print(f"source last {last}, destination {after}")
        q = dst.cmd("query-migrate")["return"]
        expect(q.get("status") == "completed", f"destination query-migrate {q}")
        expect(dst.cmd("query-status")["return"]["status"] == "running", "destination not running")
        if rate:
            expect(after["counter"] > last["counter"], "the counter does not move on the destination")
        check_dest(dst, last["counter"])
    finally:
        src.kill()
        dst.kill()


def snapshot(work):
    snap = os.path.join(work, "snap")
    src = Vm(work, "src", "256M", "mib=64 rate=20")
    try:
        src.wait_sock()
        src.wait_line("MIG READY", 60)
        src.wait_reports(2)
        expect(src.cmd("migrate", {"uri": "file:" + snap}) == {"return": {}}, "migrate file:")
        r = migrate_status(src)
        expect(r["status"] == "completed", f"snapshot: {r}")
        expect(os.path.exists(snap) and not os.path.exists(snap + ".part"), "snapshot file")
        # The source runs on after a snapshot.
        c1 = src.counters()["counter"]
        c2 = src.wait_reports(2)["counter"]
        expect(c2 > c1, "the source stopped after the snapshot")
        expect(src.cmd("query-status")["return"]["status"] == "running", "source status")
        saved = c1
    finally:
        src.kill()
        src.dump()
    dst = Vm(work, "restored", "256M", "mib=64 rate=20", ["--restore", "file:" + snap])
    try:
        dst.wait_sock()
        dst.wait_reports(2)
        check_dest(dst, saved)
    finally:
        dst.kill()
    return snap


def bad_restore(work, snap, mutate, what):
    """A damaged snapshot: the guest must never run, exit status 8."""
    bad = os.path.join(work, "bad-" + what)
    data = bytearray(open(snap, "rb").read())
    data = mutate(data)
    open(bad, "wb").write(data)
    dst = Vm(work, "restore-" + what, "256M", "mib=64 rate=20", ["--restore", "file:" + bad])
    try:
        rc = dst.wait_exit(60)
        dst.dump()
        expect(rc == 8, f"{what} snapshot: exit status {rc}, expected 8")
        expect("incoming migration failed" in dst.stderr(), f"{what}: no clear error")
        expect(not dst.has("MIG pass="), f"{what}: the guest ran")
    finally:
        dst.kill()


def faults(work):
    snap = snapshot(work)
    size = os.path.getsize(snap)
    bad_restore(work, snap, lambda d: d[: size // 2], "truncated")
    bad_restore(work, snap, lambda d: d[:-3], "truncated-end")

    def flip(d):
        for off in (size // 3, size // 2, size - 100):
            d[off] ^= 0x55
        return d
    bad_restore(work, snap, flip, "flipped")
    bad_restore(work, snap, lambda d: b"NOTSKIFF" + d[8:], "magic")


def fault_source_survives(work, case):
    """The source must keep running and report failed/cancelled."""
    port = free_port()
    uri = f"tcp:127.0.0.1:{port}"
    src = Vm(work, "src", "512M", "mib=256 rate=50")
    dmem = "256M" if case == "mismatch" else "512M"
    dst = Vm(work, "dst", dmem, "mib=64", ["--incoming", uri])
    try:
        src.wait_sock()
        dst.wait_sock()
        src.wait_line("MIG READY", 120)
        src.wait_reports(1)
        if case in ("kill-destination", "cancel"):
            # Slow enough to be caught in the middle: 256 MiB at 40 MB/s.
            r = src.cmd("migrate-set-parameters", {"max-bandwidth": 40 << 20})
            expect(r == {"return": {}}, f"migrate-set-parameters {r}")
        expect(src.cmd("migrate", {"uri": uri}) == {"return": {}}, "migrate")
        if case == "kill-destination":
            time.sleep(1.5)
            expect(src.cmd("query-migrate")["return"]["status"] == "active", "not active")
            dst.kill()
        elif case == "cancel":
            time.sleep(1.5)
            expect(src.cmd("migrate_cancel") == {"return": {}}, "migrate_cancel")
        r = migrate_status(src, 60)
        want = "cancelled" if case == "cancel" else "failed"
        expect(r["status"] == want, f"status {r}, expected {want}")
        expect(r.get("error-desc"), "no error-desc")
        print("source:", r["error-desc"])
        # The source guest runs on, no page lost.
        c1 = src.counters()["counter"]
        c2 = src.wait_reports(3)["counter"]
        expect(c2 > c1, "the source guest stopped")
        expect(src.cmd("query-status")["return"]["status"] == "running", "source not running")
        if case == "mismatch":
            rc = dst.wait_exit(30)
            dst.dump()
            expect(rc == 8, f"destination exit status {rc}, expected 8")
            expect("MiB of RAM" in dst.stderr(), "destination did not name the RAM mismatch")
        if case == "cancel":
            dst.kill()
        rc, final = src.finish()
        src.dump()
        expect(final and " bad=0 " in final + " ", f"source check after the fault: {final}")
        expect(rc == 1, f"source guest did not pass: {rc}")
    finally:
        src.kill()
        dst.kill()


CASES = {
    "idle-256m": lambda w: live(w, "256M", 64, 0),
    "50mbs-256m": lambda w: live(w, "256M", 64, 50),
    "500mbs-256m": lambda w: live(w, "256M", 64, 500),
    "idle-1g": lambda w: live(w, "1G", 256, 0),
    "500mbs-1g": lambda w: live(w, "1G", 256, 500, ctl=True),
    "blk-in-flight": lambda w: live(w, "256M", 32, 50, disk=True),
    "unix-channels-verify": lambda w: live(w, "512M", 128, 100, "unix",
                                           {"channels": 3, "verify": True}),
    "snapshot-restore": snapshot,
    "bad-snapshots": faults,
    "kill-destination": lambda w: fault_source_survives(w, "kill-destination"),
    "cancel": lambda w: fault_source_survives(w, "cancel"),
    "mismatch": lambda w: fault_source_survives(w, "mismatch"),
}


def main():
    sys.stdout.reconfigure(line_buffering=True)   # a killed test still shows its log
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(CASES)}}}")
    need_kvm()
    work = tempfile.mkdtemp(prefix="skiff-mig-")
    try:
        CASES[sys.argv[1]](work)
    except Failed as e:
        print(f"FAIL: {e}")
        sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
