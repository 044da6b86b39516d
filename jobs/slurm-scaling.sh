#!/bin/bash
# Submits a scaling study: one SLURM job per layout, each writing its metrics
# (with the per-phase timing breakdown) to runs/scaling/<study>/n<N>-r<R>-t<T>.jsonl.
#
#   jobs/slurm-scaling.sh strong "1 2 4" "1 2" 2 -- --data data/fashion-mnist.h5 --layers 784,1024,1024,10 --batch 512
#   jobs/slurm-scaling.sh weak   "1 2 4" "1 2" 2 -- --data ... --batch-per-rank 128
#
# Arguments: study (strong: the global batch stays; weak: the batch grows with
# the ranks: dptrain's --batch-per-rank B gives B x ranks), node counts, ranks per node,
# threads per rank, then -- and the options of `dptrain train` (add
# --max-steps for a short timing run). Then: tools/scaling/scaling.py runs/scaling/<study>.
# SCALING_OUT replaces runs/scaling, DPTRAIN the binary (build/dptrain).
# SBATCH_EXTRA passes more sbatch options (partition, account, ...). Each rank
# gets its threads' CPUs (srun -c: since SLURM 22.05 srun does not inherit
# --cpus-per-task), so a hybrid layout measures cores, not time-slicing.
# SLURM_PMIX_FENCE=tree, as in jobs/slurm-train.sbatch: one PMIx fence
# algorithm on every node, for a safe start across nodes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
study=$1 nodes_list=$2 ranks_list=$3 threads=$4
shift 4
[ "${1:-}" = "--" ] && shift
out="${SCALING_OUT:-$ROOT/runs/scaling}/$study"
DPTRAIN=${DPTRAIN:-$ROOT/build/dptrain}
mkdir -p "$out"
for nodes in $nodes_list; do
    for rpn in $ranks_list; do
        name="n$nodes-r$rpn-t$threads"
        # shellcheck disable=SC2086
        sbatch ${SBATCH_EXTRA:-} --job-name="scal-$study-$name" --nodes="$nodes" --ntasks-per-node="$rpn" \
            --cpus-per-task="$threads" --output="$out/$name.out" --wrap \
            "OMP_NUM_THREADS=$threads OMP_PROC_BIND=close OMP_PLACES=cores SRUN_CPUS_PER_TASK=$threads \
             SLURM_PMIX_FENCE=${SLURM_PMIX_FENCE:-tree} \
             srun --mpi=pmix -c $threads --cpu-bind=cores $DPTRAIN train $* \
             --quiet --metrics $out/$name.jsonl"
    done
done
