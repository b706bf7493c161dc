#!/usr/bin/env python3
"""Nested SVM test host: boots the Debian cloud kernel under QEMU TCG with
SVM and nested paging, loads kvm_amd inside it, and runs one test case of
tests/nested/host-tests.sh there: skiff on real KVM-on-SVM booting the stock
Debian kernel as its guest.

Usage: harness.py CASE
Environment: SKIFF (the binary), SRC (source root), ASSETS (cache folder).
Exit 0 pass, 1 fail, 77 skipped (no QEMU, no network for the assets and
nothing cached).
Cases named pvm-* run on this machine instead (see run_local).
SKIFF_EXTRA (no spaces) is passed to the host as skiff.extra= for ad-hoc
debugging cases; BENCH_RUNS sets the runs of the `bench` case.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(msg, flush=True)


def fetch_assets(src, assets):
    r = subprocess.run([os.path.join(src, 'scripts', 'fetch-guest-assets.sh'), assets],
                       capture_output=True, text=True)
    sys.stderr.write(r.stderr)
    if r.returncode == 3:
        log('SKIP: guest assets cannot be fetched (no network?)')
        sys.exit(SKIP)
    if r.returncode != 0:
        log('FAIL: fetch-guest-assets.sh failed')
        sys.exit(1)


def strip_pvh_note(src, dst):
    """Copy of an ELF vmlinux whose Xen PHYS32_ENTRY note is renumbered, so
    skiff takes the 64-bit Linux entry instead of PVH."""
    img = bytearray(open(src, 'rb').read())
    phoff, = struct.unpack_from('<Q', img, 0x20)
    phentsize, phnum = struct.unpack_from('<HH', img, 0x36)
    done = False
    for i in range(phnum):
        p = phoff + i * phentsize
        ptype, = struct.unpack_from('<I', img, p)
        if ptype != 4:  # PT_NOTE
            continue
        off, = struct.unpack_from('<Q', img, p + 8)
        size, = struct.unpack_from('<Q', img, p + 32)
        pos, end = off, off + size
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from('<III', img, pos)
            name = bytes(img[pos + 12:pos + 12 + namesz])
            if name == b'Xen\0' and ntype == 18:
                struct.pack_into('<I', img, pos + 8, 0xfff0)
                done = True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    if not done:
        raise SystemExit('vmlinux has no PVH note to strip')
    open(dst, 'wb').write(img)


def shared_libs(binary):
    """The shared objects (and the dynamic loader) `ldd` lists."""
    out = subprocess.run(['ldd', binary], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if '=>' in parts and len(parts) >= 3 and parts[2].startswith('/'):
            libs.append(parts[2])
        elif parts and parts[0].startswith('/'):
            libs.append(parts[0])
    return libs


def add_disk_images(root, work):
    """The virtio-blk cases' images and tools in the host's /assets and
    /skiff: blk.img (8 MiB of random bytes), ext4.img (mkfs.ext4 -d with a
    hello.txt holding a random token) and debugfs to read it back."""
    with open(os.path.join(root, 'assets/blk.img'), 'wb') as f:
        f.write(os.urandom(8 << 20))
    content = os.path.join(work, 'ext4-content')
    os.makedirs(content)
    with open(os.path.join(content, 'hello.txt'), 'w') as f:
        f.write(f'hello-{os.urandom(8).hex()}\n')
    mkfs = shutil.which('mkfs.ext4') or '/usr/sbin/mkfs.ext4'
    subprocess.run([mkfs, '-q', '-F', '-d', content, os.path.join(root, 'assets/ext4.img'), '4M'],
                   check=True)
    debugfs = shutil.which('debugfs') or '/usr/sbin/debugfs'
    shutil.copy(debugfs, os.path.join(root, 'skiff/debugfs'))
    for lib in shared_libs(debugfs):
        shutil.copy(lib, os.path.join(root, 'skiff/lib', os.path.basename(lib)))


def add_guest_images(root):
    """The virtio_blk guest's disk images (tests/virtio/guests.py's
    pattern over 2048 sectors) and what its writable one must hold after
    the guest's run (sector 10 rewritten with j ^ 0x5a)."""
    n = 2048 * 512
    pat = bytes(((i * 7 + (i >> 9)) & 0xff) for i in range(n))
    want = bytearray(pat)
    want[10 * 512:11 * 512] = bytes((j ^ 0x5a) & 0xff for j in range(512))
    with open(os.path.join(root, 'assets/pattern.img'), 'wb') as f:
        f.write(pat)
    with open(os.path.join(root, 'assets/blk-want.img'), 'wb') as f:
        f.write(want)


def build_host_initramfs(skiff, assets, work, with_qemu=False, with_disks=False,
                         with_guests=False):
    root = os.path.join(work, 'root')
    kver = open(os.path.join(assets, 'kver')).read().strip()
    for d in ('bin', 'dev', 'proc', 'sys', 'tmp', 'skiff/lib', 'assets', 'tests',
              f'lib/modules/{kver}'):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy('/bin/busybox', os.path.join(root, 'bin/busybox'))
    os.symlink('busybox', os.path.join(root, 'bin/sh'))
    shutil.copy(os.path.join(HERE, 'host-init'), os.path.join(root, 'init'))
    os.chmod(os.path.join(root, 'init'), 0o755)
    shutil.copy(os.path.join(HERE, 'host-tests.sh'), os.path.join(root, 'tests/host-tests.sh'))
    shutil.copy(skiff, os.path.join(root, 'skiff/skiff'))
    for lib in shared_libs(skiff):
        dst = os.path.join(root, lib.lstrip('/'))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(lib, dst)
        shutil.copy(lib, os.path.join(root, 'skiff/lib', os.path.basename(lib)))
    mods = os.path.join(assets, 'modules/lib/modules', kver)
    for m in ('kernel/virt/lib/irqbypass.ko', 'kernel/arch/x86/kvm/kvm.ko',
              'kernel/arch/x86/kvm/kvm-amd.ko', 'kernel/drivers/net/tun.ko'):
        dst = os.path.join(root, 'lib/modules', kver, m)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(os.path.join(mods, m), dst)
    subprocess.run(['/bin/busybox', 'depmod', '-b', root, kver], check=True)
    for f in ('bzImage', 'vmlinux', 'initramfs.cpio.gz'):
        os.link(os.path.join(assets, f), os.path.join(root, 'assets', f)) \
            if os.stat(assets).st_dev == os.stat(root).st_dev else \
            shutil.copy(os.path.join(assets, f), os.path.join(root, 'assets', f))
    if with_qemu:
        qemu = shutil.which('qemu-system-x86_64')
        os.makedirs(os.path.join(root, 'qemu'), exist_ok=True)
        shutil.copy(qemu, os.path.join(root, 'bin/qemu-system-x86_64'))
        for lib in shared_libs(qemu):
            dst = os.path.join(root, lib.lstrip('/'))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(lib, dst)
            shutil.copy(lib, os.path.join(root, 'skiff/lib', os.path.basename(lib)))
        for f in ('bios-microvm.bin', 'qboot.rom', 'pvh.bin', 'linuxboot_dma.bin'):
            shutil.copy(os.path.join('/usr/share/qemu', f), os.path.join(root, 'qemu', f))
    if with_disks:
        add_disk_images(root, work)
    if with_guests:
        for g in ('migtest', 'smp', 'virtio_blk', 'virtio_rng', 'virtio_hostile'):
            shutil.copy(os.path.join(os.environ['GUEST_DIR'], g + '.elf'),
                        os.path.join(root, 'assets', g + '.elf'))
        add_guest_images(root)
    strip_pvh_note(os.path.join(assets, 'vmlinux'), os.path.join(root, 'assets/vmlinux-nopvh'))
    os.rename(os.path.join(root, 'assets/vmlinux'), os.path.join(root, 'assets/vmlinux-pvh'))
    cpio = os.path.join(work, 'host.cpio')
    with open(cpio, 'wb') as out:
        files = subprocess.run(['find', '.'], cwd=root, capture_output=True, check=True).stdout
        subprocess.run(['cpio', '-o', '-H', 'newc', '--quiet', '-R', '0:0'], cwd=root,
                       input=files, stdout=out, check=True)
    return cpio


# The test host's CPUs (QEMU TCG threads, on this machine's 2 cores): 2,
# or as many as the case's guest has vCPUs. With 4 vCPU threads on the
# host's 2 CPUs, smp-memory-cmdline failed 4 of 20 runs on 2026-12-05 (the
# guest's triple fault, the test host's panic after it) and both 4-vCPU
# cases hung in one CI run; with 4 CPUs, 0 of 22 and 0 of 10 (guests).
HOST_CPUS = {'smp-memory-cmdline': 4, 'guests': 4}

# What the test host's kernel prints when one of its CPUs is stuck.
SOFT_LOCKUP = 'watchdog: BUG: soft lockup'


def run_nested(case, skiff, assets):
    if not shutil.which('qemu-system-x86_64'):
        log('SKIP: qemu-system-x86_64 is not installed')
        return SKIP
    if (case.startswith('virtio-blk-') or case == 'migrate-linux') and not (shutil.which('mkfs.ext4') or os.path.exists('/usr/sbin/mkfs.ext4')):
        log('SKIP: e2fsprogs (mkfs.ext4, debugfs) is not installed')
        return SKIP
    with tempfile.TemporaryDirectory(prefix='skiff-nested-', dir=os.path.dirname(assets)) as work:
        cpio = build_host_initramfs(skiff, assets, work, with_qemu=case == 'bench',
                                     with_disks=case.startswith('virtio-blk-') or
                                     case == 'migrate-linux',
                                     with_guests=case in ('guests', 'migrate-serial',
                                                          'migrate-dirty', 'snapshot-serial'))
        # panic_on_rcu_stall: a CPU of the test host stuck for a minute
        # (seen once, in reboot-pvh on 2026-12-05: the guest's output
        # stopped mid-line and the host's CPU 0 stalled RCU until the 540 s
        # limit) panics the host, which ends the run without a result: a
        # test host failure, retried (test_host_failure).
        cmd = ['qemu-system-x86_64', '-accel', 'tcg', '-cpu', 'qemu64,+svm,+npt',
               '-M', 'q35', '-m', '3G', '-smp', str(HOST_CPUS.get(case, 2)),
               '-nographic', '-no-reboot', '-nic', 'none',
               '-kernel', os.path.join(assets, 'bzImage'), '-initrd', cpio,
               '-append', f'console=ttyS0 quiet panic=-1 sysctl.kernel.panic_on_rcu_stall=1 skiff.nested={case} '
               f'skiff.runs={int(os.environ.get("BENCH_RUNS", "5"))} '
               f'skiff.extra={os.environ.get("SKIFF_EXTRA", "")}']
        t0 = time.monotonic()
        logpath = os.path.join(os.path.dirname(assets), 'nested-logs', case + os.environ.get('SKIFF_EXTRA', '') + '.log')
        os.makedirs(os.path.dirname(logpath), exist_ok=True)
        # QEMU's console goes to a log file as it comes, so a hung run can
        # be watched; it is killed (never left behind) on timeout.
        with open(logpath, 'wb') as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 540
                while proc.poll() is None:
                    if time.monotonic() > deadline:
                        log(open(logpath, errors='replace').read())
                        log('FAIL: the nested host did not finish in 540 s')
                        return 1
                    if SOFT_LOCKUP in open(logpath, errors='replace').read():
                        # The test host's own kernel is stuck: nothing
                        # will come of this run (see main()).
                        log(open(logpath, errors='replace').read()[-3000:])
                        log('FAIL: the nested test host\'s kernel reports a soft lockup')
                        return 1
                    time.sleep(1)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        out = open(logpath, errors='replace').read()
    log(f'nested run: {time.monotonic() - t0:.1f} s')
    runs = [line.split() for line in out.splitlines() if line.startswith('BENCH-RUN')]
    if runs:
        sk = sorted(float(r[3]) for r in runs)
        qe = sorted(float(r[5]) for r in runs)
        med = lambda v: v[len(v) // 2]
        log(f'boot to /init and power-off, median of {len(runs)} alternated runs in the nested host: '
            f'skiff {med(sk):.2f} s, QEMU microvm {med(qe):.2f} s, ratio QEMU/skiff {med(qe) / med(sk):.2f}')
    for line in out.splitlines():
        if line.startswith('NESTED-RESULT: PASS'):
            return 0
        if line.startswith('NESTED-RESULT: FAIL'):
            # The nested host's console, without the kernels' own lines.
            log('\n'.join(l for l in out.splitlines()
                           if not l.startswith('[') and l.strip())[-4000:])
            return 1
    log('FAIL: no NESTED-RESULT line')
    return 1


def run_local(case, skiff, assets):
    """pvm-refuses: on a PVM host, skiff must refuse a stock kernel at once."""
    try:
        info = subprocess.run([skiff, 'host-info'], capture_output=True, text=True, timeout=10)
    except OSError:
        return 1
    if 'PVM' not in info.stdout:
        log('SKIP: this host is not PVM')
        return SKIP
    for kernel in ('bzImage', 'vmlinux'):
        r = subprocess.run([skiff, 'run', '--kernel', os.path.join(assets, kernel),
                            '--initrd', os.path.join(assets, 'initramfs.cpio.gz'),
                            '--serial', 'none'],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        log(r.stderr)
        if r.returncode != 2 or 'PVM' not in r.stderr or 'unmodified' not in r.stderr:
            log(f'FAIL: {kernel}: status {r.returncode}, expected 2 with a PVM message')
            return 1
    return 0


# Cases with a known, open problem: reported as skipped (visible in the
# summary) unless SKIFF_NESTED_ALL=1 asks to run them anyway.
KNOWN_ISSUES = {
    # Empty: the reboot cases left it after 12 of 12 loaded runs in session
    # 4 (and 4 of 4 in session 3) with no hang.
}


def main():
    case = sys.argv[1]
    if case in KNOWN_ISSUES and os.environ.get('SKIFF_NESTED_ALL') != '1':
        log('SKIP: known issue: ' + KNOWN_ISSUES[case] + ' (SKIFF_NESTED_ALL=1 runs it)')
        return SKIP
    skiff = os.environ['SKIFF']
    src = os.environ.get('SRC', os.path.dirname(os.path.dirname(HERE)))
    assets = os.environ['ASSETS']
    fetch_assets(src, assets)
    if case.startswith('pvm-'):
        if not os.access('/dev/kvm', os.R_OK | os.W_OK):
            log('SKIP: no /dev/kvm')
            return SKIP
        return run_local(case, skiff, assets)
    ret = run_nested(case, skiff, assets)
    for _ in range(TEST_HOST_RETRIES):
        why = test_host_failure(last_run_log(assets, case)) if ret == 1 else None
        if not why:
            break
        # Visible in the log; any other failure fails the case, and so
        # does a test host failure after the last retry.
        log(f'RETRY: {why}; running the case once more')
        ret = run_nested(case, skiff, assets)
    return ret


# Retries of a case whose run failed by the test host's fault (below): two.
# Three of four clean-clone CI runs on 2026-12-05 met one such failure,
# in cases that pass most runs.
TEST_HOST_RETRIES = 2


def test_host_failure(out):
    """Why a failed run is the test host's failure rather than skiff's (its
    console log OUT), or None. These are retried (TEST_HOST_RETRIES)."""
    if 'NESTED-RESULT' not in out and 'Kernel panic - not syncing' in out:
        # The test host's own kernel panicked and the run ended without a
        # result (a guest's panic shows in skiff's output, after a
        # result line). Seen on 2026-12-05: "corrupted stack end detected
        # inside scheduler" in a vCPU thread, in KVM's vCPU reset after
        # the guest's triple fault (below), under QEMU TCG's SVM; and an
        # RCU stall of the host, which panics it (run_nested).
        return 'the nested test host\'s own kernel panicked (under QEMU TCG)'
    if SOFT_LOCKUP in out:
        # Seen in smp-memory-cmdline (4 vCPUs on the test host's 2) on
        # 2026-12-05: the test host's kernel (under QEMU TCG) reported a
        # kworker stuck for tens of seconds from the moment the guest
        # started, and the run hung until killed.
        return 'the nested test host\'s own kernel locked up (soft lockup under QEMU TCG)'
    if 'HANG: all' in out and 'vCPUs blocked in KVM' in out:
        # skiff outlived its time with every vCPU thread halted in KVM
        # (host-tests.sh's hang report): the guest waits for an interrupt
        # KVM never delivered. Seen on 2026-12-05 with 4 vCPUs on the test
        # host's 2 CPUs: the Debian guest's SMP bring-up (the boot CPU
        # waiting for an AP that had gone idle) and, in one CI run, the
        # smp test guest; skiff plays no part in either (the LAPICs and
        # the IPIs are KVM's). Under single-threaded TCG the hang is
        # reproducible, and QEMU 7.2 (-enable-kvm, microvm, 4 vCPUs, the
        # same kernel) hangs the same way there: 1 of 1 runs, skiff 5 of 5.
        # A vCPU thread stuck anywhere else (skiff's own deadlock) is not
        # retried.
        return 'every vCPU of the guest waits in KVM for an interrupt that did not come'
    if 'triple fault (KVM_EXIT_SHUTDOWN)' in out:
        # Known intermittent problem (issue 3): under QEMU TCG's SVM the
        # Debian kernel sometimes triple-faults at a random point of its
        # early boot (seen at 3-6 s, on any vCPU).
        return 'the guest triple-faulted in the nested host (known intermittent, issue 3)'
    return None


def last_run_log(assets, case):
    logpath = os.path.join(os.path.dirname(assets), 'nested-logs',
                           case + os.environ.get('SKIFF_EXTRA', '') + '.log')
    try:
        return open(logpath, errors='replace').read()
    except OSError:
        return ''


if __name__ == '__main__':
    sys.exit(main())
