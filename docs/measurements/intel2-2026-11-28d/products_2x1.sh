#!/bin/bash
# 1 x 2, 2 x 1 sliced (the default) and 2 x 1 summed with overlap, batch 256, 200 steps; seconds per phase and product, mean/max over ranks
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for round in 1 2 3; do
for v in 1x2 2x1s 2x1o; do
  case $v in 1x2) L="1 2"; E=(); X=();; 2x1s) L="2 1"; E=(--reduce shm); X=(DPT_SLICED=1);; 2x1o) L="2 1"; E=(--reduce shm --overlap); X=(DPT_SLICED=0);; esac
  env "${X[@]}" tools/launch.sh $L build/dptrain train --data data/fashion-mnist.h5 --layers 784,1024,1024,10 --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch 256 --epochs 1 --max-steps 200 --quiet --metrics /tmp/pm.jsonl "${E[@]}" </dev/null >/dev/null
  python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/pm.jsonl')][-1]; t=e['time']
print('$round $v %.0f ' % e['samples_per_s'] + ' '.join('%s %.3f/%.3f' % (k, t[k]['mean'], t[k]['max']) for k in ['compute','forward_products','weight_gradients','input_gradients','allreduce','update']))"
done; done
