#!/bin/bash
# [784,1024,1024,10], relu, softmax, cce, momentum, 200 steps, tools/launch.sh RANKS THREADS; per product (the kernels' own clock) the microseconds a core spends per sample: time x ranks x threads / samples
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for round in 1 2 3; do
for v in 1x1b128 1x1b256 2x1b256 1x2b256; do
  case $v in 1x1b128) L="1 1"; B=128;; 1x1b256) L="1 1"; B=256;; 2x1b256) L="2 1"; B=256;; 1x2b256) L="1 2"; B=256;; esac
  tools/launch.sh $L build/dptrain train --data data/fashion-mnist.h5 --layers 784,1024,1024,10 --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch $B --epochs 1 --max-steps 200 --quiet --metrics /tmp/pm.jsonl </dev/null >/dev/null
  python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/pm.jsonl')][-1]; t=e['time']; n=200*$B
# per-sample microseconds of each product per rank-thread: time * ranks*threads / samples
rt=${L/ /*}
print('$round $v %6.0f samples/s; us per sample per core: ' % e['samples_per_s'] + ' '.join('%s %.2f' % (k[:3], 1e6*t[k]['mean']*rt/n) for k in ['forward_products','weight_gradients','input_gradients']))"
done; done
