#!/bin/bash
# Threads as ranks (DPT_TEAM=1) at 1 x 2, batch 128 and 256: "old" = /tmp/base2/build/dptrain (a worktree of
# 7e088ec, dpt_kern_wpack opening a region of one thread inside the update's), "new" = build/dptrain
# (no region there). Prints samples/s, the round trips, the update's us a step, the last loss.
cd "$(dirname "$0")/../../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rt() { build/core_latency | sed 's/.*round trip \([0-9]*\) ns.*/\1/'; }
for r in $(seq ${ROUNDS:-4}); do for b in 128 256; do
  order="old new"; [ $((r % 2)) = 0 ] && order="new old"
  for v in $order; do
    bin=build/dptrain; [ $v = old ] && bin=/tmp/base2/build/dptrain
    a=$(rt)
    DPT_TEAM=1 tools/launch.sh 1 2 $bin train --data data/fashion-mnist.h5 --layers 784,1024,1024,10 --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch $b --epochs 1 --max-steps $((25600 / b)) --quiet --metrics /tmp/abw.jsonl </dev/null >/dev/null
    z=$(rt)
    python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/abw.jsonl')][-1]; t=e['time']; s=e['step']
print('$r $v b=$b %.0f rt $a $z upd %.1f loss %.6f' % (e['samples_per_s'], 1e6*t['update']['mean']/s, e['train_loss']))"
  done
done; done
