#!/bin/bash
# Training on a workstation with mpirun: NP ranks x THREADS threads each.
#   NP=2 THREADS=1 jobs/train-local.sh --data data/fashion-mnist.h5 --layers 784,100,10 --epochs 10
# Each rank gets THREADS cores (--map-by slot:PE=THREADS --bind-to core), or
# nothing is bound when NP x THREADS exceeds the cores; OMP_NUM_THREADS is set
# from THREADS. All arguments go to `dptrain train`.
#
# Ctrl-C or SIGTERM to this script becomes one SIGUSR1 to mpirun, which
# forwards it to the ranks: they checkpoint (with --checkpoint-dir) and stop,
# and the script exits with their status, 75. (Sent to a bare mpirun, SIGINT
# and SIGTERM take Open MPI's abort path: the ranks still checkpoint, but
# mpirun itself exits with 1.) A second Ctrl-C after the grace period
# (--signal-grace, 30 s) ends the ranks at once.
set -uo pipefail
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
# mpirun in its own process group, so that a terminal's Ctrl-C reaches only
# this script, which turns it into the one stop request mpirun forwards.
set -m
mpirun -np "$NP" "${BIND[@]}" "${DPTRAIN:-$ROOT/build/dptrain}" train "$@" &
launcher=$!
set +m
forward() { kill -USR1 "$launcher" 2>/dev/null; }
trap forward INT TERM USR1
# wait returns early when a trap runs: wait again until mpirun has ended.
while :; do
    wait "$launcher"
    rc=$?
    kill -0 "$launcher" 2>/dev/null || break
done
exit "$rc"
