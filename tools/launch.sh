#!/bin/bash
# The one way the tools (and jobs/train-local.sh) start an MPI program on this
# machine:
#
#   tools/launch.sh NP THREADS [MPIRUN-OPTIONS... --] COMMAND [ARGS...]
#
# NP ranks x THREADS OpenMP threads each. When NP x THREADS fits the cores,
# each rank is bound to its own THREADS cores (--map-by slot:PE=THREADS
# --bind-to core: a bare `mpirun -np 1` would bind the rank, and all its
# threads, to one core); otherwise nothing is bound, the ranks oversubscribe
# the cores and yield when idle. OMP_NUM_THREADS, OMP_PROC_BIND and
# OMP_PLACES reach every rank; as root, Open MPI is allowed to run. The
# script becomes mpirun (exec), so signals sent to it reach mpirun.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: tools/launch.sh NP THREADS [MPIRUN-OPTIONS... --] COMMAND [ARGS...]" >&2; exit 2; }
NP=$1 THREADS=$2
shift 2
extra=()
for a in "$@"; do
    if [ "$a" = "--" ]; then
        while [ "$1" != "--" ]; do extra+=("$1"); shift; done
        shift
        break
    fi
done
export OMP_NUM_THREADS=$THREADS OMP_PROC_BIND=${OMP_PROC_BIND:-close} OMP_PLACES=${OMP_PLACES:-cores}
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
if [ $((NP * THREADS)) -le "$(nproc)" ]; then
    BIND=(--map-by "slot:PE=$THREADS" --bind-to core)
else
    BIND=(--oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
fi
exec mpirun -np "$NP" "${BIND[@]}" -x OMP_NUM_THREADS -x OMP_PROC_BIND -x OMP_PLACES ${extra[@]+"${extra[@]}"} "$@"
