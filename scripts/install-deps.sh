#!/usr/bin/env bash
# Installs everything skiff needs to build, test and benchmark on Debian 12:
# compilers and libraries; iasl (ACPI tables); QEMU, busybox-static and cpio
# for the nested test host and the Linux guest assets; fio for bench/blk;
# clang and its libFuzzer runtime for the fuzz targets.
# Needs root (or sudo). Used by scripts/setup.sh and .ci/run.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential meson ninja-build pkg-config python3 \
  linux-libc-dev liburing-dev libseccomp-dev libfdt-dev libjson-c-dev check \
  acpica-tools clang libclang-rt-14-dev \
  qemu-system-x86 busybox-static cpio file gzip lz4 e2fsprogs \
  fio >/dev/null
