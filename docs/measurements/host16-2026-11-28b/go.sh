#!/bin/bash
# One device call (2026-11-28, sixth session): run17 parts CEIL PROF2 E, the scaling study, then NT MC PK.
cd "$(dirname "$0")/.." || exit 1
R=$OUT; T0=$(date +%s)
OUT=/tmp/o2 PARTS="CEIL PROF2 E" timeout 110 bash .dev/run17.sh > "$R/r17a.txt" 2>&1
echo "r17a rc=$? at $(( $(date +%s) - T0 )) s"
OUT=/tmp/o1 timeout 300 bash .dev/scaling16.sh > "$R/s16.txt" 2>&1
echo "s16 rc=$? at $(( $(date +%s) - T0 )) s"; cp /tmp/o1/results.jsonl "$R/s16.jsonl" 2>/dev/null
OUT=/tmp/o3 PARTS="NT MC PK" timeout $(( 500 - ($(date +%s) - T0) )) bash .dev/run17.sh > "$R/r17b.txt" 2>&1
echo "r17b rc=$? at $(( $(date +%s) - T0 )) s"
grep -h "samples/s\|copies\|compare\|GFLOP\|==\|peak" "$R/r17a.txt" "$R/r17b.txt" | cut -c1-230
