#!/bin/bash
# Second, short pass on the warm host: deterministic vs default, interleaved, with phase times;
# the 1-thread command repeated with more steps (spread).
set -uo pipefail
O=${OUT:-/tmp/out}; mkdir -p "$O"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LD_LIBRARY_PATH=/opt/inih/usr/lib/x86_64-linux-gnu
DPT=/tmp/dpt-build/dptrain
ARGS="--quiet --data /tmp/rand.h5 --layers 784,1024,1024,10 --hidden sigmoid --output softmax --cost cce --optimizer momentum --lr 0.1 --momentum 0.9 --batch 1024 --epochs 1000"
rate() { python3 -c "
import json
L=[json.loads(l) for l in open('$1') if l.strip()]; t=L[-1]['time']
print(round(L[-1]['step']*1024/sum(x['epoch_s'] for x in L)), 'compute %.3f allreduce %.3f update %.3f' % (t['compute']['mean'], t['allreduce']['mean'], t['update']['mean']))"; }
mp() { local lab=$1 P=$2 T=$3 S=$4; shift 4; local m=/tmp/b-$lab.jsonl; rm -f "$m"
  local map="--map-by core --bind-to core"; [ "$T" -gt 1 ] && map="--map-by slot:PE=$T --bind-to core"
  OMP_NUM_THREADS=$T timeout 40 mpirun -np $P $map -x LD_LIBRARY_PATH -x OMP_NUM_THREADS $DPT train $ARGS --max-steps $S --metrics "$m" "$@" </dev/null >/dev/null 2>&1 \
    && echo "$lab ${P}x$T: $(rate "$m")" || echo "$lab failed"; }
for r in 1 2 3; do
  mp def-16x1-$r 16 1 40; mp det-16x1-$r 16 1 40 --deterministic
  mp def-1x16-$r 1 16 40; mp det-1x16-$r 1 16 40 --deterministic
done
for r in 1 2 3; do m=/tmp/t1-$r.jsonl; OMP_NUM_THREADS=1 timeout 30 $DPT train $ARGS --max-steps 40 --metrics $m </dev/null >/dev/null 2>&1; echo "t1-$r: $(rate $m)"; done
