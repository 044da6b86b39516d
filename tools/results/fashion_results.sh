#!/bin/bash
# The README's results table for the foundation: Fashion-MNIST, [784,100,10],
# sigmoid hidden units, mini-batch 10, 10 epochs, on 2 MPI ranks; softmax
# output with cross-entropy against sigmoid outputs with the quadratic cost.
# Prints a Markdown table; metrics files go to runs/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DPTRAIN=${DPTRAIN:-$ROOT/build/dptrain}
NP=${NP:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$ROOT/runs"
COMMON=(--data "$ROOT/data/fashion-mnist.h5" --layers 784,100,10 --hidden sigmoid --batch 10 --epochs 10 --quiet)
declare -A ARGS=(
  [softmax-cce]="--output softmax --cost cce --lr 0.1"
  [sigmoid-mse]="--output sigmoid --cost mse --lr 1.0"
)
echo "| output, cost | eta | test accuracy, epoch 1 | epoch 5 | epoch 10 | best (epoch) | samples/s | command |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
for name in softmax-cce sigmoid-mse; do
    m="$ROOT/runs/fashion-$name.jsonl"
    # shellcheck disable=SC2086
    "$ROOT/tools/launch.sh" "$NP" "$OMP_NUM_THREADS" "$DPTRAIN" train "${COMMON[@]}" ${ARGS[$name]} --metrics "$m" </dev/null
    awk -v name="$name" -v args="${ARGS[$name]}" -v np="$NP" '
      { match($0, /"test_acc":[0-9.]+/); a = substr($0, RSTART + 11, RLENGTH - 11) + 0
        match($0, /"samples_per_s":[0-9.]+/); s = substr($0, RSTART + 16, RLENGTH - 16) + 0
        acc[NR] = a; sps += s; if (a > best) { best = a; be = NR } }
      END { split(args, w, " "); printf "| %s | %s | %.4f | %.4f | %.4f | %.4f (%d) | %.0f | `mpirun -np %s dptrain train --layers 784,100,10 --hidden sigmoid --batch 10 --epochs 10 %s` |\n",
            name, w[6], acc[1], acc[5], acc[10], best, be, sps / NR, np, args }' "$m"
done
