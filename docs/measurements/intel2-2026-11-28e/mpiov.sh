#!/bin/bash
# --reduce mpi --overlap at NP ranks x 1 thread (oversubscribed on 2 cores): new (build/) vs old (/tmp/base, in-place
# MPI_Iallreduce), and --reduce mpi without overlap (new) for reference. B, STEPS, ROUNDS, NP.
cd /work/main
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
B=${B:-256}; STEPS=${STEPS:-100}; NP=${NP:-4}
for round in $(seq ${ROUNDS:-4}); do
for v in ${VARIANTS:-new old flat}; do
  case $v in new) bin=build/dptrain; o=(--reduce mpi --overlap);; old) bin=/tmp/base/build/dptrain; o=(--reduce mpi --overlap);;
             flat) bin=build/dptrain; o=(--reduce mpi --no-overlap);; esac
  tools/launch.sh $NP 1 $bin train --data data/fashion-mnist.h5 --layers 784,1024,1024,10 --hidden relu --output softmax --cost cce --optimizer momentum --lr 0.01 --batch $B --epochs 1 --max-steps $STEPS --quiet --metrics /tmp/pm2.jsonl "${o[@]}" </dev/null >/dev/null
  python3 -c "
import json; e=[json.loads(l) for l in open('/tmp/pm2.jsonl')][-1]; t=e['time']
print('$round $v %.0f ' % e['samples_per_s'] + ' '.join('%s %.3f' % (k[:3], t[k]['mean']) for k in ['compute','allreduce','update']))"
done; done
