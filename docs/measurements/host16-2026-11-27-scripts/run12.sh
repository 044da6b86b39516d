#!/bin/bash
# Issue 12 on the 16-core host: the standard study (scaling16.sh, here without
# PyTorch unless DDP=1), then the reduction micro-benchmark at 2-16 ranks and
# strong 16-rank runs through each reduction path, with and without overlap.
set -uo pipefail
D=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/out}; mkdir -p "$O"
DDP=${DDP:-1} bash "$D/scaling16.sh"
exec >> "$O/log.txt" 2>&1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LD_LIBRARY_PATH=/opt/inih/usr/lib/x86_64-linux-gnu
B=/tmp/dpt-build
for P in 2 4 8 16; do
  timeout 90 mpirun -np $P --map-by core --bind-to core $B/bench_allreduce 10 64 > "$O/allreduce-$P.json" 2>>"$O/bench.err"
  echo "allreduce P=$P: $(python3 -c "
import json; d=json.load(open('$O/allreduce-$P.json'))
print(' '.join('%dK:%.0f/%.0f/%.0fus' % (s['bytes']//1024, s['bare_us'], s['mpi_us'], s['shm_us']) for s in d['sizes']))")"
done
RES=$O/results.jsonl
x() {  # label ranks threads batch steps [options]
  local lab=$1 P=$2 T=$3 Bt=$4 S=$5; shift 5
  local m=/tmp/x-$lab.jsonl; rm -f "$m"
  local map="--map-by core --bind-to core"; [ "$T" -gt 1 ] && map="--map-by slot:PE=$T --bind-to core"
  OMP_NUM_THREADS=$T OMP_PROC_BIND=close OMP_PLACES=cores timeout 120 mpirun -np $P $map \
    -x LD_LIBRARY_PATH -x OMP_NUM_THREADS -x OMP_PROC_BIND -x OMP_PLACES \
    $B/dptrain train --quiet --data /tmp/rand.h5 --layers 784,1024,1024,10 --hidden sigmoid --output softmax --cost cce \
    --optimizer momentum --lr 0.1 --momentum 0.9 --batch $Bt --epochs 1000 --max-steps $S --metrics "$m" "$@" </dev/null || { echo "$lab failed"; return; }
  python3 -c "
import json
L=[json.loads(l) for l in open('$m') if l.strip()]; t=L[-1]['time']
sps=round(L[-1]['step']*$Bt/sum(x['epoch_s'] for x in L))
print(json.dumps({'who':'dptrain','lab':'$lab','P':$P,'T':$T,'B':$Bt,'samples_per_s':sps,'allreduce_s':t['allreduce']['mean'],'compute_s':t['compute']['mean'],'update_s':t['update']['mean'],'opts':'$*'}))" | tee -a "$RES"
}
for rep in 1; do
  x strong-mpi 16 1 1024 40 --reduce mpi
  x strong-shm 16 1 1024 40 --reduce shm
  x strong-shm-overlap 16 1 1024 40 --reduce shm --overlap
  x weak-mpi 16 1 2048 200 --reduce mpi
  x weak-shm 16 1 2048 200 --reduce shm
  x weak-shm-overlap 16 1 2048 200 --reduce shm --overlap
done
x det-16-mpi 16 1 1024 40 --deterministic --reduce mpi
x hybrid-2x8-shm 2 8 1024 40
x hybrid-4x4-shm 4 4 1024 40
x hybrid-8x2-shm 8 2 1024 40
echo "run12 done"
