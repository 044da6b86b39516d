#!/bin/bash
# The README's scaling study on this machine (2 cores): strong scaling of
# [784,1024,1024,10] at a global batch of 512 on 1 rank x 1 and 2 threads,
# 2 ranks x 1 thread, and 4 ranks x 1 thread (oversubscribed: labelled), then
# 1 and 2 namespaced hosts over TCP, with and without a 1 Gbit/s limit
# (tools/ci/netns.sh; needs root). Tables and plots in runs/scaling/*/;
# the local plot is copied to docs/figures/scaling.png.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$ROOT/runs/scaling
rm -rf "$OUT/local" "$OUT/netns" "$OUT/netns-1gbit"
"$ROOT/tools/scaling/scaling.py" run "$OUT/local" --layouts 1x1x1,1x1x2,1x2x1,1x4x1 -- \
    --data "$ROOT/data/fashion-mnist.h5" --layers 784,1024,1024,10 --hidden relu --batch 512 --epochs 1 \
    --max-steps 40
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
    "$ROOT/tools/launch.sh" 2 1 "$ROOT/build/bench_allreduce" 100 </dev/null > "$OUT/local/allreduce.json"
"$ROOT/tools/scaling/scaling.py" report "$OUT/local" --label "[784,1024,1024,10], batch 512, one 2-core machine (4 ranks oversubscribed)" \
    --bytes $((4 * (1863690 + 8))) --fit-ranks 2 --allreduce-bench "$OUT/local/allreduce.json"
cp "$OUT/local/scaling.png" "$ROOT/docs/figures/scaling.png"
SCALING_DIR=$OUT/netns "$ROOT/tools/ci/netns.sh" 2
"$ROOT/tools/scaling/scaling.py" report "$OUT/netns" --label "[16,512,512,4], batch 128, namespaced hosts over veth (TCP)" \
    --bytes $((4 * (273412 + 8))) --allreduce-bench "$OUT/netns/allreduce.json"
"$ROOT/tools/scaling/scaling.py" report "$OUT/netns-1gbit" --label "the same behind a 1 Gbit/s tbf limit" \
    --bytes $((4 * (273412 + 8))) --allreduce-bench "$OUT/netns-1gbit/allreduce.json"
