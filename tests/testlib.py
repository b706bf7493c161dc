"""Helpers shared by the Python test harnesses (integration, control, virtio).

A case fails by raising Failed (through expect); a case that needs /dev/kvm
and cannot open it exits 77, which meson reports as skipped.
"""
import os
import sys

SKIP = 77


class Failed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failed(what)


def need_kvm():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        print(f"SKIP: /dev/kvm cannot be opened ({e.strerror})")
        sys.exit(SKIP)


def tsc_khz():
    """The host's TSC rate for the test guests' tsc_khz= (the guest's own
    calibration is unreliable on PVM hosts)."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return int(float(line.split(":")[1]) * 1000)
    return 3000000


def run_case(namespace, doc):
    """main() of a harness whose cases are functions case_NAME in
    `namespace` (its globals()): runs the one named by argv[1] ("a-b" calls
    case_a_b). Returns the exit status: 0 pass, 1 fail, 2 usage."""
    import subprocess
    if len(sys.argv) != 2:
        print(doc)
        return 2
    fn = namespace.get("case_" + sys.argv[1].replace("-", "_"))
    if not fn:
        print(f"unknown case {sys.argv[1]}")
        return 2
    try:
        fn()
    except Failed as e:
        print(f"FAIL: {e}")
        return 1
    except subprocess.TimeoutExpired as e:
        print(f"FAIL: timed out: {e}")
        return 1
    print("PASS")
    return 0
