#!/bin/bash
# 1 x 2 against 2 x 1 (sliced, the default) without (nt0) and with (nt1) the node team (DPT_NTEAM); B the global batch, STEPS, ROUNDS, EXTRA more options. Prints: round, variant, samples/s, 0 0, then seconds per phase and product (mean over ranks)
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
B=${B:-256}; LAYERS=${LAYERS:-784,1024,1024,10}; STEPS=${STEPS:-200}
for round in $(seq ${ROUNDS:-4}); do
for v in ${VARIANTS:-1x2 nt0 nt1}; do
  case $v in 1x2) L="1 2"; X=();; nt*) L="2 1"; X=(DPT_NTEAM=${v#nt});; esac
  env "${X[@]}" tools/launch.sh $L build/dptrain train --data data/fashion-mnist.h5 --layers $LAYERS --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch $B --epochs 1 --max-steps $STEPS --quiet --metrics /tmp/pm.jsonl ${EXTRA:-} </dev/null >/dev/null
  python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/pm.jsonl')][-1]; t=e['time']
print('$round $v %.0f 0 0 ' % e['samples_per_s'] + ' '.join('%s %.3f' % (k[:3], t[k]['mean']) for k in ['compute','forward_products','weight_gradients','input_gradients','allreduce','update']))"
done; done
