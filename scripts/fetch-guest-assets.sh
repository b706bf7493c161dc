#!/usr/bin/env bash
# Fetches the guest assets that the Linux boot tests use, into OUT (default
# build/guest-assets):
#   bzImage        the Debian 12 cloud kernel (linux-image-cloud-amd64's current version)
#   vmlinux        the ELF kernel extracted from that bzImage
#   modules/       the kernel's modules tree (for the nested test host: kvm, kvm-amd)
#   initramfs.cpio.gz  busybox-static + the kernel's virtio modules (depmod'ed) + tests/nested/guest-init
#   version        the kernel package version
# Only the Debian archive is contacted (apt-get download). A complete OUT for
# the current version is reused. Exit status: 0 ok, 3 cannot download (no
# network / no apt), 1 anything else.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
out=${1:-$src/build/guest-assets}
busybox=${BUSYBOX:-/bin/busybox}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

die() { echo "fetch-guest-assets: $*" >&2; exit 1; }

command -v apt-get >/dev/null || { echo "fetch-guest-assets: no apt-get" >&2; exit 3; }
file "$busybox" 2>/dev/null | grep -q 'statically linked' || [ -x "$busybox" ] ||
	die "$busybox missing: apt-get install busybox-static"

# Resolve the current version from the meta-package's dependency. A cached
# complete set is reused when the archive cannot be reached.

if ! (cd "$work" && apt-get download -q linux-image-cloud-amd64 >/dev/null 2>&1); then
	if [ -f "$out/complete" ]; then
		echo "fetch-guest-assets: archive unreachable, using cached $(cat "$out/version")" >&2
		exit 0
	fi
	echo "fetch-guest-assets: cannot download linux-image-cloud-amd64 (no network?)" >&2
	exit 3
fi
meta=$(ls "$work"/linux-image-cloud-amd64_*.deb)
dep=$(dpkg-deb -f "$meta" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1)
[ -n "$dep" ] || die "cannot find the kernel package in $(basename "$meta")'s Depends"
version="$dep $(dpkg-deb -f "$meta" Version)"
if [ -f "$out/complete" ] && [ "$(cat "$out/version")" = "$version" ] &&
   [ "$(cat "$out/init.sum" 2>/dev/null)" = "$(sha256sum < "$src/tests/nested/guest-init")" ]; then
	rm -rf "$work"
	exit 0
fi
rm -f "$out/complete"
(cd "$work" && apt-get download -q "$dep" >/dev/null 2>&1) || { echo "fetch-guest-assets: cannot download $dep" >&2; exit 3; }
dpkg-deb -x "$work/$dep"_*.deb "$work/root"
kver=${dep#linux-image-}
cp "$work/root/boot/vmlinuz-$kver" "$out/bzImage"
python3 "$here/extract-vmlinux.py" "$out/bzImage" "$out/vmlinux"
rm -rf "$out/modules"
mkdir -p "$out/modules/lib/modules"
mv "$work/root/lib/modules/$kver" "$out/modules/lib/modules/"
echo "$kver" > "$out/kver"

# The guest's initramfs: busybox, the virtio modules and their dependencies,
# the ACPI power button driver, and the test /init.
ird="$work/initramfs"
mkdir -p "$ird"/{bin,dev,proc,sys,etc,lib/modules/"$kver"}
cp "$busybox" "$ird/bin/busybox"
ln -s busybox "$ird/bin/sh"
cp "$src/tests/nested/guest-init" "$ird/init"
chmod 755 "$ird/init"
mods="$out/modules/lib/modules/$kver"
(cd "$mods" && find kernel -name '*.ko' \( -path '*virtio*' -o -name 'failover.ko' -o -name 'net_failover.ko' \
	-o -name 'button.ko' -o -name 'evdev.ko' \)) | while read -r m; do
	mkdir -p "$ird/lib/modules/$kver/$(dirname "$m")"
	cp "$mods/$m" "$ird/lib/modules/$kver/$m"
done
cp "$mods"/modules.order "$mods"/modules.builtin "$ird/lib/modules/$kver/" 2>/dev/null || true
"$busybox" depmod -b "$ird" "$kver"
(cd "$ird" && find . | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$out/initramfs.cpio.gz"

echo "$version" > "$out/version"
sha256sum < "$src/tests/nested/guest-init" > "$out/init.sum"
rm -rf "$work"
touch "$out/complete"
echo "fetch-guest-assets: $version in $out"
