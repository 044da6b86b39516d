#!/bin/bash
# Data-parallel equivalence on Fashion-MNIST [784,100,10] at one global batch:
# the same run on P = 1, 2 and 4 ranks (4 is oversubscribed on a 2-core
# machine), in the default mode (test accuracy per P) and in deterministic mode
# (the saved models compared bit for bit with dptrain compare). Prints a Markdown table.
# Usage: tools/results/dp_equivalence.sh [extra dptrain options]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DPTRAIN=${DPTRAIN:-$ROOT/build/dptrain}
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OUT=$ROOT/runs/equivalence
mkdir -p "$OUT"
ARGS=(--data "$ROOT/data/fashion-mnist.h5" --layers 784,100,10 --hidden sigmoid --output softmax --cost cce
      --optimizer momentum --momentum 0.9 --lr 0.05 --batch 60 --epochs 5 --quiet "$@")
echo "| P | mode | test accuracy | test loss | samples/s | model identical to P = 1 |"
echo "|---:|---|---:|---:|---:|---|"
for mode in default deterministic; do
    extra=()
    [ "$mode" = deterministic ] && extra=(--deterministic)
    for P in 1 2 4; do
        m="$OUT/$mode-$P.jsonl"
        "$ROOT/tools/launch.sh" "$P" 1 "$DPTRAIN" train "${ARGS[@]}" "${extra[@]}" --metrics "$m" --save "$OUT/$mode-$P.h5" </dev/null
        same="-"
        if [ "$P" -gt 1 ]; then
            if "$DPTRAIN" compare "$OUT/$mode-1.h5" "$OUT/$mode-$P.h5" >/dev/null 2>&1; then same="bitwise"; else same="no"; fi
        fi
        tail -1 "$m" | awk -v P="$P" -v mode="$mode" -v same="$same" '
          { match($0, /"test_acc":[0-9.]+/); a = substr($0, RSTART + 11, RLENGTH - 11)
            match($0, /"test_loss":[0-9.]+/); l = substr($0, RSTART + 12, RLENGTH - 12)
            match($0, /"samples_per_s":[0-9.]+/); s = substr($0, RSTART + 16, RLENGTH - 16)
            printf "| %d | %s | %.4f | %.4f | %.0f | %s |\n", P, mode, a, l, s, same }'
    done
done
