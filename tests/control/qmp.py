"""Helpers for the control socket tests: a skiff process running the
heartbeat guest with --api-socket, and a small raw QMP client."""
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import SKIP, Failed, expect, need_kvm  # noqa: E402

SKIFF = os.environ.get("SKIFF", "build/skiff")
GUEST_DIR = os.environ.get("GUEST_DIR", "build/tests/guests")


NO_ID = object()   # a request without "id" (None sends "id": null)


def guest(name):
    path = os.path.join(GUEST_DIR, name + ".elf")
    expect(os.path.exists(path), f"guest {path} was not built")
    return path


class Skiff:
    """skiff run with the heartbeat guest; collects console lines with the
    time each arrived."""

    def __init__(self, extra=(), cmdline="heartbeat_ms=50", sock=None, guest_name="heartbeat"):
        self.dir = tempfile.mkdtemp(prefix="skiff-ctl-")
        self.sock = sock or os.path.join(self.dir, "api.sock")
        cmd = [SKIFF, "run", "--kernel", guest(guest_name), "--debug-exit", "0xf4",
               "--serial", "stdio", "--api-socket", self.sock, "--cmdline", cmdline] + list(extra)
        print("$ " + " ".join(cmd))
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.lines = []          # (monotonic time, text)
        self.lock = threading.Lock()
        self.err = b""
        self.t_out = threading.Thread(target=self._read_out, daemon=True)
        self.t_err = threading.Thread(target=self._read_err, daemon=True)
        self.t_out.start()
        self.t_err.start()
        # Ready once the socket accepts (a stale file may already be there).
        deadline = time.monotonic() + 20
        while True:
            try:
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                probe.connect(self.sock)
                probe.close()
                break
            except OSError:
                probe.close()
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise Failed(f"skiff did not serve {self.sock}: {self.err.decode(errors='replace')}")
            time.sleep(0.01)

    def _read_out(self):
        for line in self.p.stdout:
            with self.lock:
                self.lines.append((time.monotonic(), line.decode(errors="replace").rstrip("\n")))

    def _read_err(self):
        self.err = self.p.stderr.read()

    def beats(self):
        """[(time, n)] of HEARTBEAT lines so far."""
        with self.lock:
            out = []
            for t, l in self.lines:
                parts = l.split()
                if len(parts) == 2 and parts[0] == "HEARTBEAT" and parts[1].isdigit():
                    out.append((t, int(parts[1])))
            return out

    def last_beat(self):
        b = self.beats()
        return b[-1][1] if b else None

    def wait_beats(self, n=3, timeout=20):
        """Waits until n more heartbeat lines arrived; returns the last."""
        start = len(self.beats())
        deadline = time.monotonic() + timeout
        while len(self.beats()) < start + n:
            expect(self.p.poll() is None, f"skiff exited with {self.p.returncode}")
            expect(time.monotonic() < deadline, "the guest's heartbeat does not move")
            time.sleep(0.02)
        return self.last_beat()

    def max_gap(self, since=0.0):
        b = [t for t, _ in self.beats() if t >= since]
        return max((b2 - b1 for b1, b2 in zip(b, b[1:])), default=0.0)

    def wait_exit(self, timeout=10):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failed(f"skiff did not exit within {timeout} s")
        self.t_err.join(2)
        self.t_out.join(2)
        print("--- skiff stderr\n" + self.err.decode(errors="replace") + "---")
        return self.p.returncode

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.t_err.join(2)
        print("--- skiff stderr\n" + self.err.decode(errors="replace") + "---")
        try:
            os.unlink(self.sock)
        except OSError:
            pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Client:
    """A raw QMP client: messages are read with a streaming JSON decoder."""

    def __init__(self, path, negotiate=True, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = ""
        self.pending = []
        self.dec = json.JSONDecoder()
        self.greeting = self.recv()
        if negotiate:
            r = self.cmd("qmp_capabilities")
            expect(r == {"return": {}}, f"qmp_capabilities answered {r}")

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj) + "\n")

    def _parse(self):
        while True:
            s = self.buf.lstrip()
            if not s:
                self.buf = ""
                return None
            try:
                obj, end = self.dec.raw_decode(s)
            except json.JSONDecodeError:
                return None   # incomplete (skiff sends only well-formed JSON)
            self.buf = s[end:]
            return obj

    def recv(self, timeout=None):
        """The next message (answer or event)."""
        if self.pending:
            return self.pending.pop(0)
        return self._recv_socket(timeout)

    def _recv_socket(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.s.gettimeout())
        while True:
            m = self._parse()
            if m is not None:
                return m
            left = deadline - time.monotonic()
            expect(left > 0, "no message from skiff in time")
            self.s.settimeout(left)
            data = self.s.recv(65536)
            expect(data, "skiff closed the connection")
            self.buf += data.decode()

    def answer(self, timeout=None):
        """The next answer; events met on the way are kept for events()."""
        events = []
        while True:
            m = self.recv(timeout)
            if "event" in m:
                events.append(m)
                continue
            self.pending = events + self.pending
            return m

    def cmd(self, name, args=None, id=NO_ID, timeout=None):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        if id is not NO_ID:
            req["id"] = id
        self.send(req)
        return self.answer(timeout)

    def event(self, name, timeout=5):
        """Waits for the named event (skipping others)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.pending):
                if m.get("event") == name:
                    return self.pending.pop(i)
            left = deadline - time.monotonic()
            expect(left > 0, f"no {name} event within {timeout} s")
            m = self._recv_socket(left)
            if m.get("event") == name:
                return m
            self.pending.append(m)

    def close(self):
        self.s.close()


def check_error(m, cls=None, id=NO_ID, what=""):
    expect(isinstance(m, dict) and set(m) <= {"error", "id"} and "error" in m,
           f"{what}: not an error answer: {m}")
    e = m["error"]
    expect(isinstance(e, dict) and isinstance(e.get("class"), str) and
           isinstance(e.get("desc"), str) and e["desc"], f"{what}: malformed error {m}")
    if cls:
        expect(e["class"] == cls, f"{what}: class {e['class']}, expected {cls}")
    if id is not NO_ID:
        expect("id" in m and m["id"] == id, f"{what}: id {m.get('id')!r} not echoed as {id!r}")
    return e


def check_event(m, name):
    expect(m.get("event") == name, f"expected event {name}, got {m}")
    expect(isinstance(m.get("data"), dict), f"{name}: no data object")
    ts = m.get("timestamp")
    expect(isinstance(ts, dict) and isinstance(ts.get("seconds"), int) and
           isinstance(ts.get("microseconds"), int) and 0 <= ts["microseconds"] < 1000000,
           f"{name}: malformed timestamp {ts}")
    expect(abs(ts["seconds"] - time.time()) < 60, f"{name}: timestamp is not now")
