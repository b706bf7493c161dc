#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_migration (fuzz/corpus/migration/).

Usage: make_migration_seeds.py BUILD_DIR   (a -Dfuzz=true build, e.g. build-fuzz)

- valid-power-on, valid-full: written by the target itself
  (SKIFF_FUZZ_WRITE_SEED), i.e. by skiff's own source-side save functions
  for the target's VM, so they follow the format wherever it goes.
- crc-checked: valid-full with header flag bit 31, which tells the target
  not to recompute the records' CRC32C: mutations of it exercise the
  loader's checksum check (the loader ignores the bit).
- regress-*: inputs of fixed bugs, re-framed so that they still reach the
  code they are about: the header's channel count is cleared (a file has
  one channel: the loader refuses more before it reads a record), a
  non-empty CONFIG record is replaced by the current one (the target's VM
  changes now and then, and a stream refused at CONFIG would stop there),
  checksums are recomputed; every other byte is kept.
"""
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "migration")
MAGIC = b"SKIFFMIG"
REC_CONFIG = 1
CHANNEL_BITS = 0xFF00  # header flags bits 8-15: channels - 1


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC32C (Castagnoli, reflected), as mig_crc32c computes it."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def parse(blob):
    """(flags, [(type, payload)], trailing bytes) of a stream."""
    if blob[:8] != MAGIC or len(blob) < 16:
        raise ValueError("not a migration stream")
    flags = struct.unpack_from("<I", blob, 12)[0]
    recs, off = [], 16
    while len(blob) - off >= 12:
        rtype, n = struct.unpack_from("<II", blob, off)
        if n > len(blob) - off - 12:
            break
        recs.append((rtype, blob[off + 8:off + 8 + n]))
        off += 12 + n
    return flags, recs, blob[off:]


def build(flags, recs, tail=b""):
    out = bytearray(MAGIC + struct.pack("<II", 1, flags))
    for rtype, payload in recs:
        head = struct.pack("<II", rtype, len(payload))
        out += head + payload + struct.pack("<I", crc32c(head + payload))
    return bytes(out + tail)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    exe = os.path.join(sys.argv[1], "fuzz", "fuzz_migration")
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SKIFF_FUZZ_WRITE_SEED=tmp)
        subprocess.run([exe], env=env, check=True)
        made = {n: open(os.path.join(tmp, n), "rb").read() for n in os.listdir(tmp)}
    for name, blob in made.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)
    flags, recs, _ = parse(made["valid-full"])
    config = next(p for t, p in recs if t == REC_CONFIG)
    with open(os.path.join(OUT, "crc-checked"), "wb") as f:
        f.write(build(flags | 1 << 31, recs))
    for name in sorted(os.listdir(OUT)):
        if not name.startswith("regress-"):
            continue
        path = os.path.join(OUT, name)
        old_flags, old_recs, tail = parse(open(path, "rb").read())
        new = [(t, config if t == REC_CONFIG and p else p) for t, p in old_recs]
        with open(path, "wb") as f:
            f.write(build(old_flags & ~CHANNEL_BITS, new, tail))
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
