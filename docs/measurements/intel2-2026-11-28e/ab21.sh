#!/bin/bash
# 1x2 (new) vs 2x1 new vs 2x1 old (/tmp/base); B, STEPS, ROUNDS, EXTRA
cd /work/main
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
B=${B:-256}; LAYERS=${LAYERS:-784,1024,1024,10}; STEPS=${STEPS:-200}
for round in $(seq ${ROUNDS:-4}); do
for v in ${VARIANTS:-1x2 new old}; do
  case $v in 1x2) L="1 2"; bin=build/dptrain;; new) L="2 1"; bin=build/dptrain;; old) L="2 1"; bin=/tmp/base/build/dptrain;; esac
  tools/launch.sh $L $bin train --data data/fashion-mnist.h5 --layers $LAYERS --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch $B --epochs 1 --max-steps $STEPS --quiet --metrics /tmp/pm.jsonl ${EXTRA:-} </dev/null >/dev/null
  python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/pm.jsonl')][-1]; t=e['time']
print('$round $v %.0f ' % e['samples_per_s'] + ' '.join('%s %.3f' % (k[:3], t[k]['mean']) for k in ['compute','forward_products','weight_gradients','input_gradients','allreduce','update']))"
done; done
