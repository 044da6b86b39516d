#!/bin/bash
# Inputs on which HDF5 1.10 itself crashes (tests/fuzz/regressions/hdf5-library,
# found by fuzz_hdf5; nothing we can check before the library trusts them):
# the replay binary, with dptrain's crash net installed as in dptrain, must
# end each in status 3 and the one line naming the input, never a signal.
# Usage: library_crashes.sh REPLAY_HDF5 DIR
set -u
REPLAY=$1
DIR=$2
. "$(dirname "$0")/../lib.sh"
for f in "$DIR"/*; do
    out=$(timeout 60 "$REPLAY" "$f" 2>&1 >/dev/null)
    rc=$?
    lines=$(printf '%s\n' "$out" | grep -c '^dptrain: error: ')
    if [ "$rc" -eq 3 ] && [ "$lines" -eq 1 ] && grep -q "damaged file: the HDF5 library crashed reading it" <<<"$out"; then
        ok "$(basename "$f"): status 3, one line"
    else
        bad "$(basename "$f"): status $rc, $lines error line(s): $out"
    fi
done
finish && [ "$pass" -gt 0 ]
