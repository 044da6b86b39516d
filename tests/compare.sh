#!/bin/bash
# dptrain compare: the same file, bitwise; two runs on 1 and 2 ranks in the
# default mode: with the node-sliced weight gradient (the default from 2
# ranks) bitwise, with each rank's gradient summed (DPT_SLICED=0) they
# differ bitwise and are
# the same within a tolerance, named where; in deterministic mode (bitwise);
# threads as ranks (DPT_TEAM=1) against threads sharing each product
# (bitwise; W's copies packed in the update or after it); other layers (differ); a missing file.
# Usage: compare.sh DPTRAIN MPIEXEC
set -u
DPTRAIN=$1
MPIEXEC=${2:-mpiexec}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"
make_dataset "$T" 600
A=(--data "$T/d.h5" --layers 20,16,4 --batch 30 --epochs 2 --quiet)
for np in 1 2; do
    "$MPIEXEC" --oversubscribe -n $np "$DPTRAIN" train "${A[@]}" --save "$T/p$np.h5" </dev/null
    "$MPIEXEC" --oversubscribe -n $np "$DPTRAIN" train "${A[@]}" --deterministic --save "$T/d$np.h5" </dev/null
done
DPT_SLICED=0 "$MPIEXEC" --oversubscribe -n 2 "$DPTRAIN" train "${A[@]}" --save "$T/s2.h5" </dev/null
"$DPTRAIN" train "${A[@]}" --layers 20,8,4 --save "$T/other.h5" </dev/null
# Threads as ranks (DPT_TEAM=1): the bits of the threads sharing each
# product, on 2 and 3 threads, in one pass and in three (batch 1100: passes
# of 512, 512, 76 rows), and on 2 ranks x 2 threads (each rank's gradient
# summed, DPT_SLICED=0, with overlap's buckets);
# in deterministic mode the bits of one thread (sums stored as floats at
# batch 30, as int64 at 1100).
mkdir -p "$T/big" && make_dataset "$T/big" 2300
B=(--data "$T/big/d.h5" --layers 20,16,4 --batch 1100 --epochs 2 --quiet)
for th in 2 3; do
    for team in 0 1; do
        DPT_TEAM=$team OMP_NUM_THREADS=$th "$DPTRAIN" train "${A[@]}" --save "$T/t$th-$team.h5" </dev/null 2>/dev/null
        DPT_TEAM=$team OMP_NUM_THREADS=$th "$DPTRAIN" train "${B[@]}" --save "$T/b$th-$team.h5" </dev/null 2>/dev/null
        DPT_TEAM=$team OMP_NUM_THREADS=$th "$DPTRAIN" train "${A[@]}" --deterministic --save "$T/dt$th-$team.h5" </dev/null 2>/dev/null
        DPT_TEAM=$team OMP_NUM_THREADS=$th "$DPTRAIN" train "${B[@]}" --deterministic --save "$T/db$th-$team.h5" </dev/null 2>/dev/null
    done
done
# A net of more than 65,536 parameters, whose update runs on both threads,
# each packing the copies of W from the rows it updates (DPT_UPDATE_UNITS=0:
# a pass after the update instead), with momentum
W=(--data "$T/big/d.h5" --layers 20,4000,4 --batch 1100 --epochs 2 --optimizer momentum --quiet)
for team in 0 1; do
    DPT_TEAM=$team OMP_NUM_THREADS=2 "$DPTRAIN" train "${W[@]}" --save "$T/w-$team.h5" </dev/null 2>/dev/null
done
DPT_UPDATE_UNITS=0 DPT_TEAM=1 OMP_NUM_THREADS=2 "$DPTRAIN" train "${W[@]}" --save "$T/w-flat.h5" </dev/null 2>/dev/null
for team in 0 1; do
    DPT_SLICED=0 DPT_TEAM=$team OMP_NUM_THREADS=2 "$MPIEXEC" --oversubscribe --bind-to none -n 2 -x DPT_SLICED -x DPT_TEAM -x OMP_NUM_THREADS \
        "$DPTRAIN" train "${A[@]}" --save "$T/r2-$team.h5" </dev/null 2>/dev/null
done
expect() {   # status, fragment of the output, command...
    local want=$1 frag=$2 out rc
    shift 2
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want" ] && printf '%s' "$out" | grep -q -- "$frag"; then
        ok "$(printf '%s' "${*:2}" | sed "s|$T/||g"): status $rc, $(printf '%s' "$out" | sed "s|$T/||g" | cut -c1-100)"
    else
        bad "${*:2}: status $rc (expected $want): $out"
    fi
}
expect 0 "the same 404 parameters (bitwise)" "$DPTRAIN" compare "$T/p1.h5" "$T/p1.h5"
expect 0 "(bitwise)" "$DPTRAIN" compare "$T/d1.h5" "$T/d2.h5"
expect 0 "the same 404 parameters (bitwise)" "$DPTRAIN" compare "$T/p1.h5" "$T/p2.h5"
expect 9 "differ in .* of 404 parameters; largest |a - b| = .* at layer [01] " "$DPTRAIN" compare "$T/p1.h5" "$T/s2.h5"
for th in 2 3; do
    expect 0 "the same 404 parameters (bitwise)" "$DPTRAIN" compare "$T/t$th-0.h5" "$T/t$th-1.h5"
    expect 0 "the same 404 parameters (bitwise)" "$DPTRAIN" compare "$T/b$th-0.h5" "$T/b$th-1.h5"
    expect 0 "the same 404 parameters (bitwise)" "$DPTRAIN" compare "$T/dt$th-1.h5" "$T/d1.h5"
    expect 0 "the same 404 parameters (bitwise)" "$DPTRAIN" compare "$T/db$th-0.h5" "$T/db$th-1.h5"
done
expect 0 "the same 404 parameters (bitwise)" "$DPTRAIN" compare "$T/r2-0.h5" "$T/r2-1.h5"
expect 0 "the same 100004 parameters (bitwise)" "$DPTRAIN" compare "$T/w-0.h5" "$T/w-1.h5"
expect 0 "the same 100004 parameters (bitwise)" "$DPTRAIN" compare "$T/w-flat.h5" "$T/w-1.h5"
expect 0 "within the tolerance" "$DPTRAIN" compare "$T/p1.h5" "$T/s2.h5" --rtol 1e-4 --atol 1e-6
expect 9 "differ: layers 20,16,4" "$DPTRAIN" compare "$T/p1.h5" "$T/other.h5"
expect 3 "cannot open" "$DPTRAIN" compare "$T/p1.h5" "$T/missing.h5"
expect 2 "expected a number" "$DPTRAIN" compare "$T/p1.h5" "$T/p2.h5" --rtol x
finish
