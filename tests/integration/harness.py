#!/usr/bin/env python3
"""Integration cases: run skiff on a test guest and check what it did.

Usage: harness.py CASE   (environment: SKIFF, GUEST_DIR)
Exit status: 0 pass, 1 fail, 77 skipped (meson's convention), so a case that
needs /dev/kvm and cannot open it is reported as skipped, never as passed.

Guest protocol (tests/guests/README.md): the guest prints "TEST PASS" or
"TEST FAIL: ..." on COM1 and writes 0 (pass), 1 (fail) or 2 (exception) to the
debug-exit port 0xf4, which makes skiff exit with (code << 1) | 1.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import SKIP, Failed, expect, need_kvm, run_case  # noqa: E402

SKIFF = os.environ.get("SKIFF", "build/skiff")
GUEST_DIR = os.environ.get("GUEST_DIR", "build/tests/guests")

EXIT_PASS, EXIT_FAIL, EXIT_EXCEPTION = 1, 3, 5   # debug-exit codes 0, 1, 2
EXIT_OK, EXIT_SETUP, EXIT_GUEST_FAULT = 0, 2, 4   # skiff's own statuses


def guest(name):
    path = os.path.join(GUEST_DIR, name + ".elf")
    if not os.path.exists(path):
        raise Failed(f"guest {path} was not built")
    return path


def run(args, timeout=60, stdin=subprocess.DEVNULL):
    """Runs skiff with args; returns (status, stdout, stderr)."""
    cmd = [SKIFF] + args
    print("$ " + " ".join(cmd))
    p = subprocess.run(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    print(f"status {p.returncode}\n--- stdout\n{out}--- stderr\n{err}---")
    return p.returncode, out, err


def run_guest(name, extra=(), timeout=60, stdin=subprocess.DEVNULL):
    return run(["run", "--kernel", guest(name), "--debug-exit", "0xf4",
                "--serial", "stdio"] + list(extra), timeout=timeout, stdin=stdin)


def expect_pass(status, out):
    expect("TEST PASS" in out, "guest did not print TEST PASS")
    expect(status == EXIT_PASS, f"exit status {status}, expected {EXIT_PASS} (debug-exit 0)")


# --- cases ----------------------------------------------------------------

def case_hello():
    need_kvm()
    status, out, _ = run_guest("hello", ["--cmdline", "greeting=yes marker=7f3a"])
    expect("Hello from skiff test guest" in out, "no greeting on the console")
    expect("marker=7f3a" in out, "the command line did not reach the guest")
    expect_pass(status, out)


def case_exception_ud():
    need_kvm()
    status, out, _ = run_guest("exception")
    expect("EXCEPTION vector=6" in out, "#UD was not reported with its vector")
    expect("rip=0x" in out, "the exception report has no RIP")
    expect(status == EXIT_EXCEPTION, f"exit status {status}, expected {EXIT_EXCEPTION}")


def case_exception_gp():
    need_kvm()
    status, out, _ = run_guest("exception", ["--cmdline", "exception_kind=gp"])
    expect("EXCEPTION vector=13" in out, "#GP was not reported with its vector")
    expect(status == EXIT_EXCEPTION, f"exit status {status}, expected {EXIT_EXCEPTION}")


def case_smp_4cpus():
    need_kvm()
    status, out, _ = run_guest("smp", ["--cpus", "4", "--cmdline", "ncpus=4"], timeout=90)
    expect_pass(status, out)


def case_memtouch_256m():
    need_kvm()
    status, out, _ = run_guest("memtouch", ["--memory", "256M"], timeout=120)
    expect_pass(status, out)


def case_demo():
    need_kvm()
    status, out, _ = run(["run", "--cpus", "2"])
    expect("skiff demo guest: hello!" in out, "the demo guest's greeting is missing")
    expect("RAM" in out or "ram" in out, "the self-report does not show RAM")
    expect("16550A" in out, "the self-report does not show the UART")
    expect(status == EXIT_OK, f"exit status {status}, expected 0 (power-off through i8042)")


def case_serial_file():
    need_kvm()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "console.log")
        status, out, _ = run(["run", "--kernel", guest("hello"), "--debug-exit", "0xf4",
                              "--serial", "file=" + path])
        with open(path, errors="replace") as f:
            text = f.read()
        print("--- file\n" + text)
        expect("TEST PASS" in text, "console file lacks TEST PASS")
        expect("TEST PASS" not in out, "console output leaked to stdout")
        expect(status == EXIT_PASS, f"exit status {status}")


def case_serial_input():
    need_kvm()
    cmd = [SKIFF, "run", "--kernel", guest("echo"), "--debug-exit", "0xf4", "--serial", "stdio"]
    print("$ " + " ".join(cmd))
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(0.3)  # let it boot: input must also work when typed later
    out, err = p.communicate(b"ping from host 42\n", timeout=60)
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    print(f"status {p.returncode}\n--- stdout\n{out}--- stderr\n{err}---")
    expect("ECHO: ping from host 42" in out, "the guest did not echo the host's line")
    expect_pass(p.returncode, out)


def spin_and_signal(sig):
    need_kvm()
    cmd = [SKIFF, "run", "--kernel", guest("spin"), "--debug-exit", "0xf4", "--serial", "stdio"]
    print("$ " + " ".join(cmd))
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    line = p.stdout.readline().decode(errors="replace")
    deadline = time.monotonic() + 30
    while "SPINNING" not in line and time.monotonic() < deadline and line:
        line = p.stdout.readline().decode(errors="replace")
    expect("SPINNING" in line, "spin guest did not start")
    p.send_signal(sig)
    t0 = time.monotonic()
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Failed("skiff did not stop within 10 s of the signal")
    took = time.monotonic() - t0
    err = err.decode(errors="replace")
    print(f"status {p.returncode} after {took * 1000:.1f} ms\n--- stderr\n{err}---")
    expect(p.returncode == EXIT_OK, f"exit status {p.returncode}, expected 0 (clean stop)")
    expect(f"terminating on signal {int(sig)}" in err, "no message naming the signal")


def case_sigterm():
    spin_and_signal(signal.SIGTERM)


def case_sigint():
    spin_and_signal(signal.SIGINT)


def case_tty_console():
    """On a terminal: raw mode while running, Ctrl-A x quits, terminal restored."""
    import pty
    import select
    import termios
    need_kvm()
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    cmd = [SKIFF, "run", "--kernel", guest("spin"), "--debug-exit", "0xf4", "--serial", "stdio"]
    print("$ " + " ".join(cmd) + "   (on a pty)")
    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    seen = b""
    deadline = time.monotonic() + 30
    while b"SPINNING" not in seen and time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            seen += os.read(master, 4096)
    print("--- console\n" + seen.decode(errors="replace"))
    try:
        expect(b"SPINNING" in seen, "spin guest did not start on the pty")
        during = termios.tcgetattr(slave)
        expect(not (during[3] & termios.ICANON) and not (during[3] & termios.ECHO),
               "the terminal is not in raw mode while the guest runs")
        os.write(master, b"\x01x")
        _, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = err.decode(errors="replace")
    print(f"status {p.returncode}\n--- stderr\n{err}---")
    after = termios.tcgetattr(slave)
    os.close(master)
    os.close(slave)
    expect(p.returncode == EXIT_OK, f"exit status {p.returncode} after Ctrl-A x")
    expect("Ctrl-A x" in err, "no message about the console quit")
    expect(after == before, "the terminal settings were not restored")


def case_triple_fault():
    need_kvm()
    status, out, err = run_guest("triplefault")
    expect(status == EXIT_GUEST_FAULT, f"exit status {status}, expected {EXIT_GUEST_FAULT}")
    expect("guest fault on vCPU 0" in err, "no fault line on stderr")
    expect("rip=" in err and "cr0=" in err, "no register dump on stderr")


def make_pvh_elf(path, paddr, memsz):
    """A minimal ELF64 PVH kernel: one PT_LOAD of memsz bytes at paddr (4 KiB in
    the file) and a PT_NOTE with the Xen PVH entry note pointing at paddr."""
    import struct
    note = struct.pack("<III4sI", 4, 4, 18, b"Xen\0", paddr)
    ehsz, phsz = 64, 56
    phoff, note_off, code_off = ehsz, ehsz + 2 * phsz, 0x1000
    eh = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7,
                     2, 62, 1, paddr, phoff, 0, 0, ehsz, phsz, 2, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, code_off, paddr, paddr, 0x1000, memsz, 0x1000)
    pnote = struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, len(note), len(note), 4)
    img = bytearray(code_off + 0x1000)
    img[0:len(eh)] = eh
    img[phoff:phoff + phsz] = load
    img[phoff + phsz:phoff + 2 * phsz] = pnote
    img[note_off:note_off + len(note)] = note
    img[code_off:code_off + 2] = b"\xeb\xfe"  # jmp .
    with open(path, "wb") as f:
        f.write(img)


def one_clear_error(status, err, what):
    lines = [l for l in err.splitlines() if l.strip()]
    expect(status == EXIT_SETUP, f"{what}: exit status {status}, expected {EXIT_SETUP}")
    expect(len(lines) == 1, f"{what}: expected one line on stderr, got {len(lines)}")
    expect(lines[0].startswith("skiff: error: "), f"{what}: line is not an error message")


def case_bad_input():
    # Command-line errors are found before /dev/kvm is opened: no KVM needed.
    for args, what, word in [
        (["run", "--memory", "0"], "--memory 0", "--memory"),
        (["run", "--memory", "99999T"], "--memory 99999T", "--memory"),
        (["run", "--memory", "lots"], "--memory lots", "--memory"),
        (["run", "--cpus", "0"], "--cpus 0", "--cpus"),
        (["run", "--cpus", "1000"], "--cpus 1000", "--cpus"),
        (["run", "--serial", "tcp"], "--serial tcp", "--serial"),
        (["run", "--bogus"], "unknown option", "--bogus"),
        (["frobnicate"], "unknown command", "frobnicate"),
    ]:
        status, _, err = run(args)
        one_clear_error(status, err, what)
        expect(word in err, f"{what}: message does not name {word}")
    need_kvm()
    with tempfile.TemporaryDirectory() as d:
        missing = os.path.join(d, "no-such-kernel")
        status, _, err = run(["run", "--kernel", missing])
        one_clear_error(status, err, "missing kernel")
        expect("No such file" in err, "missing kernel: reason not given")

        notelf = os.path.join(d, "notelf.bin")
        with open(notelf, "wb") as f:
            f.write(b"this is not a kernel\n" * 100)
        status, _, err = run(["run", "--kernel", notelf])
        one_clear_error(status, err, "non-ELF kernel")
        expect("not an ELF" in err, "non-ELF kernel: reason not given")

        trunc = os.path.join(d, "truncated.elf")
        with open(guest("hello"), "rb") as f:
            data = f.read()
        with open(trunc, "wb") as f:
            f.write(data[:200])
        status, _, err = run(["run", "--kernel", trunc])
        one_clear_error(status, err, "truncated ELF")

        huge = os.path.join(d, "huge.elf")
        make_pvh_elf(huge, 0x100000, 48 << 20)
        status, _, err = run(["run", "--kernel", huge, "--memory", "32M"])
        one_clear_error(status, err, "kernel larger than RAM")
        expect("does not fit" in err, "kernel larger than RAM: reason not given")

        hole = os.path.join(d, "hole.elf")
        make_pvh_elf(hole, 0xBFF00000, 2 << 20)
        status, _, err = run(["run", "--kernel", hole, "--memory", "4G"])
        one_clear_error(status, err, "kernel across the MMIO hole")

        big = os.path.join(d, "big.initrd")
        with open(big, "wb") as f:
            f.truncate(64 << 20)
        status, _, err = run(["run", "--kernel", guest("hello"), "--memory", "32M",
                              "--initrd", big])
        one_clear_error(status, err, "initrd larger than RAM")


def case_no_kvm():
    status, _, err = run(["run", "--kvm-device", "/nonexistent/kvm"])
    one_clear_error(status, err, "no KVM device")
    expect("does not exist" in err, "missing /dev/kvm: the reason is not given")


def case_host_info():
    status, out, _ = run(["host-info"])
    expect("KVM backend:" in out, "no backend line")
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        expect(status != 0, "host-info claims success without /dev/kvm")
        return
    expect(status == 0, f"host-info failed with {status}")
    expect("IRQCHIP" in out and "yes" in out, "capabilities not listed")
    if os.path.exists("/sys/module/kvm_pvm"):
        expect("PVM" in out, "this host is PVM but host-info does not say so")


def case_help_version():
    status, out, _ = run(["--help"])
    expect(status == 0 and "run" in out and "host-info" in out, "skiff --help")
    status, out, _ = run(["run", "--help"])
    for opt in ["--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--serial",
                "--debug-exit"]:
        expect(opt in out, f"skiff run --help does not document {opt}")
    status, out, _ = run(["--version"])
    expect(status == 0 and out.startswith("skiff "), "skiff --version")


def case_qemu_microvm_compat():
    """The same guest ELF runs unchanged under QEMU's microvm machine."""
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        print("SKIP: qemu-system-x86_64 is not installed")
        sys.exit(SKIP)
    cmd = [qemu, "-M", "microvm", "-accel", "tcg", "-m", "256M", "-nographic", "-nodefaults",
           "-no-reboot", "-serial", "stdio", "-kernel", guest("hello"),
           "-append", "marker=q3mu", "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
    print("$ " + " ".join(cmd))
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    out = p.stdout.decode(errors="replace")
    print(f"status {p.returncode}\n--- stdout\n{out}--- stderr\n{p.stderr.decode(errors='replace')}")
    expect("Hello from skiff test guest" in out and "marker=q3mu" in out,
           "guest output missing under QEMU")
    expect_pass(p.returncode, out)


if __name__ == "__main__":
    sys.exit(run_case(globals(), __doc__))
