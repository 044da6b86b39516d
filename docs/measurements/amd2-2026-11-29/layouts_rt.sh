#!/bin/bash
# 1 rank x 2 threads against 2 ranks x 1 thread (and VARIANTS more: 2x1ov = --overlap, 1x2det/2x1det =
# --deterministic, 1x2team = DPT_TEAM=1, threads as ranks), [784,1024,1024,10], momentum, batch B (BATCHES:
# several), STEPS steps, ROUNDS interleaved rounds; each run
# between two readings of build/core_latency (the cores' cache-line round trip, ns: on this VM the host
# moves the virtual CPUs between cores that share a cache and cores that do not).
# Prints: round variant samples/s rt_before rt_after, then seconds a step per phase.
cd "$(dirname "$0")/../../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
B=${B:-256}; LAYERS=${LAYERS:-784,1024,1024,10}; STEPS=${STEPS:-200}
rt() { build/core_latency | sed 's/.*round trip \([0-9]*\) ns.*/\1/'; }
for round in $(seq ${ROUNDS:-6}); do
 for B in ${BATCHES:-$B}; do
  for v in ${VARIANTS:-1x2 2x1}; do
    case $v in 1x1*) L="1 1";; 1x2*) L="1 2";; 2x1*) L="2 1";; esac
    X=; case $v in *ov) X=--overlap;; *det) X=--deterministic;; esac
    E=; case $v in *team) E=DPT_TEAM=1;; esac
    a=$(rt)
    env $E tools/launch.sh $L build/dptrain train --data data/fashion-mnist.h5 --layers $LAYERS --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch $B --epochs 1 --max-steps $STEPS --quiet --metrics /tmp/lrt.jsonl $X </dev/null >/dev/null
    b=$(rt)
    python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/lrt.jsonl')][-1]; t=e['time']
print('$round b$B $v %.0f rt $a $b ' % e['samples_per_s'] + ' '.join('%s %.3f' % (k[:3], t[k]['mean']) for k in ['compute','forward_products','weight_gradients','input_gradients','allreduce','update']))"
  done
 done
done
