#!/usr/bin/env python3
"""virtio-net integration cases: skiff boots tests/guests/virtio_net.elf with
--net on a tap inside a network namespace this script makes (unshare -n);
the host side reads and writes frames on the tap through a packet socket
with PACKET_VNET_HDR, so the offload headers are seen as the kernel has them.

Usage: net_test.py CASE   (environment: SKIFF, GUEST_DIR)
Exit status: 0 pass, 1 fail, 77 skipped (no /dev/kvm, no namespaces, no tun).
"""
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import SKIP, Failed, expect, need_kvm  # noqa: E402

SKIFF = os.environ.get("SKIFF", "build/skiff")
GUEST_DIR = os.environ.get("GUEST_DIR", "build/tests/guests")
EXIT_PASS = 1
ETYPE = 0x88b5
TAP = "sk0"
MAC = "02:11:22:33:44:55"
ETH_P_ALL = 3
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
SOL_PACKET = 263
K_PLAIN, K_CSUM, K_TSO, K_END1, K_BAD, K_AFTER, K_RX, K_RXGSO, K_DONE = range(1, 10)


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def in_netns():
    """Re-runs this script in a new network namespace (once)."""
    if os.environ.get("SKIFF_NET_NETNS") == "1":
        return
    if not shutil.which("unshare") or not shutil.which("ip"):
        skip("unshare or ip not installed")
    env = dict(os.environ, SKIFF_NET_NETNS="1")
    probe = subprocess.run(["unshare", "-n", "true"], stderr=subprocess.PIPE)
    if probe.returncode != 0:
        skip("cannot make a network namespace: " + probe.stderr.decode().strip())
    os.execvpe("unshare", ["unshare", "-n", sys.executable] + sys.argv, env)


def sh(*cmd):
    print("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True)


def make_tap(multi_queue=False):
    for p in ("default", "all"):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{p}/disable_ipv6", "w") as f:
                f.write("1")
        except OSError:
            pass
    cmd = ["ip", "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr"]
    if multi_queue:
        cmd.append("multi_queue")
    if subprocess.run(cmd).returncode != 0:
        skip("cannot create a tap (CAP_NET_ADMIN, /dev/net/tun?)")
    sh("ip", "link", "set", TAP, "up")


def pat(seq, i):
    return (seq * 31 + i * 7 + (i >> 8)) & 0xff


def frame(kind, seq, length, src=MAC):
    f = bytearray(length)
    f[0:6] = b"\xff" * 6
    f[6:12] = bytes.fromhex(src.replace(":", ""))
    f[12:14] = struct.pack(">H", ETYPE)
    f[14] = kind
    f[15:19] = struct.pack(">I", seq)
    for i in range(19, length):
        f[i] = pat(seq, i)
    return bytes(f)


def ip_frame(tcp, seq, payload):
    """Same bytes as ip_frame() in the guest."""
    l4 = 20 if tcp else 8
    f = bytearray(frame(K_CSUM, seq, 14 + 20 + l4 + payload))
    f[12:14] = b"\x08\x00"
    f[14:14 + 20 + l4] = bytes(20 + l4)
    f[14] = 0x45
    f[16:18] = struct.pack(">H", 20 + l4 + payload)
    f[22] = 64
    f[23] = 6 if tcp else 17
    f[26], f[29], f[30], f[33] = 10, 1, 10, 2
    f[34:38] = struct.pack(">HH", 4000, 5000)
    if tcp:
        f[46] = 0x50
    else:
        f[38:40] = struct.pack(">H", 8 + payload)
    return bytes(f)


def vnet(flags=0, gso=0, hdr_len=0, gso_size=0, cstart=0, coff=0):
    return struct.pack("<BBHHHH", flags, gso, hdr_len, gso_size, cstart, coff)


class Guest:
    def __init__(self, d, net_opts, mode="test", extra_cmdline=""):
        self.sock_path = os.path.join(d, "api.sock")
        self.pkt = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.pkt.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        self.pkt.bind((TAP, 0))
        cmd = [SKIFF, "run", "--kernel", os.path.join(GUEST_DIR, "virtio_net.elf"),
               "--debug-exit", "0xf4", "--serial", "stdio", "--api-socket", self.sock_path,
               "--net", net_opts,
               "--cmdline", f"mac={MAC.replace(':', '')} mode={mode} {extra_cmdline}"]
        print("$ " + " ".join(cmd))
        self.out = open(os.path.join(d, "out"), "w+")
        self.err = open(os.path.join(d, "err"), "w+")
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err)

    def recv(self, timeout=15):
        """Next incoming (not outgoing) frame on the tap: (vnet header, frame)."""
        end = time.time() + timeout
        while True:
            left = end - time.time()
            expect(left > 0 and self.p.poll() is None or left > 0,
                   "no frame from the guest in time")
            r, _, _ = select.select([self.pkt], [], [], min(left, 0.2))
            if not r:
                expect(self.p.poll() is None, f"skiff exited ({self.p.returncode}) early")
                continue
            data, addr = self.pkt.recvfrom(200000)
            if addr[2] == PACKET_OUTGOING:
                continue
            hdr, f = data[:10], data[10:]
            if len(f) >= 14 and f[12:14] in (struct.pack(">H", ETYPE), b"\x08\x00"):
                return struct.unpack("<BBHHHH", hdr), f

    def send(self, f, hdr=None):
        self.pkt.send((hdr or vnet()) + f)

    def stats(self):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.sock_path)
        s.settimeout(10)
        fp = s.makefile("rw")
        fp.readline()
        fp.write('{"execute":"qmp_capabilities"}\n{"execute":"query-stats"}\n')
        fp.flush()
        fp.readline()
        ans = json.loads(fp.readline())
        s.close()
        return {d["name"]: d["stats"] for d in ans["return"]["devices"]}

    def finish(self, timeout=30):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.out.seek(0)
        self.err.seek(0)
        out, err = self.out.read(), self.err.read()
        print(f"status {self.p.returncode}\n--- stdout\n{out}--- stderr\n{err}---")
        return self.p.returncode, out, err


def frames_case(multi_queue):
    need_kvm()
    in_netns()
    make_tap(multi_queue)
    with tempfile.TemporaryDirectory() as d:
        g = Guest(d, f"tap={TAP},mac={MAC}" + (",queues=2" if multi_queue else ""))
        try:
            check_frames(g)
        finally:
            status, out, err = g.finish()
        expect("short receive buffer returned unused" in out, "hostile receive buffer not seen")
        expect("NEEDS_RESET" in out, "malformed ring not caught")
        expect("TEST PASS" in out and status == EXIT_PASS, f"guest did not pass ({status})")


def case_frames():
    frames_case(False)


def case_frames_mq():
    """queues=2 (IFF_MULTI_QUEUE), a driver without MQ: pair 1 stays detached
    so every frame reaches pair 0; the control queue is queue 2."""
    frames_case(True)


def check_frames(g):
    # Guest -> tap: 8 plain frames, csum, TSO, (2 dropped), END1.
    for i in range(8):
        h, f = g.recv()
        want = frame(K_PLAIN, i, 60 + 207 * i)
        expect(f == want, f"frame {i}: {len(f)} bytes differ from the {len(want)} sent")
    h, f = g.recv()
    expect(f == ip_frame(False, 100, 200), "the NEEDS_CSUM frame differs")
    expect(h[0] & 1 and h[4] == 34 and h[5] == 6, f"NEEDS_CSUM header lost: {h}")
    h, f = g.recv()
    expect(f == ip_frame(True, 101, 3000), "the TSO frame differs")
    expect(h[1] == 1 and h[3] == 1000, f"TSO header lost: {h}")
    h, f = g.recv()
    expect(f[14] == K_END1, f"a malformed frame reached the tap (kind {f[14]})")
    print("guest -> tap: 10 frames byte for byte, offload headers kept, bad frames dropped")
    # Tap -> guest: plain frames and a GSO frame (MRG_RXBUF, GUEST_TSO4).
    for i in range(8):
        if i == 4:
            gso = ip_frame(True, 300, 3000)
            g.send(gso, vnet(1, 1, 54, 1000, 34, 16))
        g.send(frame(K_RX, i, 60 + 181 * i, src="02:00:00:00:00:01"))
    h, f = g.recv(20)
    expect(f[14] == K_AFTER, f"expected the frame sent after the reset, got kind {f[14]}")
    st = g.stats()["virtio-net0"]
    print(st)
    expect(st["tx-drops"] == 2, f"tx-drops {st['tx-drops']}, expected 2")
    expect(st["rx-errors"] == 1, f"rx-errors {st['rx-errors']}, expected 1")
    expect(st["ring-errors"] == 1, f"ring-errors {st['ring-errors']}, expected 1")
    expect(st["rx-packets"] == 9, f"rx-packets {st['rx-packets']}, expected 9")
    expect(st["tx-packets"] == 12, f"tx-packets {st['tx-packets']}, expected 12")
    expect(st["ctrl-commands"] == 2 and st["ctrl-errors"] == 1, "control queue counters")
    g.send(frame(K_DONE, 0, 64, src="02:00:00:00:00:01"))


def case_options():
    need_kvm()
    for bad in ["tap=", "mac=02:00:00:00:00:01", "tap=a,tap-fd=3", "tap=a,queues=5",
                "tap=a,mac=01:00:00:00:00:01", "tap=a,mac=02:00:00:00:00", "tap-fd=3,queues=2",
                "tap=a,colour=red", "tap=abcdefghijklmnopq"]:
        p = subprocess.run([SKIFF, "run", "--net", bad], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        err = p.stderr.decode()
        print(f"--net {bad}: {p.returncode} {err.strip()}")
        expect(p.returncode == 2 and "--net" in err, f"--net {bad} was not refused clearly")
    p = subprocess.run([SKIFF, "run", "--net", "tap-fd=99"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    expect(p.returncode == 2 and "tap-fd=99" in p.stderr.decode(), "a bad tap-fd was accepted")
    out = subprocess.run([SKIFF, "run", "--help"], stdout=subprocess.PIPE).stdout.decode()
    expect("--net tap=NAME" in out, "run --help does not document --net")


def case_restart():
    """skiff started again at once on the same tap and control socket, five
    times (as a supervisor restarts it): nothing of the previous process
    (its teardown child included) may keep the tap attached (TUNSETIFF:
    EBUSY) or the socket alive."""
    need_kvm()
    in_netns()
    make_tap()
    with tempfile.TemporaryDirectory(prefix="skiff-net-") as work:
        sock = os.path.join(work, "api.sock")
        for i in range(5):
            p = subprocess.run([SKIFF, "run", "--net", f"tap={TAP}", "--api-socket", sock,
                                "--serial", "none"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            err = p.stderr.decode()
            print(f"run {i}: status {p.returncode} {err.strip()}")
            expect(p.returncode == 0,
                   f"run {i} of skiff on the same tap and socket failed: {err}")


CASES = {name[5:].replace("_", "-"): fn for name, fn in globals().items()
         if name.startswith("case_")}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: net_test.py " + "|".join(sorted(CASES)))
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
