#!/usr/bin/env python3
"""Control socket tests (docs/control.md).

Usage: control_test.py CASE   (environment: SKIFF, GUEST_DIR)
Exit status: 0 pass, 1 fail, 77 skipped (no /dev/kvm).
"""
import json
import os
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import (NO_ID, SKIFF, Client, Failed, Skiff, check_error, check_event,  # noqa: E402
                 expect, guest, need_kvm)

COMMANDS = {"qmp_capabilities", "query-version", "query-commands", "query-status", "stop",
            "cont", "quit", "system_powerdown", "system_reset", "query-cpus-fast",
            "query-memory-size-summary", "query-block", "query-stats",
            "migrate", "migrate_cancel", "query-migrate", "migrate-set-parameters",
            "query-migrate-parameters"}


def ctl(args, timeout=30):
    cmd = [SKIFF, "ctl"] + args
    print("$ " + " ".join(cmd))
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    print(f"status {p.returncode}\n--- stdout\n{out}--- stderr\n{err}---")
    return p.returncode, out, err


# --- conformance ----------------------------------------------------------

def case_greeting():
    need_kvm()
    with Skiff() as vm:
        st = os.stat(vm.sock)
        expect(stat.S_ISSOCK(st.st_mode), "--api-socket did not create a socket")
        expect(stat.S_IMODE(st.st_mode) == 0o600, f"socket mode {oct(st.st_mode)}, expected 0600")
        c = Client(vm.sock, negotiate=False)
        g = c.greeting
        print("greeting:", g)
        expect(set(g) == {"QMP"}, "greeting has other members than QMP")
        expect(g["QMP"].get("capabilities") == [], "greeting capabilities is not []")
        v = g["QMP"].get("version", {})
        expect(isinstance(v.get("qemu"), dict) and
               all(isinstance(v["qemu"].get(k), int) for k in ("major", "minor", "micro")),
               "greeting version lacks qemu.major/minor/micro")
        expect("skiff" in v.get("package", ""), "greeting version does not name skiff")

        # Negotiation first: every other command is refused, ids echoed.
        for name in ["query-status", "stop", "quit", "no-such-command"]:
            check_error(c.cmd(name, id=name), "CommandNotFound", name, "before negotiation")
        expect(vm.p.poll() is None, "a command ran before negotiation")
        expect(c.cmd("qmp_capabilities", id=7) == {"return": {}, "id": 7}, "qmp_capabilities")
        check_error(c.cmd("qmp_capabilities", id=8), "CommandNotFound", 8, "second negotiation")
        # A client that asks for a capability skiff lacks is refused.
        c2 = Client(vm.sock, negotiate=False)
        check_error(c2.cmd("qmp_capabilities", {"enable": ["oob"]}, id=1), "GenericError", 1,
                    "unknown capability")
        check_error(c2.cmd("query-status"), "CommandNotFound", NO_ID, "after refused negotiation")
        c2.close()
        vm.wait_beats(2)
        c.close()


def case_commands():
    need_kvm()
    with Skiff(extra=["--cpus", "2", "--memory", "128M"]) as vm:
        c = Client(vm.sock)
        # ids of every JSON type come back unchanged, on answers and errors
        for id in [1, -5, "abc", {"x": [1, 2]}, [None, True], 2.5, None, ""]:
            r = c.cmd("query-status", id=id)
            expect(r.get("id") == id and "id" in r and "return" in r, f"id {id!r} not echoed: {r}")
            r = c.cmd("no-such", id=id)
            check_error(r, "CommandNotFound", id, "unknown command")
        r = c.cmd("query-status")
        expect("id" not in r, "an id appeared in the answer to a request without one")

        r = c.cmd("query-version")["return"]
        expect(isinstance(r["qemu"]["major"], int) and "skiff" in r["package"], f"query-version {r}")
        r = c.cmd("query-commands")["return"]
        names = {e["name"] for e in r}
        expect(names == COMMANDS, f"query-commands: {sorted(names)}")
        r = c.cmd("query-status")["return"]
        expect(r == {"status": "running", "running": True, "singlestep": False}, f"query-status {r}")
        r = c.cmd("query-cpus-fast")["return"]
        expect([e["cpu-index"] for e in r] == [0, 1], f"query-cpus-fast {r}")
        tids = [e["thread-id"] for e in r]
        expect(all(isinstance(t, int) and t > 0 for t in tids) and len(set(tids)) == 2,
               f"thread ids {tids}")
        for t in tids:   # each is a thread of the skiff process
            expect(os.path.exists(f"/proc/{vm.p.pid}/task/{t}"), f"thread {t} is not skiff's")
        r = c.cmd("query-memory-size-summary")["return"]
        expect(r == {"base-memory": 128 << 20, "plugged-memory": 0}, f"memory {r}")
        expect(c.cmd("query-block") == {"return": []}, "query-block")
        vm.wait_beats(2)
        r = c.cmd("query-stats")["return"]
        devs = {d["name"]: d["stats"] for d in r["devices"]}
        expect("serial0" in devs, f"query-stats has no serial0: {r}")
        tx1 = devs["serial0"]["tx-bytes"]
        expect(tx1 > 0, "serial tx-bytes did not count the heartbeat output")
        expect([v["cpu-index"] for v in r["vcpus"]] == [0, 1], "query-stats vcpus")
        expect(r["vcpus"][0]["exits-io"] > 0, "vCPU 0 counted no I/O exits")
        vm.wait_beats(2)
        tx2 = c.cmd("query-stats")["return"]["devices"][0]["stats"]["tx-bytes"]
        expect(tx2 > tx1, "serial tx-bytes does not grow with the output")

        # malformed requests: errors, and the connection stays usable
        for req, what in [
            ({"execute": "query-status", "arguments": {"x": 1}, "id": 1}, "unexpected argument"),
            ({"execute": "query-status", "arguments": [1], "id": 2}, "arguments not an object"),
            ({"execute": 5, "id": 3}, "execute not a string"),
            ({"arguments": {}, "id": 4}, "no execute"),
            ({"execute": "query-status", "bogus": 1, "id": 5}, "unexpected member"),
            ({"execute": "qmp_capabilities", "id": 6}, "negotiated twice"),
            ({"execute": "stop", "arguments": {"now": True}, "id": 7}, "stop with an argument"),
        ]:
            c.send(req)
            check_error(c.answer(), None, req["id"], what)
        c.send_raw('{"execute": "quit\\u0000x", "id": "nul"}\n')
        check_error(c.answer(), "CommandNotFound", "nul", "a command name with a NUL")
        for raw, what in [("[1, 2]\n", "array"), ('"query-status"\n', "string"),
                          ("42\n", "number"), ("{bad json}\n", "malformed")]:
            c.send_raw(raw)
            e = c.answer()
            check_error(e, "GenericError", NO_ID, what)
            expect("id" not in e, f"{what}: an id appeared")
        expect(vm.p.poll() is None, "skiff ended on a malformed request")
        # two requests in one write, one split over many writes, one over lines
        c.send_raw('{"execute":"query-status","id":"a"}{"execute":"query-block","id":"b"}\n')
        expect(c.answer().get("id") == "a" and c.answer().get("id") == "b", "two in one line")
        for ch in '{"execute": "query-block", "id": "split"}':
            c.send_raw(ch)
            time.sleep(0.002)
        expect(c.answer() == {"return": [], "id": "split"}, "byte-by-byte request")
        c.send_raw('{\n  "execute": "query-block",\n  "id": "multi"\n}\n')
        expect(c.answer() == {"return": [], "id": "multi"}, "multi-line request")
        # a client that half-closes still gets its answers
        h = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        h.settimeout(10)
        h.connect(vm.sock)
        h.sendall(b'{"execute":"qmp_capabilities"}\n{"execute":"query-block","id":"hc"}\n')
        h.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = h.recv(65536)
            if not d:
                break
            got += d
        h.close()
        lines = [json.loads(l) for l in got.decode().splitlines() if l.strip()]
        expect(len(lines) == 3 and lines[2] == {"return": [], "id": "hc"},
               f"half-closed client got {lines}")
        # a truncated request followed by a good one: one error, then the answer
        c.send_raw('{"execute": "query-status", "id": "trunc"\n{"execute":"query-block","id":"ok"}\n')
        check_error(c.answer(), "GenericError", NO_ID, "truncated request")
        expect(c.answer() == {"return": [], "id": "ok"}, "request after a truncated one")
        c.close()


def case_query_block_disk():
    """query-block and query-stats list the virtio-blk disks."""
    need_kvm()
    helptext = subprocess.run([SKIFF, "run", "--help"], capture_output=True).stdout.decode()
    if "--disk" not in helptext:
        print("SKIP: this skiff has no --disk")
        sys.exit(77)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        with Skiff(extra=["--disk", f"path={img},readonly=on,serial=ctl-test"]) as vm:
            c = Client(vm.sock)
            r = c.cmd("query-block")["return"]
            print("query-block:", r)
            expect(len(r) == 1 and r[0]["device"] == "virtio-blk0", f"query-block {r}")
            ins = r[0]["inserted"]
            expect(ins["file"] == img and ins["ro"] is True and ins["serial"] == "ctl-test",
                   f"query-block inserted {ins}")
            r = c.cmd("query-stats")["return"]
            names = [x["name"] for x in r["devices"]]
            expect("virtio-blk0" in names and "serial0" in names, f"query-stats devices {names}")
            c.cmd("quit")
            expect(vm.wait_exit() == 0, "exit status")


def case_events_all_clients():
    need_kvm()
    with Skiff() as vm:
        clients = [Client(vm.sock) for _ in range(3)]
        shy = Client(vm.sock, negotiate=False)   # never negotiates: gets no events
        a = clients[0]
        expect(a.cmd("stop", id="s") == {"return": {}, "id": "s"}, "stop")
        for c in clients:
            check_event(c.event("STOP"), "STOP")
        expect(a.cmd("stop") == {"return": {}}, "stop when stopped")
        expect(a.cmd("cont") == {"return": {}}, "cont")
        for c in clients:
            check_event(c.event("RESUME"), "RESUME")
            # exactly one STOP and one RESUME: stop on a stopped VM emits none
            c.cmd("query-status")
            expect(not any(m.get("event") == "STOP" for m in c.pending), "a second STOP event")
        shy.s.settimeout(0.5)
        try:
            data = shy.s.recv(65536)
        except socket.timeout:
            data = b""
        expect(data == b"", f"an unnegotiated client got events: {data[:200]!r}")
        r = a.cmd("system_powerdown", id="pd")
        if "error" in r:
            # No ACPI power button yet (vm_request_powerdown: -ENOTSUP).
            e = check_error(r, "GenericError", "pd", "system_powerdown")
            expect("power button" in e["desc"], f"system_powerdown error is unclear: {e}")
            expect(a.cmd("query-status")["return"]["status"] == "running",
                   "a failed powerdown changed the VM")
        else:
            for c in clients:
                check_event(c.event("POWERDOWN"), "POWERDOWN")
        expect(a.cmd("quit", id="q") == {"return": {}, "id": "q"}, "quit")
        for c in clients:
            ev = c.event("SHUTDOWN")
            check_event(ev, "SHUTDOWN")
            expect(ev["data"].get("reason") == "host-qmp-quit" and ev["data"].get("guest") is False,
                   f"SHUTDOWN data {ev['data']}")
        status = vm.wait_exit()
        expect(status == 0, f"skiff exited with {status} after quit")
        expect(not os.path.exists(vm.sock), "the socket file was left behind")


# --- behaviour with a running guest -------------------------------------------

def case_stop_cont():
    need_kvm()
    with Skiff() as vm:
        c = Client(vm.sock)
        vm.wait_beats(3)
        expect(c.cmd("stop") == {"return": {}}, "stop")
        expect(c.cmd("query-status")["return"]["status"] == "paused", "status after stop")
        time.sleep(0.2)   # console bytes already written reach the pipe
        frozen = (len(vm.lines), vm.last_beat())
        time.sleep(1.0)
        expect((len(vm.lines), vm.last_beat()) == frozen,
               f"the heartbeat moved while stopped: {frozen} -> {vm.last_beat()}")
        tx = c.cmd("query-stats")["return"]["devices"][0]["stats"]["tx-bytes"]
        time.sleep(0.3)
        expect(c.cmd("query-stats")["return"]["devices"][0]["stats"]["tx-bytes"] == tx,
               "the guest wrote to the console while stopped")
        expect(c.cmd("cont") == {"return": {}}, "cont")
        expect(c.cmd("query-status")["return"]["status"] == "running", "status after cont")
        n = vm.wait_beats(3, timeout=5)
        expect(n > frozen[1], "the heartbeat did not move on after cont")
        # several rounds: stop/cont never lose the guest
        for _ in range(5):
            c.cmd("stop")
            c.cmd("cont")
        vm.wait_beats(2, timeout=5)
        ev = Client(vm.sock)
        c.cmd("quit")
        check_event(ev.event("SHUTDOWN"), "SHUTDOWN")
        expect(vm.wait_exit() == 0, "exit status after quit")


def case_quit_while_stopped():
    need_kvm()
    with Skiff() as vm:
        c = Client(vm.sock)
        c.cmd("stop")
        expect(c.cmd("quit") == {"return": {}}, "quit while stopped")
        check_event(c.event("SHUTDOWN"), "SHUTDOWN")
        expect(vm.wait_exit() == 0, "exit status after quit while stopped")


def case_system_reset():
    need_kvm()
    with Skiff() as vm:
        c = Client(vm.sock)
        vm.wait_beats(2)
        expect(c.cmd("system_reset", id=1) == {"return": {}, "id": 1}, "system_reset")
        # A skiff test guest ends with a reset (that is its power-off), so
        # this VM ends: SHUTDOWN says the reset was asked for here. (A guest
        # that reboots gets RESET instead; tests/nested covers Linux.)
        ev = c.event("SHUTDOWN", timeout=10)
        check_event(ev, "SHUTDOWN")
        expect(ev["data"].get("reason") == "host-qmp-system-reset" and
               ev["data"].get("guest") is False, f"SHUTDOWN data {ev['data']}")
        expect(not any(m.get("event") == "RESET" for m in c.pending),
               "RESET although the VM did not reset")
        expect(vm.wait_exit() == 0, "exit status after reset")


def case_guest_shutdown_event():
    """A guest that ends by itself: SHUTDOWN with guest=true."""
    need_kvm()
    vm = Skiff(guest_name="echo", cmdline="echo_timeout_ms=1500")
    try:
        c = Client(vm.sock)
        ev = c.event("SHUTDOWN", timeout=30)
        check_event(ev, "SHUTDOWN")
        expect(ev["data"].get("guest") is True and ev["data"].get("exit-status") == 3,
               f"SHUTDOWN data {ev['data']}")
        expect(vm.wait_exit() == 3, "exit status of the failing echo guest")
    finally:
        vm.stop()


def case_socket_file():
    need_kvm()
    with Skiff() as vm:
        # a live socket is refused
        status = subprocess.run([SKIFF, "run", "--kernel", guest("heartbeat"),
                                 "--api-socket", vm.sock, "--serial", "none"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=30)
        err = status.stderr.decode()
        print(err)
        expect(status.returncode == 2 and "listening" in err, "a second skiff took a live socket")
        c = Client(vm.sock)
        expect(c.cmd("query-status")["return"]["running"], "the first skiff lost its socket")
        # a stale socket (no listener) is replaced
        stale = os.path.join(vm.dir, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()
        vm2 = Skiff(sock=stale)
        try:
            expect(Client(vm2.sock).cmd("query-status")["return"]["running"], "stale socket")
        finally:
            vm2.stop()
        # something that is not a socket is left alone
        plain = os.path.join(vm.dir, "plain")
        with open(plain, "w") as f:
            f.write("keep me")
        p = subprocess.run([SKIFF, "run", "--api-socket", plain, "--serial", "none"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        expect(p.returncode == 2 and b"not a socket" in p.stderr, "a plain file was not refused")
        with open(plain) as f:
            expect(f.read() == "keep me", "the plain file was changed")
        os.unlink(plain)
        c.cmd("quit")
        vm.wait_exit()


# --- skiff ctl ------------------------------------------------------------------

def case_ctl():
    need_kvm()
    st, out, err = ctl(["/nonexistent/skiff.sock", "query-status"])
    expect(st == 2 and "cannot connect" in err, "ctl to a missing socket")
    st, _, _ = ctl([])
    expect(st == 2, "ctl without arguments")
    st, out, _ = ctl(["--help"])
    expect(st == 0 and "events" in out and "--json" in out, "ctl --help")
    # a server that greets and then never answers: --timeout gives up
    import tempfile
    import threading
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mute.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)

        def mute():
            conn, _ = srv.accept()
            conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
            time.sleep(3)
            conn.close()
        t = threading.Thread(target=mute, daemon=True)
        t.start()
        t0 = time.monotonic()
        st, _, err = ctl(["--timeout", "1", path, "query-status"])
        took = time.monotonic() - t0
        expect(st == 2 and "no answer" in err and took < 2.5, f"ctl --timeout: {st} after {took:.1f} s")
        t.join(5)
        srv.close()
    with Skiff(extra=["--cpus", "2"]) as vm:
        st, out, _ = ctl([vm.sock, "query-status"])
        expect(st == 0 and "status: running" in out, "ctl query-status (human)")
        st, out, _ = ctl(["--json", vm.sock, "query-status"])
        m = json.loads(out)
        expect(st == 0 and m["return"]["status"] == "running", "ctl --json query-status")
        st, out, _ = ctl([vm.sock, "query-cpus-fast"])
        expect(st == 0 and out.count("cpu-index:") == 2, "ctl query-cpus-fast")
        st, out, _ = ctl([vm.sock, "query-block"])
        expect(st == 0 and out.strip() == "(none)", "ctl query-block")
        st, out, err = ctl([vm.sock, "no-such-command"])
        expect(st == 1 and "CommandNotFound" in err, "ctl with an unknown command")
        st, out, err = ctl([vm.sock, "query-status", "verbose=true"])
        expect(st == 1 and "verbose" in err, "ctl with an unexpected argument")
        st, out, err = ctl(["--json", vm.sock, "query-status", "x=1"])
        expect(st == 1 and "error" in json.loads(out), "ctl --json error answer")
        st, out, err = ctl([vm.sock, "qmp_capabilities", 'enable:=["oob"]'])
        expect(st == 1, "ctl KEY:=JSON argument")
        st, out, err = ctl([vm.sock, "query-status", "novalue"])
        expect(st == 2, "ctl with a malformed argument")
        st, out, _ = ctl([vm.sock, "--json", '{"execute": "query-block", "id": 99}'])
        expect(st == 0 and json.loads(out) == {"return": [], "id": 99}, "ctl --json raw request")
        st, out, _ = ctl([vm.sock, "--json", '{"execute": "query-block"'])
        expect(st == 2, "ctl --json with malformed JSON")
        st, out, _ = ctl([vm.sock, "--json", '{"execute": "nope"}'])
        expect(st == 1, "ctl --json raw request answered with an error")

        # events: a follower sees STOP, RESUME and SHUTDOWN, in order
        follower = subprocess.Popen([SKIFF, "ctl", "--json", vm.sock, "events", "--count", "3"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        human = subprocess.Popen([SKIFF, "ctl", vm.sock, "events"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5)   # both have negotiated
        expect(ctl([vm.sock, "stop"])[0] == 0, "ctl stop")
        vm_lines = len(vm.lines)
        time.sleep(0.3)
        expect(ctl([vm.sock, "query-status"])[1].startswith("status: paused"), "paused")
        expect(ctl([vm.sock, "cont"])[0] == 0, "ctl cont")
        vm.wait_beats(2, timeout=5)
        expect(len(vm.lines) > vm_lines, "no output after cont")
        expect(ctl([vm.sock, "quit"])[0] == 0, "ctl quit")
        out, err = follower.communicate(timeout=10)
        events = [json.loads(l) for l in out.decode().splitlines()]
        print("events:", events)
        expect(follower.returncode == 0, f"ctl events exit status {follower.returncode}")
        expect([e["event"] for e in events] == ["STOP", "RESUME", "SHUTDOWN"],
               f"ctl events: {[e['event'] for e in events]}")
        for e in events:
            check_event(e, e["event"])
        hout, _ = human.communicate(timeout=10)
        hout = hout.decode()
        print("human events:\n" + hout)
        expect(human.returncode == 0, "ctl events ends with 0 when skiff ends")
        expect([l.split()[1] for l in hout.splitlines()] == ["STOP", "RESUME", "SHUTDOWN"],
               "human-readable events")
        expect("reason=host-qmp-quit" in hout, "human-readable event data")
        expect(vm.wait_exit() == 0, "exit status after ctl quit")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    name = sys.argv[1].replace("-", "_")
    fn = globals().get("case_" + name)
    if not fn:
        # the abuse case lives in its own file
        import abuse
        fn = getattr(abuse, "case_" + name, None)
    if not fn:
        print(f"unknown case {sys.argv[1]}")
        return 2
    try:
        fn()
    except Failed as e:
        print(f"FAIL: {e}")
        return 1
    except (subprocess.TimeoutExpired, socket.timeout) as e:
        print(f"FAIL: timed out: {e}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
