#!/bin/sh
# Longer fuzzing runs: builds the libFuzzer targets (clang, ASan+UBSan) in
# build-fuzz if needed and runs each named target (default: all) for
# SECONDS or for a number of inputs.
#
#   scripts/fuzz.sh [--seconds N | --runs N] [--keep DIR] [TARGET...]
#
# Targets: virtq blk net pci control migration loader (fuzz/fuzz_*.c).
# A crash or sanitizer report leaves its input in build-fuzz/fuzz-artifacts/
# TARGET/ (the run's log in TARGET.log) and makes the script fail. --keep DIR keeps each grown corpus in
# DIR/TARGET (to merge into fuzz/corpus with the target's -merge=1).
# CI runs every target for fuzz_seconds (meson test -C build-fuzz --suite fuzz).
set -eu
cd "$(dirname "$0")/.."
budget=600
keep=
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) budget=$2; shift 2 ;;
	--runs) budget=runs=$2; shift 2 ;;
	--keep) keep=$2; shift 2 ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) break ;;
	esac
done
targets=${*:-virtq blk net pci control migration loader}
if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true
fi
ninja -C build-fuzz
status=0
for t in $targets; do
	if [ ! -x "build-fuzz/fuzz/fuzz_$t" ]; then
		echo "no fuzz target $t" >&2
		status=1
		continue
	fi
	log=build-fuzz/fuzz-artifacts/$t.log
	mkdir -p build-fuzz/fuzz-artifacts
	python3 fuzz/run.py "build-fuzz/fuzz/fuzz_$t" "fuzz/corpus/$t" "$budget" \
		"build-fuzz/fuzz-artifacts/$t" ${keep:+"$keep/$t"} >"$log" 2>&1 || status=1
	tail -2 "$log"
done
exit $status
