#!/bin/bash
# Interleaved A/B, ROUNDS rounds: "old" = /tmp/base/build/dptrain (a worktree of the build before), "new" =
# build/dptrain, on data/fashion-mnist.h5; CFGS items ranks:threads:batch:layers:steps; OPT, LR the optimiser.
# Prints samples/s, forward products us/step, the update us/step (the earlier logs of this directory:
# input gradients in ab-igrad-*, none in ab-pack-*/ab-cols*), compute us/step, the last train_loss.
# Note: mpirun -np 1 --bind-to core puts all of a rank's threads on one core (T=2 rows are not 1 x 2).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
D=$(cd "$(dirname "$0")/../../.." && pwd)/data/fashion-mnist.h5
run() { # bin np threads batch layers steps
  local bin=$1 np=$2 th=$3 b=$4 L=$5 S=$6 m=$(mktemp)
  OMP_NUM_THREADS=$th mpirun -np $np --bind-to core -x OMP_NUM_THREADS $bin train --data $D --layers $L --batch $b --lr ${LR:-0.1} --optimizer ${OPT:-sgd} --epochs 1 --max-steps $S --quiet --metrics $m >/dev/null 2>&1
  python3 -c "
import json; e=[json.loads(l) for l in open('$m')][-1]; s=e['step']; t=e['time']
print('%d %.1f %.1f %.1f %.6f' % (e['samples_per_s'], 1e6*t['forward_products']['mean']/s, 1e6*t['update']['mean']/s, 1e6*t['compute']['mean']/s, e['train_loss']))"
}
for r in $(seq ${ROUNDS:-3}); do
  for cfg in ${CFGS:-2:1:10:784,100,10:3000}; do
    IFS=: read -r a1 a2 a3 a4 a5 <<<"$cfg"; set -- $a1 $a2 $a3 $a4 $a5
    for v in old new; do
      bin=$(cd "$(dirname "$0")/../../.." && pwd)/build/dptrain; [ $v = old ] && bin=/tmp/base/build/dptrain
      echo "$r $v np=$1 T=$2 b=$3 L=$4: $(run $bin $1 $2 $3 $4 $5)"
    done
  done
done
