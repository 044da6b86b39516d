#!/bin/bash
# Training on a workstation with mpirun: NP ranks x THREADS threads each.
#   NP=2 THREADS=1 jobs/train-local.sh --data data/fashion-mnist.h5 --layers 784,100,10 --epochs 10
# Each rank gets THREADS cores (--map-by slot:PE=THREADS --bind-to core), or
# nothing is bound when NP x THREADS exceeds the cores; OMP_NUM_THREADS is set
# from THREADS (tools/launch.sh). All arguments go to `dptrain train`.
#
# Ctrl-C or SIGTERM to this script becomes one SIGUSR1 to mpirun, which
# forwards it to the ranks: they checkpoint (with --checkpoint-dir) and stop,
# and the script exits with their status, 75. (Sent to a bare mpirun, SIGINT
# and SIGTERM take Open MPI's abort path: the ranks still checkpoint, but
# mpirun itself exits with 1.) A second Ctrl-C after the grace period
# (--signal-grace, 30 s) ends the ranks at once. SIGUSR2 to this script
# reaches the ranks as it is: a checkpoint after the next step, and training
# goes on.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NP=${NP:-2}
THREADS=${THREADS:-1}
# mpirun in its own process group, so that a terminal's Ctrl-C reaches only
# this script, which turns it into the one stop request mpirun forwards.
set -m
"$ROOT/tools/launch.sh" "$NP" "$THREADS" "${DPTRAIN:-$ROOT/build/dptrain}" train "$@" &
launcher=$!
set +m
forward() { kill -USR1 "$launcher" 2>/dev/null; }
trap forward INT TERM USR1
# SIGUSR2 (a checkpoint now, and training goes on) passes through as it is.
trap 'kill -USR2 "$launcher" 2>/dev/null' USR2
# wait returns early when a trap runs: wait again until mpirun has ended.
while :; do
    wait "$launcher"
    rc=$?
    kill -0 "$launcher" 2>/dev/null || break
done
exit "$rc"
