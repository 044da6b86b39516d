#!/bin/bash
# Several hosts on one machine, for CI: network namespaces joined by veth
# links to a bridge (in a namespace of its own), each namespace a "node" with
# its own address in 10.213.0.0/24 (used only between these namespaces). mpirun
# runs inside the first node and starts the remote ranks through an rsh agent
# that enters the target namespace; Open MPI's TCP transport carries the
# traffic over the veth links. Checks that deterministic training across the
# namespaced nodes gives the same model, bit for bit, as on one host, and
# records a small scaling run (1 host vs 2 namespaced hosts, and 2 hosts behind
# a 1 Gbit/s rate-limited link with tc tbf) for tools/scaling/scaling.py.
# Usage: tools/ci/netns.sh [NODES=2]; needs root, iproute2, build/dptrain.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DPTRAIN=$ROOT/build/dptrain
NODES=${1:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
. "$ROOT/tools/ci/netns-hosts.sh"
trap ns_down EXIT
ns_up "$NODES"
# Files the remote hosts read live outside /tmp (which they replace by their
# own), binaries included: the checkout itself may sit under /tmp.
T=$NS_DIR
cp "$ROOT/build/dptrain" "$ROOT/build/bench_allreduce" "$T/"
DPTRAIN=$T/dptrain
PFX=$NS_PFX
# mpirun inside the first host, bounded: a run that hangs (a collective one
# rank never joins) fails the check instead of the whole job.
ns_mpirun() { timeout -k 10 "${NETNS_RUN_LIMIT:-600}" ip netns exec "$PFX-n1" mpirun "$@"; }
HOSTS=$(seq -s, -f '10.213.0.%g' "$NODES")
echo "namespaced hosts: $HOSTS"

awk 'BEGIN { srand(5); for (i = 0; i < 3000; i++) { s = 0; line = "";
       for (j = 0; j < 16; j++) { v = rand() * 2 - 1; s += v * (j % 4 - 1.5); line = line sprintf("%.5f,", v) }
       print line (s > 1 ? 3 : s > 0 ? 2 : s > -1 ? 1 : 0) } }' > "$T/d.csv"
"$DPTRAIN" convert csv "$T/d.csv" -o "$T/d.h5" >/dev/null
ARGS=(--data "$T/d.h5" --layers 16,64,64,4 --hidden tanh --optimizer adam --lr 0.003 --batch 32 --epochs 3
      --deterministic --quiet)
MPI_NET=(--mca plm_rsh_agent "$NS_DIR/nsrsh" --mca btl tcp,self --mca btl_tcp_if_include eth0
         --mca oob_tcp_if_include eth0 --mca mpi_yield_when_idle 1 --oversubscribe)

mpirun -np 1 "$DPTRAIN" train "${ARGS[@]}" --save "$T/one-host.h5" </dev/null
ns_mpirun -np "$NODES" --host "$HOSTS" "${MPI_NET[@]}" \
    "$DPTRAIN" train "${ARGS[@]}" --save "$T/namespaced.h5" </dev/null
nodes_seen=$(ns_mpirun -np "$NODES" --host "$HOSTS" "${MPI_NET[@]}" \
    /bin/sh -c 'echo "$(hostname) $(ip -4 -o addr show eth0 | awk "{print \$4}")"' </dev/null | sort -u | tee "$T/seen" | wc -l)
sed 's/^/     rank on: /' "$T/seen"
rc=0
if "$DPTRAIN" compare "$T/one-host.h5" "$T/namespaced.h5" && [ "$nodes_seen" -eq "$NODES" ]; then
    echo "ok   $NODES namespaced hosts over TCP ($nodes_seen distinct addresses): model bitwise identical to one host"
else
    echo "FAIL namespaced training differs from one host (or ranks did not run on $NODES hosts: $nodes_seen)"
    rc=1
fi

# Hierarchical reduction: 2 ranks on each host, node-shared memory within a
# host and one allreduce per slice across hosts (--reduce shm) against the
# flat MPI_Allreduce of the whole vector (--reduce mpi): deterministic, the
# same bits as one host; default mode, the same to float precision.
HIER_NET=(--mca plm_rsh_agent "$NS_DIR/nsrsh" --mca btl tcp,vader,self --mca btl_tcp_if_include eth0
          --mca oob_tcp_if_include eth0 --mca mpi_yield_when_idle 1 --oversubscribe)
HOSTS2=$(seq -s, -f '10.213.0.%g:2' "$NODES")
for red in shm mpi; do
    ns_mpirun -np $((2 * NODES)) --host "$HOSTS2" "${HIER_NET[@]}" \
        "$DPTRAIN" train "${ARGS[@]}" --no-quiet --reduce $red --save "$T/hier-$red.h5" </dev/null | grep "^reduction:" \
        > "$T/hier-$red.txt"
    ns_mpirun -np $((2 * NODES)) --host "$HOSTS2" "${HIER_NET[@]}" \
        "$DPTRAIN" train "${ARGS[@]}" --no-deterministic --reduce $red --save "$T/hier-$red-default.h5" </dev/null
done
if grep -q "hierarchical" "$T/hier-shm.txt" && grep -q "MPI_Allreduce" "$T/hier-mpi.txt" \
   && "$DPTRAIN" compare "$T/one-host.h5" "$T/hier-shm.h5" && "$DPTRAIN" compare "$T/one-host.h5" "$T/hier-mpi.h5" \
   && "$DPTRAIN" compare "$T/hier-shm-default.h5" "$T/hier-mpi-default.h5" --rtol 1e-4 --atol 1e-6; then
    echo "ok   $NODES hosts x 2 ranks, hierarchical (shared memory + per-slice allreduce): deterministic model bitwise = one host's; default mode = the flat path's to 1e-4"
else
    echo "FAIL hierarchical reduction across $NODES namespaced hosts"
    rc=1
fi

# Rows across hosts instead of gradients (DPT_XROWS=1: every layer): each
# host computes the layers' gradients over every host's rows, in one chain,
# host after host; with the ranks on consecutive hosts that is one rank's
# model, bit for bit, in default mode, and one host's in deterministic mode.
ns_mpirun -np 1 --host 10.213.0.1 "${MPI_NET[@]}" \
    "$DPTRAIN" train "${ARGS[@]}" --no-deterministic --save "$T/one-rank-default.h5" </dev/null
ns_mpirun -np $((2 * NODES)) --host "$HOSTS2" "${HIER_NET[@]}" -x DPT_XROWS=1 \
    "$DPTRAIN" train "${ARGS[@]}" --no-deterministic --no-quiet --save "$T/rows.h5" </dev/null \
    | grep "^across nodes" > "$T/rows.txt" || true
ns_mpirun -np $((2 * NODES)) --host "$HOSTS2" "${HIER_NET[@]}" -x DPT_XROWS=1 \
    "$DPTRAIN" train "${ARGS[@]}" --save "$T/rows-det.h5" </dev/null
if grep -q "instead of its units' gradient sums" "$T/rows.txt" \
   && "$DPTRAIN" compare "$T/one-rank-default.h5" "$T/rows.h5" \
   && "$DPTRAIN" compare "$T/one-host.h5" "$T/rows-det.h5"; then
    echo "ok   $NODES hosts x 2 ranks, rows across hosts (DPT_XROWS=1): default mode model bitwise = one rank's, deterministic = one host's"
else
    echo "FAIL rows across $NODES namespaced hosts: $(cat "$T/rows.txt")"
    rc=1
fi

# The same with the ranks dealt out to the hosts in turn (--map-by node):
# default mode, each host takes the rows host after host (not in rank
# order), the flat path's model to 1e-4; deterministic mode keeps the sums
# there (its blocks would not stay whole): one host's model, bit for bit.
ns_mpirun -np $((2 * NODES)) --host "$HOSTS2" --map-by node "${HIER_NET[@]}" -x DPT_XROWS=1 \
    "$DPTRAIN" train "${ARGS[@]}" --no-deterministic --save "$T/rows-rr.h5" </dev/null
ns_mpirun -np $((2 * NODES)) --host "$HOSTS2" --map-by node "${HIER_NET[@]}" -x DPT_XROWS=1 \
    "$DPTRAIN" train "${ARGS[@]}" --no-quiet --save "$T/rows-rr-det.h5" </dev/null \
    | grep "^across nodes" > "$T/rows-rr-det.txt" || true
if "$DPTRAIN" compare "$T/hier-mpi-default.h5" "$T/rows-rr.h5" --rtol 1e-4 --atol 1e-6 \
   && "$DPTRAIN" compare "$T/one-host.h5" "$T/rows-rr-det.h5" && ! [ -s "$T/rows-rr-det.txt" ]; then
    echo "ok   $NODES hosts x 2 ranks dealt in turn (--map-by node), DPT_XROWS=1: default mode = the flat path's to 1e-4; deterministic (rows off) = one host's"
else
    echo "FAIL rows across $NODES namespaced hosts, ranks dealt in turn: $(cat "$T/rows-rr-det.txt")"
    rc=1
fi

# Nodes of different CPUs may choose different micro-kernels: here the ranks
# of hosts 2.. run the portable one (DPT_KERNEL=generic), host 1 its best.
# With rows across nodes each node would compute the same gradient with
# other bits and the replicas would part at the first step; the ranks see
# that the kernels differ and send gradient sums instead. Default mode,
# replicas compared every step, DPT_XROWS=1 asking for rows everywhere.
cat > "$T/kern-wrap" <<EOF
#!/bin/sh
[ "\${OMPI_COMM_WORLD_RANK:-0}" -ge 2 ] && export DPT_KERNEL=generic
exec "$DPTRAIN" "\$@"
EOF
chmod +x "$T/kern-wrap"
best=$("$DPTRAIN" --version | awk '$1 == "kernels" { print $2 }')
ns_mpirun -np $((2 * NODES)) --host "$HOSTS2" "${HIER_NET[@]}" -x DPT_XROWS=1 \
    "$T/kern-wrap" train "${ARGS[@]}" --no-deterministic --no-quiet --check-every 1 --save "$T/kern.h5" </dev/null \
    | grep "^across nodes" > "$T/kern.txt" || true
if [ -f "$T/kern.h5" ] && "$DPTRAIN" compare "$T/hier-mpi-default.h5" "$T/kern.h5" --rtol 1e-4 --atol 1e-6 \
   && { [ "$best" = generic ] || grep -q "micro-kernels differ" "$T/kern.txt"; }; then
    echo "ok   $NODES hosts x 2 ranks, hosts 2.. on the generic kernel, host 1 on $best: rows off, replicas identical at every step, the flat path's model to 1e-4"
else
    echo "FAIL nodes on different micro-kernels ($best and generic): $(cat "$T/kern.txt")"
    rc=1
fi

# Nodes of different sizes (2 ranks on the first host, 1 on each other): a
# node-shared model on every host, buckets cut into as many slices as the
# smallest node has ranks; deterministic, the same bits as one host.
HOSTS_UNEVEN="10.213.0.1:2,$(seq -s, -f '10.213.0.%g:1' 2 "$NODES")"
ns_mpirun -np $((NODES + 1)) --host "$HOSTS_UNEVEN" "${HIER_NET[@]}" \
    "$DPTRAIN" train "${ARGS[@]}" --no-quiet --save "$T/uneven.h5" </dev/null | grep "^reduction:" > "$T/uneven.txt"
if grep -q "hierarchical" "$T/uneven.txt" && "$DPTRAIN" compare "$T/one-host.h5" "$T/uneven.h5"; then
    echo "ok   $((NODES + 1)) ranks on $NODES hosts ($HOSTS_UNEVEN), hierarchical: deterministic model bitwise = one host's"
else
    echo "FAIL uneven nodes ($HOSTS_UNEVEN): $(cat "$T/uneven.txt")"
    rc=1
fi

# Timing (HIER_TIMING=1): 2 ranks on each host, hierarchical against flat,
# interleaved rounds; samples/s of each, and the allreduce wait per step.
# HIER_BATCH sets the global batch (default 256; smaller batches make the
# step more communication-bound), HIER_ROUNDS the rounds (default 3);
# HIER_UNEVEN=1 times the uneven layout above (2 ranks on the first host, 1
# on each other) instead.
if [ -n "${HIER_TIMING:-}" ]; then
    if [ -n "${HIER_UNEVEN:-}" ]; then
        HOSTS2=$HOSTS_UNEVEN TNP=$((NODES + 1))
    else
        TNP=$((2 * NODES))
    fi
    TRUN=(--data "$T/d.h5" --layers 16,1024,1024,4 --batch "${HIER_BATCH:-256}" --epochs 1 --max-steps 100 --quiet)
    # HIER_VARIANTS: shm (hierarchical, the defaults), shm-sliced (DPT_SLICED=1:
    # the node-sliced weight gradient, hosts of equal ranks), shm-unsliced
    # (DPT_SLICED=0: the shared-memory reduction, overlap auto), shm-no-overlap
    # (the same without overlap), mpi (flat).
    for round in $(seq "${HIER_ROUNDS:-3}"); do
        for red in ${HIER_VARIANTS:-shm mpi}; do
            opts=(--reduce "${red%%-*}"); [ "$red" = shm-no-overlap ] && opts+=(--no-overlap)
            case $red in
                shm-sliced) env=(-x DPT_SLICED=1) ;;
                shm-unsliced | shm-no-overlap) env=(-x DPT_SLICED=0) ;;
                *) env=(-x "DPT_SLICED=${DPT_SLICED:-}") ;;
            esac
            ns_mpirun -np "$TNP" --host "$HOSTS2" "${HIER_NET[@]}" "${env[@]}" \
                "$DPTRAIN" train "${TRUN[@]}" "${opts[@]}" --metrics "$T/t-$red.jsonl" </dev/null
            python3 -c "
import json; e=[json.loads(l) for l in open('$T/t-$red.jsonl')][-1]
print('timing round $round $red: %.0f samples/s, allreduce wait %.2f ms/step, compute %.2f ms/step' % (e['samples_per_s'], 1e3 * e['time']['allreduce']['mean'] / e['step'], 1e3 * e['time']['compute']['mean'] / e['step']))"
        done
    done
    # The reduction alone: MPI_Allreduce (flat) against shared memory + per-slice allreduce
    # (hierarchical), the same floats, each rep from a barrier.
    for round in 1 2 3; do
        ns_mpirun -np "$TNP" --host "$HOSTS2" "${HIER_NET[@]}" \
            "$T/bench_allreduce" 20 16 </dev/null > "$T/hier-bench.json"
        python3 -c "
import json; d=json.load(open('$T/hier-bench.json'))
print('reduction round $round, $TNP ranks on $NODES hosts, flat / hierarchical us: ' + ', '.join('%d KiB %.0f / %.0f (%.2fx)' % (s['bytes'] // 1024, s['bare_us'], s['shm_us'], s['bare_us'] / s['shm_us']) for s in d['sizes']))"
    done
fi

# A small timing run for the scaling tool: 1 host, then 2 hosts, then 2 hosts behind 1 Gbit/s.
if [ -n "${SCALING_DIR:-}" ]; then
    mkdir -p "$SCALING_DIR"
    RUN=(--data "$T/d.h5" --layers 16,512,512,4 --batch 128 --epochs 1 --max-steps 150 --quiet)
    ns_mpirun -np 1 --host 10.213.0.1 "${MPI_NET[@]}" "$DPTRAIN" train "${RUN[@]}" \
        --metrics "$SCALING_DIR/n1-r1-t1.jsonl" </dev/null
    ns_mpirun -np 2 --host 10.213.0.1,10.213.0.2 "${MPI_NET[@]}" "$DPTRAIN" train "${RUN[@]}" \
        --metrics "$SCALING_DIR/n2-r1-t1.jsonl" </dev/null
    ns_mpirun -np 2 --host 10.213.0.1,10.213.0.2 "${MPI_NET[@]}" "$T/bench_allreduce" 30 \
        </dev/null > "$SCALING_DIR/allreduce.json"
    for i in 1 2; do
        ip netns exec "$PFX-n$i" tc qdisc add dev eth0 root tbf rate 1gbit burst 128kb latency 50ms
    done
    mkdir -p "$SCALING_DIR-1gbit"
    cp "$SCALING_DIR/n1-r1-t1.jsonl" "$SCALING_DIR-1gbit/"
    ns_mpirun -np 2 --host 10.213.0.1,10.213.0.2 "${MPI_NET[@]}" "$DPTRAIN" train "${RUN[@]}" \
        --metrics "$SCALING_DIR-1gbit/n2-r1-t1.jsonl" </dev/null
    ns_mpirun -np 2 --host 10.213.0.1,10.213.0.2 "${MPI_NET[@]}" "$T/bench_allreduce" 10 \
        </dev/null > "$SCALING_DIR-1gbit/allreduce.json"
    echo "scaling runs in $SCALING_DIR and $SCALING_DIR-1gbit"
fi
exit $rc
