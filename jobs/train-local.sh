#!/bin/bash
# Training on a workstation with mpirun: NP ranks x THREADS threads each.
#   NP=2 THREADS=1 jobs/train-local.sh --data data/fashion-mnist.h5 --layers 784,100,10 --epochs 10
# Ranks are bound to cores (--bind-to core, or none when oversubscribed);
# OMP_NUM_THREADS is set from THREADS. All arguments go to `dptrain train`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NP=${NP:-2}
THREADS=${THREADS:-1}
export OMP_NUM_THREADS=$THREADS OMP_PROC_BIND=${OMP_PROC_BIND:-close} OMP_PLACES=${OMP_PLACES:-cores}
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
CORES=$(nproc)
if [ $((NP * THREADS)) -le "$CORES" ]; then
    BIND=(--map-by "slot:PE=$THREADS" --bind-to core)
else
    BIND=(--oversubscribe --bind-to none)
fi
exec mpirun -np "$NP" "${BIND[@]}" "$ROOT/build/dptrain" train "$@"
