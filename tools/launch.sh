#!/bin/bash
# The one way the tools (and jobs/train-local.sh) start an MPI program on this
# machine:
#
#   tools/launch.sh NP THREADS [MPIRUN-OPTIONS... --] COMMAND [ARGS...]
#
# NP ranks x THREADS OpenMP threads each. When NP x THREADS fits the cores,
# each rank is bound to its own THREADS cores (--map-by slot:PE=THREADS
# --bind-to core: a bare `mpirun -np 1` would bind the rank, and all its
# threads, to one core), and its threads to those cores (OMP_PROC_BIND=close,
# OMP_PLACES=cores); otherwise nothing is bound (OMP_PROC_BIND=false), the
# ranks oversubscribe the cores and yield when idle. As root, Open MPI is
# allowed to run. The
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
# The cores this process may use (nproc would answer OMP_NUM_THREADS if set).
CORES=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
if [ $((NP * THREADS)) -le "$CORES" ]; then
    BIND=(--map-by "slot:PE=$THREADS" --bind-to core)
    export OMP_PROC_BIND=${OMP_PROC_BIND:-close} OMP_PLACES=${OMP_PLACES:-cores}
else
    # Unbound ranks must not pin their threads: each would pin to the first
    # cores of the same mask, all ranks on the same core.
    BIND=(--oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
    export OMP_PROC_BIND=false
    unset OMP_PLACES
fi
export OMP_NUM_THREADS=$THREADS
XOMP=(-x OMP_NUM_THREADS -x OMP_PROC_BIND)
[ -n "${OMP_PLACES:-}" ] && XOMP+=(-x OMP_PLACES)
exec mpirun -np "$NP" "${BIND[@]}" "${XOMP[@]}" ${extra[@]+"${extra[@]}"} "$@"
