#!/bin/bash
# Interleaved A/B of one rank x T threads, the order swapped every round: "old" = /tmp/base/build/dptrain
# (a worktree of the build before), "new" = build/dptrain; CFGS items threads:batch:layers:steps.
# Each run between two readings of build/core_latency (ns: about 50-65 with the VM's two cores sharing
# a cache, 320-360 with them apart). Prints round, variant, config, samples/s, rt before/after, the
# weight gradients / forward / input gradients / update in us a step, the last loss.
cd "$(dirname "$0")/../../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rt() { build/core_latency | sed 's/.*round trip \([0-9]*\) ns.*/\1/'; }
for r in $(seq ${ROUNDS:-3}); do
  for cfg in ${CFGS:-2:10:784,1024,1024,10:600}; do
    IFS=: read -r T b L S <<<"$cfg"
    order="old new"; [ $((r % 2)) = 0 ] && order="new old"
    for v in $order; do
      bin=build/dptrain; [ $v = old ] && bin=/tmp/base/build/dptrain
      a=$(rt)
      tools/launch.sh 1 $T $bin train --data data/fashion-mnist.h5 --layers $L --hidden relu --output softmax --cost cce --optimizer ${OPT:-momentum} --lr 0.01 --batch $b --epochs 1 --max-steps $S --quiet --metrics /tmp/abu.jsonl ${EXTRA:-} </dev/null >/dev/null
      z=$(rt)
      python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/abu.jsonl')][-1]; t=e['time']; s=e['step']
print('$r $v T=$T b=$b $L %.0f rt $a $z ' % e['samples_per_s'] + ' '.join('%s %.1f' % (k[:3], 1e6*t[k]['mean']/s) for k in ['weight_gradients','forward_products','input_gradients','update']) + ' loss %.6f' % e['train_loss'])"
    done
  done
done
