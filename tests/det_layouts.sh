#!/bin/bash
# --deterministic end to end, on a net large enough that the products run
# their parallel and small-batch paths: the model after training is the same,
# bit for bit, on 1-4 ranks x 1-4 threads (OpenMP teams of 3 and 4 included),
# with the default update (each rank turns its own slice of the reduced sums
# back into floats) and with clipping and weight decay (every rank needs all
# of them). Batch 40 in blocks of 8: one rank takes 40 rows (packed
# products), four ranks 8-16 rows each (W read in place where the CPU has
# AVX2); 3 and 4 threads also working as ranks.
# Usage: det_layouts.sh DPTRAIN MPIEXEC
set -u
DPTRAIN=$1
MPIEXEC=${2:-mpiexec}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"
make_dataset "$T" 400
BASE=(--data "$T/d.h5" --layers 20,384,256,4 --batch 40 --epochs 2 --deterministic --quiet --seed 3)
CONFIGS=("--optimizer momentum --lr 0.05"
         "--optimizer adam --lr 0.002 --clip-norm 0.5 --weight-decay 0.01")
# "+team": the threads working as ranks (DPT_TEAM=1; this net is below the
# size where that is the default)
LAYOUTS="1x1 1x3 1x4 2x2 3x1 4x1 2x3 1x3+team 1x4+team"
for c in 0 1; do
    read -r -a OPTS <<<"${CONFIGS[$c]}"
    for L in $LAYOUTS; do
        TEAM=0
        [ "${L%+team}" != "$L" ] && TEAM=1
        P=${L%x*} TH=${L#*x} TH=${TH%+team}
        if ! DPT_TEAM=$TEAM OMP_NUM_THREADS=$TH "$MPIEXEC" --oversubscribe --bind-to none -x OMP_NUM_THREADS -x DPT_TEAM -n "$P" \
                "$DPTRAIN" train "${BASE[@]}" "${OPTS[@]}" --save "$T/m$c-$L.h5" </dev/null >"$T/out" 2>&1; then
            bad "config $c, $L: training failed: $(tail -2 "$T/out")"
            continue
        fi
        [ "$L" = 1x1 ] && continue
        if "$DPTRAIN" compare "$T/m$c-1x1.h5" "$T/m$c-$L.h5" >"$T/cmp" 2>&1; then
            ok "config $c (${CONFIGS[$c]}): $P ranks x $TH threads$([ $TEAM = 1 ] && echo ' (as ranks)') = 1 x 1, bitwise"
        else
            bad "config $c, $L differs from 1 x 1: $(cat "$T/cmp")"
        fi
    done
done
# The test can fail: another seed gives another model.
"$DPTRAIN" train "${BASE[@]}" --seed 4 --save "$T/other.h5" </dev/null >/dev/null 2>&1
if ! "$DPTRAIN" compare "$T/m0-1x1.h5" "$T/other.h5" >/dev/null 2>&1; then
    ok "another seed gives another model (the comparison can fail)"
else
    bad "another seed gave the same model"
fi
finish
