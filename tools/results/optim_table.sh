#!/bin/bash
# The README's optimiser table: Fashion-MNIST [784,100,10], ReLU hidden units,
# softmax output, cross-entropy, mini-batch 32, 10 epochs, each optimiser at
# sensible settings (He initialisation), one process x OMP_NUM_THREADS threads.
# Prints a Markdown table: test accuracy after 10 epochs, best epoch, wall time
# per epoch. Metrics files go to runs/optim-*.jsonl.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DPTRAIN=${DPTRAIN:-$ROOT/build/dptrain}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$ROOT/runs"
COMMON=(--data "$ROOT/data/fashion-mnist.h5" --layers 784,100,10 --hidden relu --output softmax --cost cce
        --init he --batch 32 --epochs 10 --quiet)
SETTINGS=(
  "sgd|--optimizer sgd --lr 0.1"
  "momentum|--optimizer momentum --lr 0.01 --momentum 0.9"
  "nesterov|--optimizer nesterov --lr 0.01 --momentum 0.9"
  "adagrad|--optimizer adagrad --lr 0.05"
  "rmsprop|--optimizer rmsprop --lr 0.001 --decay 0.9"
  "adam|--optimizer adam --lr 0.001"
  "nadam|--optimizer nadam --lr 0.002"
)
echo "| optimiser | settings | test accuracy (10 epochs) | best (epoch) | test loss | s/epoch |"
echo "|---|---|---:|---:|---:|---:|"
for s in "${SETTINGS[@]}"; do
    name=${s%%|*}
    args=${s#*|}
    m="$ROOT/runs/optim-$name.jsonl"
    # shellcheck disable=SC2086
    "$DPTRAIN" train "${COMMON[@]}" $args --metrics "$m"
    awk -v name="$name" -v args="${args#--optimizer $name }" '
      { match($0, /"test_acc":[0-9.]+/); a = substr($0, RSTART + 11, RLENGTH - 11) + 0
        match($0, /"test_loss":[0-9.]+/); l = substr($0, RSTART + 12, RLENGTH - 12) + 0
        match($0, /"epoch_s":[0-9.]+/); t += substr($0, RSTART + 10, RLENGTH - 10)
        if (a > best) { best = a; be = NR } last = a; ll = l }
      END { printf "| %s | `%s` | %.4f | %.4f (%d) | %.4f | %.2f |\n", name, args, last, best, be, ll, t / NR }' "$m"
done
