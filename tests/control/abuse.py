"""Abuse of the control socket: 10,000 malformed, truncated, oversized and
deeply nested messages over four connections at once, a client that never
reads its answers, and 100 concurrent clients connecting and vanishing, three
times over, while the heartbeat guest runs. Every answer must be a
well-formed error, skiff must stay up and the heartbeat must never stop."""
import json
import os
import random
import socket
import struct
import threading
import time

from qmp import NO_ID, Client, Failed, Skiff, check_error, expect, need_kvm

MAX_MESSAGE = 1 << 20
CONNECTIONS = 4
PER_CONNECTION = 2500     # 4 x 2500 = 10,000 abusive messages
MAX_HEARTBEAT_GAP = 1.5   # seconds; the guest beats every 50 ms

GOOD = [
    {"execute": "query-status", "id": 1},
    {"execute": "query-block", "arguments": {}, "id": "abc"},
    {"execute": "query-cpus-fast", "id": [1, 2, {"x": None}]},
    {"execute": "query-version"},
]


def phases(rng):
    """[(name, [bytes message], exact)]: with exact, each message must get
    exactly one error answer. Counts add up to PER_CONNECTION."""
    garbage = []
    for _ in range(800):
        body = "".join(rng.choice("abc{}[]:,\"' \t0123456789-+eE.\\/") for _ in range(rng.randint(0, 60)))
        garbage.append((rng.choice("@#$%^&*)<>?|~`!=;") + body).encode() + b"\n")
    binary = []
    for _ in range(200):
        b = bytes(rng.choice([x for x in range(256) if x != 10]) for _ in range(rng.randint(1, 80)))
        binary.append(bytes([rng.randint(0x80, 0xff)]) + b + b"\n")
    nonobj = [rng.choice([b"[1, 2, 3]\n", b'"query-status"\n', b"42\n", b"null\n", b"true\n",
                          b"[]\n", b'[{"execute": "quit"}]\n', b"-0.5e3\n"]) for _ in range(300)]
    badreq = []
    for i in range(500):
        badreq.append(json.dumps(rng.choice([
            {"execute": "no-such-command-%d" % i, "id": i},
            {"execute": "quit", "arguments": {"force": True}, "id": i},
            {"execute": "stop", "arguments": [], "id": i},
            {"execute": None, "id": i},
            {"execute": "query-status", "exec-oob": "x", "id": i},
            {"arguments": {"x": 1}, "id": i},
            {"execute": "qmp_capabilities", "id": i},
            {"execute": ["quit"], "id": i},
            {"execute": "system_reset", "arguments": {"hard": 1}},
            {"execute": "cont", "arguments": {"a": {"b": [1, 2]}}},
        ])).encode() + b"\n")
    nested = []
    for _ in range(300):
        k = rng.randint(0, 3)
        d = rng.randint(40, 100000)
        if k == 0:
            nested.append(b"[" * d + b"\n")
        elif k == 1:
            nested.append(b'{"a":' * d + b"\n")
        elif k == 2:
            nested.append(b'{"execute": "query-status", "arguments": {"x": ' + b"[" * d +
                          b"]" * d + b"}}\n")
        else:
            nested.append(b"[" * d + b"]" * d + b"\n")
    utf8 = [b'{"execute": "query-status", "id": "\xff\xfe' + bytes([rng.randint(0x80, 0xbf)]) +
            b'"}\n' for _ in range(100)]
    big = []
    for _ in range(5):
        n = rng.randint(MAX_MESSAGE + 1, MAX_MESSAGE + (512 << 10))
        big.append(b'{"execute": "query-status", "arguments": {"pad": "' + b"A" * n + b'"}}\n')
    trunc = []
    for _ in range(PER_CONNECTION - 800 - 200 - 300 - 500 - 300 - 100 - 5):
        full = json.dumps(rng.choice(GOOD)).encode()
        trunc.append(full[:rng.randint(1, len(full) - 1)] + b"\n")
    return [("garbage", garbage, True), ("binary", binary, True), ("non-object", nonobj, True),
            ("bad-request", badreq, True), ("nested", nested, True), ("utf8", utf8, True),
            ("oversized", big, True), ("truncated", trunc, False)]


class AbuseConnection(threading.Thread):
    def __init__(self, path, seed):
        super().__init__(daemon=True)
        self.c = Client(path)
        self.rng = random.Random(seed)
        self.result = None
        self.sent = 0

    def sync(self, tag):
        # "@@@" ends whatever a truncated message left open (one error or
        # none), then the sync request must be answered.
        self.c.send_raw(b"@@@\n")
        self.c.send({"execute": "query-status", "id": tag})

    def collect(self, tag, what):
        """Answers up to the sync answer: all must be well-formed errors."""
        errors = 0
        while True:
            m = self.c.recv(timeout=60)
            if "event" in m:
                raise Failed(f"{what}: unexpected event {m}")
            if m.get("id") == tag and "return" in m:
                expect(m["return"].get("status") == "running", f"{what}: status {m}")
                return errors
            check_error(m, None, NO_ID, what)
            errors += 1

    def run(self):
        try:
            counts = {}
            for i, (name, msgs, exact) in enumerate(phases(self.rng)):
                tag = f"sync-{i}"
                sender = threading.Thread(target=self._send, args=(msgs, tag), daemon=True)
                sender.start()
                errors = self.collect(tag, name) - 1   # minus the "@@@" guard
                sender.join()
                self.sent += len(msgs)
                counts[name] = (len(msgs), errors)
                if exact:
                    expect(errors == len(msgs),
                           f"{name}: {errors} error answers for {len(msgs)} messages")
                else:
                    expect(len(msgs) // 2 <= errors + 1 <= len(msgs) + 1,
                           f"{name}: {errors} error answers for {len(msgs)} messages")
            self.result = counts
        except Exception as e:  # reported by the main thread
            self.result = e

    def _send(self, msgs, tag):
        # random write boundaries: messages are split and joined arbitrarily
        data = b"".join(msgs)
        off = 0
        while off < len(data):
            n = self.rng.choice([1, 7, 100, 4096, 65536, 1 << 20])
            self.c.send_raw(data[off:off + n])
            off += n
        self.sync(tag)


def vanishing_client(path, rng):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        kind = rng.randint(0, 5)
        if kind == 1:
            s.recv(100)
        elif kind == 2:
            s.sendall(b'{"execute": "qmp_capabilities"}\n{"execute": "query-st')
        elif kind == 3:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(b'{"execute": "qmp_capabilities"}\n' * 50)
        elif kind == 4:
            s.sendall(b"[" * 5000)
        elif kind == 5:
            s.sendall(b'{"execute": "qmp_capabilities"}\n{"execute": "query-commands"}\n' * 200)
            s.shutdown(socket.SHUT_WR)
    except OSError:
        pass   # skiff may refuse or reset: only skiff's survival matters
    finally:
        s.close()


def case_abuse():
    need_kvm()
    t0 = time.monotonic()
    with Skiff() as vm:
        vm.wait_beats(3)
        start = time.monotonic()
        conns = [AbuseConnection(vm.sock, seed) for seed in range(CONNECTIONS)]

        # a client that sends and never reads: its answers pile up, skiff
        # stops reading it (or drops it) and serves everyone else
        hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        hog.connect(vm.sock)
        hog.setblocking(False)
        hog_req = b'{"execute": "qmp_capabilities"}\n' + b'{"execute": "query-commands"}\n' * 20000
        try:
            hog.send(hog_req)
        except BlockingIOError:
            pass

        for c in conns:
            c.start()
        rng = random.Random(99)
        for _ in range(3):
            ts = [threading.Thread(target=vanishing_client, args=(vm.sock, random.Random(rng.random())))
                  for _ in range(100)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            expect(vm.p.poll() is None, f"skiff exited with {vm.p.returncode}")
        for c in conns:
            c.join(120)
            expect(not c.is_alive(), "an abuse connection did not finish in 120 s")
            if isinstance(c.result, Exception):
                raise c.result
            print("connection counts (messages, errors):", c.result)
        total = sum(c.sent for c in conns)
        expect(total == CONNECTIONS * PER_CONNECTION, f"sent {total} messages")
        hog.close()

        expect(vm.p.poll() is None, f"skiff exited with {vm.p.returncode}")
        gap = vm.max_gap(since=start)
        beats = [n for t, n in vm.beats() if t >= start]
        print(f"{total} abusive messages in {time.monotonic() - start:.1f} s; "
              f"{len(beats)} heartbeats meanwhile, largest gap {gap * 1000:.0f} ms")
        expect(len(beats) > 5, "the heartbeat stopped during the abuse")
        expect(gap < MAX_HEARTBEAT_GAP, f"the heartbeat stalled for {gap * 1000:.0f} ms")
        vm.wait_beats(3)
        c = Client(vm.sock)
        expect(c.cmd("query-status")["return"]["status"] == "running", "status after the abuse")
        c.cmd("quit")
        expect(vm.wait_exit() == 0, "exit status after the abuse")
    print(f"whole case: {time.monotonic() - t0:.1f} s")
