#!/bin/bash
# The cost of --trace: Fashion-MNIST [784,100,10], batch 10, one epoch on one
# process, without a trace and with a trace of every step (loss and per-layer
# gradient norms), alternating, 3 times each; prints the median samples/s and
# the ratio.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
run() {
    "$ROOT/build/dptrain" train --data "$ROOT/data/fashion-mnist.h5" --layers 784,100,10 --batch 10 --epochs 1 \
        --quiet --metrics "$T/m.jsonl" "$@"
    grep -o '"samples_per_s":[0-9.]*' "$T/m.jsonl" | cut -d: -f2
}
plain=() traced=() thinned=()
for _ in 1 2 3; do
    plain+=("$(run)")
    traced+=("$(run --trace "$T/t.h5")")
    thinned+=("$(run --trace "$T/t.h5" --trace-every 10)")
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
p=$(median "${plain[@]}")
t=$(median "${traced[@]}")
e=$(median "${thinned[@]}")
awk -v p="$p" -v t="$t" -v e="$e" 'BEGIN { printf "no trace %.0f samples/s; --trace every step %.0f (ratio %.3f); --trace-every 10 %.0f (ratio %.3f)\n", p, t, t / p, e, e / p }'
