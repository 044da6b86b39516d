#!/bin/bash
# build/bench_update (the update split flat against split by units, alternating in one process) again
# and again for SECS seconds, each call between two readings of the cores' round trip (ns).
cd "$(dirname "$0")/../../.."
rt() { build/core_latency | sed 's/.*round trip \([0-9]*\) ns.*/\1/'; }
end=$((SECONDS + ${SECS:-300}))
while [ $SECONDS -lt $end ]; do
  for args in ${ARGS:-"10:40:momentum" "10:40:adam" "128:40:momentum"}; do
    IFS=: read -r b n o l <<<"$args"
    a=$(rt)
    r=$(OMP_NUM_THREADS=${T:-2} OMP_PROC_BIND=close OMP_PLACES=cores build/bench_update $b $n $o $l)
    echo "rt $a $(rt) $r"
  done
done
