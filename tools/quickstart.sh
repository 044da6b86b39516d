#!/bin/bash
# The main job, from a fresh Debian 12 machine: install what is missing, build,
# make data/fashion-mnist.h5, and train [784,100,10] (sigmoid hidden units,
# softmax output, cross-entropy, mini-batch 10) on 2 MPI ranks for 10 epochs.
# Extra arguments are passed to `dptrain train` (e.g. --epochs 2).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/tools/setup.sh"
"$ROOT/data/make-fashion-mnist.sh" "$ROOT/build/dptrain"
mkdir -p "$ROOT/runs"
exec "$ROOT/tools/launch.sh" 2 "${OMP_NUM_THREADS:-1}" "$ROOT/build/dptrain" train \
    --data "$ROOT/data/fashion-mnist.h5" --layers 784,100,10 \
    --hidden sigmoid --output softmax --cost cce --optimizer sgd --lr 0.1 --batch 10 --epochs 10 \
    --metrics "$ROOT/runs/quickstart.jsonl" --save "$ROOT/runs/quickstart-model.h5" "$@"
