#!/usr/bin/env python3
"""Extracts the ELF vmlinux from an x86 bzImage.

The Linux boot protocol (Documentation/x86/boot.rst) gives the compressed
payload's place exactly: setup_sects at 0x1f1 says where the protected-mode
part starts, and payload_offset/payload_length (0x248/0x24c, protocol 2.08+)
locate the payload inside it. The payload's magic names the compressor.
Usage: extract-vmlinux.py BZIMAGE OUT
"""
import bz2
import gzip
import lzma
import shutil
import struct
import subprocess
import sys


def decompress(data):
    if data[:2] == b'\x1f\x8b':
        return gzip.decompress(data)
    if data[:6] == b'\xfd7zXZ\x00':
        return lzma.decompress(data, format=lzma.FORMAT_XZ)
    if data[:3] == b'BZh':
        return bz2.decompress(data)
    if data[:3] == b'\x5d\x00\x00':
        return lzma.decompress(data, format=lzma.FORMAT_ALONE)
    for magic, tool in ((b'\x02\x21\x4c\x18', 'lz4'), (b'\x28\xb5\x2f\xfd', 'zstd')):
        if data[:4] == magic:
            if not shutil.which(tool):
                sys.exit(f'extract-vmlinux: the payload is {tool}-compressed; install {tool}')
            # Both tools stop at the end of their frames; the kernel's
            # trailing 4-byte size is ignored (lz4) or must be cut (zstd).
            r = subprocess.run([tool, '-dc'], input=data, capture_output=True)
            if r.stdout[:4] == b'\x7fELF':
                return r.stdout
            sys.exit(f'extract-vmlinux: {tool} failed: {r.stderr.decode(errors="replace")}')
    sys.exit(f'extract-vmlinux: unknown payload compression (magic {data[:4].hex()})')


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    img = open(sys.argv[1], 'rb').read()
    if len(img) < 0x250 or img[0x202:0x206] != b'HdrS':
        sys.exit('extract-vmlinux: not a bzImage (no HdrS setup header)')
    version = struct.unpack_from('<H', img, 0x206)[0]
    if version < 0x208:
        sys.exit(f'extract-vmlinux: boot protocol {version >> 8}.{version & 0xff} has no payload fields')
    setup_sects = img[0x1f1] or 4
    pm_start = (setup_sects + 1) * 512
    off, length = struct.unpack_from('<II', img, 0x248)
    start = pm_start + off
    if start + length > len(img):
        sys.exit('extract-vmlinux: payload lies outside the file (truncated bzImage?)')
    elf = decompress(img[start:start + length])
    if elf[:4] != b'\x7fELF':
        sys.exit('extract-vmlinux: the payload is not an ELF file')
    with open(sys.argv[2], 'wb') as f:
        f.write(elf)


if __name__ == '__main__':
    main()
