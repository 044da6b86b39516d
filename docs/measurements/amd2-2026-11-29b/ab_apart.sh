#!/bin/bash
# Training pairs (build/dptrain, "flat" = DPT_UPDATE_UNITS=0, "units" = the default; the order swapped each pair) run
# only while the VM's two cores are apart (build/core_latency over 200 ns; ANY=1: in any state), for SECS seconds:
# 1 rank x 2 threads, [784,1024,1024,10], batch B (10), S (300) steps, momentum. Prints the pair's
# variant, samples/s, the round trips before and after, the update's us a step.
cd "$(dirname "$0")/../../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rt() { build/core_latency | sed 's/.*round trip \([0-9]*\) ns.*/\1/'; }
end=$((SECONDS + ${SECS:-480})); k=0
while [ $SECONDS -lt $end ]; do
  a=$(rt); if [ -z "${ANY:-}" ] && [ "$a" -lt 200 ]; then sleep 1; continue; fi
  k=$((k + 1)); order="flat units"; [ $((k % 2)) = 0 ] && order="units flat"
  for v in $order; do
    u=1; [ $v = flat ] && u=0
    DPT_UPDATE_UNITS=$u tools/launch.sh 1 2 build/dptrain train --data data/fashion-mnist.h5 --layers 784,1024,1024,10 --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch ${B:-10} --epochs 1 --max-steps ${S:-300} --quiet --metrics /tmp/aba.jsonl </dev/null >/dev/null
    z=$(rt)
    python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/aba.jsonl')][-1]; t=e['time']; s=e['step']
print('$k $v %.0f rt $a $z upd %.1f' % (e['samples_per_s'], 1e6*t['update']['mean']/s))"
    a=$z
  done
done
