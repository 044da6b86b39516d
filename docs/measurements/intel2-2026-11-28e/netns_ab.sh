#!/bin/bash
# Interleaved timing on namespaced hosts (2 ranks each, over TCP), the
# command of tools/ci/netns.sh's HIER_TIMING: "old" = /tmp/base/build/dptrain
# (a worktree of the build before: edb02d9 for the logs in ../intel2-2026-11-28d, made by
# this script's first version, 331cd63 for this directory's), "new" =
# build/dptrain, both --reduce shm (hierarchical, node-sliced); "mpi" = new
# --reduce mpi (flat MPI_Allreduce); "nt0"/"nt1" = new without/with the
# node's team (DPT_NTEAM); "mpiov"/"oldmpiov" = new/old --reduce mpi --overlap
# (the flat path's buckets by MPI_Iallreduce); "sfb" = the rows-for-gradient timing mock-up
# (/tmp/sfbhack: sfb-mockup.patch here applied to f3fc8a3 and built; its models are not used); "nx" = new without rows across nodes (DPT_XROWS=0); "local" = new with all 2*NODES ranks on the first host (no TCP at all: the step
# no cross-node path can beat on these cores); "eag"/"mpieag" = new/mpi with Open MPI's TCP eager limit and
# send size at 1 MiB (large messages without the rendezvous), "pt" = new with the TCP BTL's progress thread
# (these three also added 2026-11-29 for amd2-2026-11-29d). NODES hosts, ROUNDS rounds, EXTRA more
# options (--deterministic). Prints per run: round, variant, samples/s,
# allreduce wait ms/step, compute ms/step (means over ranks).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
NODES=${NODES:-2}
. "$ROOT/tools/ci/netns-hosts.sh"
trap ns_down EXIT
ns_up $NODES
T=$NS_DIR
cp "$ROOT/build/dptrain" "$T/new"; [ -x /tmp/base/build/dptrain ] && cp /tmp/base/build/dptrain "$T/old"   # "old" needs it
[ -x /tmp/sfbhack ] && cp /tmp/sfbhack "$T/sfbhack"   # "sfb" needs it: the timing mock-up (docs/performance.md)
# RATE (e.g. 1gbit): each host's link limited by tc tbf, as tools/ci/netns.sh's scaling run does
if [ -n "${RATE:-}" ]; then
  for i in $(seq "$NODES"); do ip netns exec "$NS_PFX-n$i" tc qdisc add dev eth0 root tbf rate "$RATE" burst 128kb latency 50ms; done
fi
awk 'BEGIN { srand(5); for (i = 0; i < 3000; i++) { s = 0; line = "";
       for (j = 0; j < 16; j++) { v = rand() * 2 - 1; s += v * (j % 4 - 1.5); line = line sprintf("%.5f,", v) }
       print line (s > 1 ? 3 : s > 0 ? 2 : s > -1 ? 1 : 0) } }' > "$T/d.csv"
"$T/new" convert csv "$T/d.csv" -o "$T/d.h5" >/dev/null
NET=(--mca plm_rsh_agent "$NS_DIR/nsrsh" --mca btl tcp,vader,self --mca btl_tcp_if_include eth0
          --mca oob_tcp_if_include eth0 --mca mpi_yield_when_idle 1 --oversubscribe)
HOSTS2=$(seq -s, -f '10.213.0.%g:2' "$NODES")
TRUN=(--data "$T/d.h5" --layers ${LAYERS:-16,1024,1024,4} --batch "${BATCH:-256}" --epochs 1 --max-steps 100 --quiet)
for round in $(seq ${ROUNDS:-6}); do
  for v in ${VARIANTS:-new mpi}; do
    hosts=$HOSTS2
    case $v in
      old) bin=old; opts=(--reduce shm); env=() ;;
      new) bin=new; opts=(--reduce shm); env=() ;;
      mpi) bin=new; opts=(--reduce mpi); env=() ;;
      nt*) bin=new; opts=(--reduce shm); env=(-x DPT_NTEAM=${v#nt}) ;;
      oldmpi) bin=old; opts=(--reduce mpi); env=() ;;
      nx) bin=new; opts=(--reduce shm); env=(-x DPT_XROWS=0) ;;
      sfb) bin=sfbhack; opts=(--reduce shm); env=(-x DPT_HACK_SFB=1) ;;
      local) bin=new; opts=(--reduce shm); env=(); hosts=10.213.0.1:$((2*NODES)) ;;
      eag) bin=new; opts=(--reduce shm); env=(--mca btl_tcp_eager_limit 1048576 --mca btl_tcp_max_send_size 1048576) ;;
      mpieag) bin=new; opts=(--reduce mpi); env=(--mca btl_tcp_eager_limit 1048576 --mca btl_tcp_max_send_size 1048576) ;;
      pt) bin=new; opts=(--reduce shm); env=(--mca btl_tcp_progress_thread 1) ;;
      mpiov) bin=new; opts=(--reduce mpi --overlap); env=() ;;
      oldmpiov) bin=old; opts=(--reduce mpi --overlap); env=() ;;
    esac
    timeout 300 ip netns exec "$NS_PFX-n1" mpirun -np $((2*NODES)) --host "$hosts" "${NET[@]}" "${env[@]}" "$T/$bin" train "${TRUN[@]}" "${opts[@]}" ${EXTRA:-} --metrics "$T/t.jsonl" </dev/null || true   # the mock-up fails the replica check at the end
    python3 -c "
import json; e=[json.loads(l) for l in open('$T/t.jsonl')][-1]
print('$round $v %.0f %.2f %.2f' % (e['samples_per_s'], 1e3 * e['time']['allreduce']['mean'] / e['step'], 1e3 * e['time']['compute']['mean'] / e['step']))"
  done
done
