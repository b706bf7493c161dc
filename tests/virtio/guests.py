#!/usr/bin/env python3
"""virtio integration cases: skiff boots the virtio test guests.

Usage: guests.py CASE   (environment: SKIFF, GUEST_DIR)
Exit status: 0 pass, 1 fail, 77 skipped (no /dev/kvm).
"""
import os
import subprocess
import sys
import tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import SKIP, Failed, expect, need_kvm  # noqa: E402

SKIFF = os.environ.get("SKIFF", "build/skiff")
GUEST_DIR = os.environ.get("GUEST_DIR", "build/tests/guests")
EXIT_PASS = 1
SECTORS = 2048


def pattern(n):
    return bytes(((i * 7 + (i >> 9)) & 0xff) for i in range(n))


def image(d, name):
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(pattern(SECTORS * 512))
    return path


def run(args, timeout=60):
    cmd = [SKIFF] + args
    print("$ " + " ".join(cmd))
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    print(f"status {p.returncode}\n--- stdout\n{out}--- stderr\n{err}---")
    return p.returncode, out, err


def run_guest(name, extra, cmdline=""):
    return run(["run", "--kernel", os.path.join(GUEST_DIR, name + ".elf"),
                "--debug-exit", "0xf4", "--serial", "stdio",
                "--cmdline", cmdline] + extra)


def expect_pass(status, out):
    expect("TEST PASS" in out, "guest did not print TEST PASS")
    expect(status == EXIT_PASS, f"exit status {status}, expected {EXIT_PASS}")


def blk_case(disk_opts):
    need_kvm()
    with tempfile.TemporaryDirectory() as d:
        rw, ro = image(d, "rw.img"), image(d, "ro.img")
        status, out, _ = run_guest("virtio_blk", [
            "--disk", f"path={rw},serial=sk-7{disk_opts}",
            "--disk", f"path={ro},readonly=on"],
            f"sectors={SECTORS} serial=sk-7 ro=1 msix=1")
        expect("MSI-X message delivered" in out, "MSI-X delivery was not checked")
        expect_pass(status, out)
        with open(rw, "rb") as f:
            data = f.read()
        want = bytearray(pattern(SECTORS * 512))
        want[10 * 512:11 * 512] = bytes((j ^ 0x5a) & 0xff for j in range(512))
        expect(data == bytes(want), "the image does not hold exactly what the guest wrote")
        with open(ro, "rb") as f:
            expect(f.read() == pattern(SECTORS * 512), "the read-only image changed")


def case_blk():
    blk_case("")


def case_blk_direct_mq():
    blk_case(",direct=on,queues=2,poll=0")


def case_deep_queue():
    """128 random reads in flight and merged sequential reads and writes,
    under the I/O thread's seccomp filter (a sort of a full queue once
    called into a system call the filter refuses)."""
    need_kvm()
    with tempfile.TemporaryDirectory() as d:
        img = image(d, "q.img")
        for mode, bs, qd, opts in (("randread", 4096, 128, ""), ("seqread", 131072, 8, ""),
                                   ("seqwrite", 131072, 8, ",direct=on")):
            status, out, err = run(["run", "--kernel", os.path.join(GUEST_DIR, "virtio_bench.elf"),
                                    "--memory", "512M", "--debug-exit", "0xf4", "--serial", "stdio",
                                    "--disk", f"path={img}{opts}", "--cmdline",
                                    f"mode={mode} bs={bs} qd={qd} secs=1 sectors={SECTORS} "
                                    f"tsc_khz=1000000"])
            expect("seccomp" not in err, f"{mode}: a thread was stopped by its filter")
            expect_pass(status, out)
            expect("BENCH ops=" in out and "BENCH ops=0 " not in out, f"{mode}: no request completed")


def case_rng():
    need_kvm()
    status, out, _ = run_guest("virtio_rng", ["--rng"])
    expect_pass(status, out)


def case_hostile():
    need_kvm()
    with tempfile.TemporaryDirectory() as d:
        status, out, err = run_guest("virtio_hostile",
                                     ["--disk", f"path={image(d, 'h.img')}", "--rng"])
        expect_pass(status, out)
        expect(out.count("NEEDS_RESET") == 9, "not every malformed ring was caught")
        for what in ("read-only registers unchanged", "MSI-X aimed nowhere",
                     "200000 kicks survived"):
            expect(f"hostile: {what}" in out, f"the guest did not get through: {what}")
        expect("malformed ring" in err, "no log line for the malformed ring")
        expect(err.count("malformed ring") <= 6, "malformed-ring lines are not rate-limited")


def case_hostile_events():
    """DEVICE_NEEDS_RESET reaches control-socket clients, one per broken ring."""
    import json
    import socket
    import time
    need_kvm()
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "api.sock")
        cmd = [SKIFF, "run", "--kernel", os.path.join(GUEST_DIR, "virtio_hostile.elf"),
               "--debug-exit", "0xf4", "--serial", "none", "--api-socket", sock,
               "--cmdline", "delay_ms=500",
               "--disk", f"path={image(d, 'h.img')}", "--rng"]
        print("$ " + " ".join(cmd))
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        s = None
        for _ in range(1000):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                break
            except OSError:
                s = None
                time.sleep(0.002)
        expect(s is not None, "cannot connect to the control socket")
        s.settimeout(20)
        f = s.makefile("rw")
        f.readline()
        f.write('{"execute":"qmp_capabilities"}\n')
        f.flush()
        events = []
        for line in f:
            msg = json.loads(line)
            if msg.get("event") == "DEVICE_NEEDS_RESET":
                events.append(msg["data"])
            if msg.get("event") == "SHUTDOWN":
                break
        p.wait(timeout=30)
        print(events)
        expect(p.returncode == EXIT_PASS, f"exit status {p.returncode}")
        expect(len(events) == 9, f"{len(events)} DEVICE_NEEDS_RESET events, expected 9")
        expect(all(e["device"] == "virtio-blk0" for e in events), "wrong device name")


def case_qemu_compat():
    """The guest driver is a plain virtio 1.x driver: it passes on QEMU too."""
    import shutil
    need_kvm()
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        print("SKIP: qemu-system-x86_64 not installed")
        sys.exit(SKIP)
    with tempfile.TemporaryDirectory() as d:
        rw = image(d, "rw.img")
        cmd = [qemu, "-M", "q35", "-accel", "kvm", "-m", "256M", "-nographic", "-nodefaults",
               "-serial", "stdio", "-no-reboot",
               "-kernel", os.path.join(GUEST_DIR, "virtio_blk.elf"),
               "-append", f"sectors={SECTORS} serial=q-1",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
               "-drive", f"if=none,id=d0,file={rw},format=raw,aio=io_uring",
               "-device", "virtio-blk-pci,drive=d0,serial=q-1,disable-legacy=on"]
        print("$ " + " ".join(cmd))
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        out = p.stdout.decode(errors="replace")
        print(f"status {p.returncode}\n{out}")
        expect_pass(p.returncode, out)


def case_bad_disk():
    need_kvm()
    status, _, err = run(["run", "--disk", "path=/nonexistent/x.img"])
    expect(status == 2, f"status {status} for a missing image, expected 2")
    expect("/nonexistent/x.img" in err, "the error does not name the image")
    for bad in ["readonly=on", "path=/x,readonly=maybe", "path=/x,queues=9",
                "path=/x,serial=123456789012345678901", "path=/x,colour=red"]:
        status, _, err = run(["run", "--disk", bad])
        expect(status == 2 and "--disk" in err, f"--disk {bad} was not refused clearly")
    status, out, _ = run(["run", "--help"])
    expect("--disk" in out and "--rng" in out, "run --help does not document --disk/--rng")


CASES = {name[5:].replace("_", "-"): fn for name, fn in globals().items()
         if name.startswith("case_")}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: guests.py " + "|".join(sorted(CASES)))
        sys.exit(2)
    try:
        CASES[sys.argv[1]]()
    except Failed as e:
        print(f"FAIL: {e}")
        sys.exit(1)
    except subprocess.TimeoutExpired:
        print("FAIL: skiff timed out")
        sys.exit(1)
    print("PASS")
