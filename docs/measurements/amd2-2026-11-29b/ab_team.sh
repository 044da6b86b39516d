#!/bin/bash
# Threads as ranks at 1 rank x 2 threads, [784,1024,1024,10], momentum, batch BS (128 256), 25,600
# samples a run, one binary (build/dptrain), VARIANTS rotated each round: team0 (DPT_TEAM=0, the
# default below 4 threads), team1 (DPT_TEAM=1: the update packs W's copies from the rows it updates),
# team1flat (DPT_TEAM=1 DPT_UPDATE_UNITS=0: the update split flat, the copies packed in a pass after
# it). Each run between two readings of build/core_latency (ns). Prints samples/s, compute, products
# and update in us a step, the last loss.
cd "$(dirname "$0")/../../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rt() { build/core_latency | sed 's/.*round trip \([0-9]*\) ns.*/\1/'; }
V=(${VARIANTS:-team0 team1 team1flat})
for r in $(seq ${ROUNDS:-3}); do for b in ${BS:-128 256}; do
  for i in $(seq 0 $((${#V[@]} - 1))); do
    v=${V[$(( (i + r) % ${#V[@]} ))]}
    team=1; units=1; [ $v = team0 ] && team=0; [ $v = team1flat ] && units=0
    a=$(rt)
    DPT_TEAM=$team DPT_UPDATE_UNITS=$units tools/launch.sh 1 2 build/dptrain train --data data/fashion-mnist.h5 --layers 784,1024,1024,10 --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch $b --epochs 1 --max-steps $((25600 / b)) --quiet --metrics /tmp/abt.jsonl </dev/null >/dev/null
    z=$(rt)
    python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/abt.jsonl')][-1]; t=e['time']; s=e['step']
print('$r $v b=$b %.0f rt $a $z ' % e['samples_per_s'] + ' '.join('%s %.1f' % (k[:3], 1e6*t[k]['mean']/s) for k in ['compute','weight_gradients','forward_products','input_gradients','update']) + ' loss %.6f' % e['train_loss'])"
  done
done; done
