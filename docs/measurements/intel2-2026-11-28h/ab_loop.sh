#!/bin/bash
# Training loop, the build before (BASE, default /tmp/base0/build/dptrain) against
# this one (build/dptrain), interleaved rounds: "RANKSxTHREADS:BATCH" layouts in
# LAYOUTS; prints samples/s and the phase times (s over the run, mean over ranks).
cd "$(dirname "$0")/../../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
BASE=${BASE:-/tmp/base0/build/dptrain}; LAYERS=${LAYERS:-784,1024,1024,10}
for round in $(seq ${ROUNDS:-3}); do
for lay in ${LAYOUTS:-1x1:128 1x2:256 2x1:256 1x1:1024 1x2:1024}; do
  rt=${lay%:*}; b=${lay#*:}; r=${rt%x*}; t=${rt#*x}
  steps=$(( b >= 1024 ? 40 : 150 ))
  for v in old new; do
    bin=build/dptrain; [ $v = old ] && bin=$BASE
    tools/launch.sh $r $t $bin train --data data/fashion-mnist.h5 --layers $LAYERS --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch $b --epochs 1 --max-steps $steps --quiet --metrics /tmp/ab_loop.jsonl ${EXTRA:-} </dev/null >/dev/null
    /usr/bin/python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/ab_loop.jsonl')][-1]; t=e['time']
print('$round $lay $v %.0f ' % e['samples_per_s'] + ' '.join('%s %.3f' % (k[:3], t[k]['mean']) for k in ['forward_products','weight_gradients','input_gradients','allreduce','update']) + ' loss %.6f' % e['train_loss'])"
  done
done; done
