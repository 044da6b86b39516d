#!/bin/bash
# Claimed units (DPT_CLAIM=1, the default on one node) against fixed shares (0), 2 ranks x 1 thread,
# [784,1024,1024,10], batch B (256: 128 rows a rank, no node team; 128: 64 rows, the team), with
# and without a busy loop on core 1 (BUSY=1: one rank's core shared with another process).
# Interleaved rounds; B, STEPS, ROUNDS, BUSY, NP, T, EXTRA.
cd /work/main
B=${B:-256}; STEPS=${STEPS:-100}; NP=${NP:-2}; T=${T:-1}
busy=""
if [ "${BUSY:-0}" = 1 ]; then taskset -c 1 bash -c 'while :; do :; done' & busy=$!; fi
trap '[ -n "$busy" ] && kill $busy' EXIT
for round in $(seq ${ROUNDS:-3}); do
for v in 1 0; do
  DPT_CLAIM=$v tools/launch.sh $NP $T build/dptrain train --data data/fashion-mnist.h5 --layers 784,1024,1024,10 --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch $B --epochs 1 --max-steps $STEPS --quiet --metrics /tmp/cm.jsonl ${EXTRA:-} </dev/null >/dev/null
  python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/cm.jsonl')][-1]; t=e['time']; s=e['step']
print('$round claim=$v busy=${BUSY:-0} B=$B %.0f samples/s; ms a step: ' % e['samples_per_s'] + ' '.join('%s %.2f-%.2f' % (k[:5], 1e3*t[k]['min']/s, 1e3*t[k]['max']/s) for k in ['compute','weight_gradients','allreduce','update']))"
done; done
