#!/usr/bin/env python3
"""Seccomp filters per thread role (issue 8): every skiff thread is filtered,
a thread that makes a call outside its role's list is stopped and named, and
--seccomp log/off do what they say.

Usage: sandbox_test.py CASE   (environment: SKIFF, GUEST_DIR)
Exit status: 0 pass, 1 fail, 77 skipped (no /dev/kvm).

A forbidden call is made from inside a chosen skiff thread with ptrace: the
thread is stopped in a system call, its registers are pointed back at that
`syscall` instruction with another call number (socket), and it is resumed.
No test hook in skiff itself.
"""
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import Failed, expect, need_kvm, run_case  # noqa: E402

SKIFF = os.environ.get("SKIFF", "build/skiff")
GUEST_DIR = os.environ.get("GUEST_DIR", "build/tests/guests")
EXIT_SECCOMP = 10
SYS_SOCKET, SYS_EXECVE = 41, 59

PTRACE_PEEKTEXT, PTRACE_GETREGS, PTRACE_SETREGS = 1, 12, 13
PTRACE_CONT, PTRACE_DETACH, PTRACE_SYSCALL = 7, 17, 24
PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4206, 0x4207
WALL = 0x40000000
# struct user_regs_struct (x86-64): indices of the fields used here
R_RAX, R_RDX, R_RSI, R_RDI, R_ORIG_RAX, R_RIP = 10, 12, 13, 14, 15, 16

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


class Regs(ctypes.Structure):
    _fields_ = [("r", ctypes.c_ulonglong * 27)]


def ptrace(req, tid, addr=0, data=0):
    ctypes.set_errno(0)
    r = libc.ptrace(req, tid, ctypes.c_void_p(addr), ctypes.c_void_p(data))
    e = ctypes.get_errno()
    if r == -1 and e:
        raise Failed(f"ptrace({req}, {tid}): {os.strerror(e)}")
    return r


def wait_stop(tid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status = os.waitpid(tid, WALL | os.WNOHANG)
        if pid:
            return status
        time.sleep(0.001)
    raise Failed(f"thread {tid} did not stop")


def inject(tid, restore, nr=SYS_SOCKET, args=(2, 1, 0)):
    """Makes thread `tid` call system call `nr` (default socket(AF_INET,
    SOCK_STREAM, 0)). With restore,
    the thread gets its registers back after the call (and sees EINTR from
    the call it was in); otherwise it is left to the kernel's verdict.
    Returns the stop status that followed the injected call."""
    ptrace(PTRACE_SEIZE, tid)
    for _ in range(200):
        ptrace(PTRACE_INTERRUPT, tid)
        wait_stop(tid)
        regs = Regs()
        ptrace(PTRACE_GETREGS, tid, 0, ctypes.addressof(regs))
        rip = regs.r[R_RIP]
        word = ptrace(PTRACE_PEEKTEXT, tid, rip - 2) & 0xffff
        if regs.r[R_ORIG_RAX] != 0xffffffffffffffff and word == 0x050f:
            break  # stopped in a system call: rip - 2 is its `syscall`
        ptrace(PTRACE_CONT, tid)
        time.sleep(0.002)
    else:
        raise Failed(f"thread {tid} never stopped inside a system call")
    saved = Regs()
    ctypes.memmove(ctypes.addressof(saved), ctypes.addressof(regs), ctypes.sizeof(regs))
    regs.r[R_RAX] = nr
    regs.r[R_RDI], regs.r[R_RSI], regs.r[R_RDX] = args
    regs.r[R_ORIG_RAX] = 0xffffffffffffffff  # no restart of the interrupted call
    regs.r[R_RIP] = rip - 2
    ptrace(PTRACE_SETREGS, tid, 0, ctypes.addressof(regs))
    if not restore:
        ptrace(PTRACE_CONT, tid)
        status = wait_stop(tid)
        sig = os.WSTOPSIG(status) if os.WIFSTOPPED(status) else 0
        # Deliver what stopped it (SIGSYS from the filter) and let go.
        ptrace(PTRACE_DETACH, tid, 0, sig)
        return sig
    ptrace(PTRACE_SYSCALL, tid)   # to the injected call's entry
    wait_stop(tid)
    ptrace(PTRACE_SYSCALL, tid)   # to its exit
    status = wait_stop(tid)
    got = Regs()
    ptrace(PTRACE_GETREGS, tid, 0, ctypes.addressof(got))
    saved.r[R_RAX] = (-4) & 0xffffffffffffffff  # -EINTR for the interrupted call
    saved.r[R_ORIG_RAX] = 0xffffffffffffffff
    ptrace(PTRACE_SETREGS, tid, 0, ctypes.addressof(saved))
    ptrace(PTRACE_DETACH, tid)
    return got.r[R_RAX]


def guest(name):
    path = os.path.join(GUEST_DIR, name + ".elf")
    if not os.path.exists(path):
        raise Failed(f"guest {path} was not built")
    return path


class Skiff:
    """skiff on the heartbeat guest with two vCPUs, a disk, virtio-rng and a
    control socket: vCPU, I/O and main threads all present."""

    def __init__(self, tmp, extra=()):
        self.tmp = tmp
        disk = os.path.join(tmp, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(1 << 20)
        self.sock = os.path.join(tmp, "api.sock")
        cmd = [SKIFF, "run", "--kernel", guest("heartbeat"), "--cpus", "2",
               "--disk", f"path={disk}", "--rng", "--api-socket", self.sock,
               "--serial", "stdio"] + list(extra)
        print("$ " + " ".join(cmd))
        self.err_path = os.path.join(tmp, "stderr")
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=open(self.err_path, "wb"))
        self.beats = 0
        self.wait_beats(3)

    def wait_beats(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        target = self.beats + n
        while self.beats < target:
            expect(time.monotonic() < deadline, "the guest's heartbeat stopped")
            line = self.p.stdout.readline().decode(errors="replace")
            expect(line, "skiff's console closed: " + self.stderr())
            if line.startswith("HEARTBEAT ") and line.split()[1].isdigit():
                self.beats += 1

    def threads(self):
        out = {}
        base = f"/proc/{self.p.pid}/task"
        for tid in os.listdir(base):
            try:
                comm = open(f"{base}/{tid}/comm").read().strip()
                status = open(f"{base}/{tid}/status").read()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            out[int(tid)] = (comm, fields.get("Seccomp", "?").strip(),
                             fields.get("Seccomp_filters", "?").strip())
        for tid, (comm, mode, nf) in sorted(out.items()):
            print(f"  thread {tid} {comm}: Seccomp {mode}, filters {nf}")
        return out

    def thread(self, pred, what):
        for tid, (comm, _, _) in self.threads().items():
            if pred(comm):
                return tid, comm
        raise Failed(f"no {what} thread")

    def ctl(self, *args):
        r = subprocess.run([SKIFF, "ctl", self.sock] + list(args), capture_output=True,
                           text=True, timeout=30)
        print(f"$ skiff ctl {' '.join(args)} -> {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def stderr(self):
        return open(self.err_path, errors="replace").read()

    def end(self, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failed("skiff did not end")
        print(f"status {self.p.returncode}\n--- stderr\n{self.stderr()}---")
        return self.p.returncode


def io_thread(comm):
    return comm.startswith("virtio-blk@")


def case_threads_filtered():
    """Every thread of a running skiff is in seccomp filter mode, also after
    a snapshot (migration threads) and control commands; --seccomp off
    leaves them all unfiltered (so the check above can fail)."""
    need_kvm()
    with tempfile.TemporaryDirectory() as tmp:
        s = Skiff(tmp)
        try:
            snap = os.path.join(tmp, "snap")
            expect(s.ctl("query-status").returncode == 0, "query-status failed")
            expect(s.ctl("migrate", "file:" + snap).returncode == 0, "snapshot failed")
            expect(os.path.getsize(snap) > 0, "empty snapshot")
            s.wait_beats(3)
            ts = s.threads()
            comms = [c for c, _, _ in ts.values()]
            expect(sum(1 for c in comms if c.startswith("vcpu")) == 2, "two vCPU threads expected")
            expect(any(io_thread(c) for c in comms), "no virtio-blk I/O thread")
            expect(any(c.startswith("virtio-rng@") for c in comms), "no virtio-rng I/O thread")
            for tid, (comm, mode, nf) in ts.items():
                expect(mode == "2", f"thread {tid} ({comm}) has Seccomp: {mode}, expected 2")
                expect(nf.isdigit() and int(nf) >= 1, f"thread {tid} ({comm}): no filter")
        finally:
            status = s.end()
        expect(status == 0, f"skiff ended with status {status} after SIGTERM, expected 0")
        s = Skiff(tmp, ["--seccomp", "off"])
        try:
            for tid, (comm, mode, _) in s.threads().items():
                expect(mode == "0", f"--seccomp off: thread {tid} ({comm}) has Seccomp: {mode}")
        finally:
            s.end()


def forbidden(pick, what, role, nr=SYS_SOCKET, call="socket"):
    need_kvm()
    with tempfile.TemporaryDirectory() as tmp:
        s = Skiff(tmp)
        try:
            tid, comm = s.thread(pick, what)
            sig = inject(tid, restore=False, nr=nr, args=(0, 0, 0))
            print(f"the {comm} thread stopped with signal {sig} after the injected {call}()")
            expect(sig == signal.SIGSYS, f"{call}() in the {comm} thread was not refused "
                   f"(stop signal {sig}, expected SIGSYS)")
        finally:
            status = s.end()
        err = s.stderr()
        expect(status == EXIT_SECCOMP, f"exit status {status}, expected {EXIT_SECCOMP}")
        expect(f"the {role} thread '{comm}'" in err and f"{call} ({nr})" in err,
               "the report does not name the thread and the call")


def case_forbidden_io():
    """socket() from a virtio-blk I/O thread: refused, reported, skiff ends."""
    forbidden(io_thread, "virtio-blk I/O", "I/O")


def case_forbidden_vcpu():
    forbidden(lambda c: c == "vcpu1", "vCPU 1", "vCPU")


def case_forbidden_main():
    """The main thread may open sockets (migration), not run programs."""
    forbidden(lambda c: c == "skiff", "main", "main", SYS_EXECVE, "execve")


def case_log_mode():
    """--seccomp log: the same call goes through (the kernel logs it) and the
    VM runs on; the thread is still filtered."""
    need_kvm()
    with tempfile.TemporaryDirectory() as tmp:
        s = Skiff(tmp, ["--seccomp", "log"])
        try:
            tid, comm = s.thread(io_thread, "virtio-blk I/O")
            ret = inject(tid, restore=True)
            print(f"socket() in {comm} returned {ret & 0xffffffffffffffff:#x}")
            expect(ret < 0x8000000000000000, f"socket() failed in log mode ({ret:#x})")
            expect(s.threads()[tid][1] == "2", "the I/O thread is not filtered in log mode")
            s.wait_beats(5)
            expect(s.ctl("query-status").returncode == 0, "the control socket stopped answering")
        finally:
            status = s.end()
        expect(status == 0, f"exit status {status} after SIGTERM, expected 0")
        expect("seccomp" not in s.stderr(), "log mode reported a violation itself")


def ids(pid):
    st = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines()
              if ":" in line)
    return st["Uid"].split(), st["Gid"].split(), st["Groups"].split()


def case_user_drop():
    """--user nobody: after set-up every ID is nobody's (no supplementary
    groups), the guest and its disk still run, the control socket answers."""
    need_kvm()
    if os.geteuid() != 0:
        print("SKIP: needs root to drop it")
        sys.exit(77)
    import pwd
    nobody = pwd.getpwnam("nobody")
    with tempfile.TemporaryDirectory() as tmp:
        s = Skiff(tmp, ["--user", "nobody"])
        try:
            uids, gids, groups = ids(s.p.pid)
            print(f"Uid {uids} Gid {gids} Groups {groups}")
            expect(uids == [str(nobody.pw_uid)] * 4, f"Uid is {uids}, expected nobody's")
            expect(gids == [str(nobody.pw_gid)] * 4, f"Gid is {gids}, expected nobody's group")
            expect(groups in ([], [str(nobody.pw_gid)]), f"supplementary groups kept: {groups}")
            for tid, (comm, mode, _) in s.threads().items():
                expect(mode == "2", f"thread {tid} ({comm}) is not filtered")
            expect(s.ctl("query-status").returncode == 0, "control socket does not answer")
            s.wait_beats(3)
        finally:
            status = s.end()
        expect(status == 0, f"exit status {status} after SIGTERM, expected 0")


def case_user_bad():
    """Root as --user, unknown users and groups: one clear line, status 2."""
    need_kvm()
    for args, msg in ((["--user", "root"], "--user root is root"),
                      (["--user", "no-such-user-x"], "--user no-such-user-x: no such user"),
                      (["--group", "no-such-group-x"], "--group no-such-group-x: no such group")):
        r = subprocess.run([SKIFF, "run", "--kernel", guest("heartbeat"), "--serial", "none"] + args,
                           capture_output=True, text=True, timeout=30)
        print(f"{args}: status {r.returncode}\n{r.stderr}")
        expect(r.returncode == 2, f"{args}: exit status {r.returncode}, expected 2")
        expect(msg in r.stderr, f"{args}: no clear error")


def case_bad_option():
    r = subprocess.run([SKIFF, "run", "--seccomp", "maybe"], capture_output=True, text=True,
                       timeout=30)
    print(f"status {r.returncode}\n{r.stderr}")
    expect(r.returncode == 2, f"exit status {r.returncode}, expected 2")
    expect("--seccomp maybe: expected on, log or off" in r.stderr, "no clear error")


if __name__ == "__main__":
    sys.exit(run_case(globals(), __doc__))
