#!/bin/bash
# Second device call (2026-11-28, sixth session): the ceiling and profile parts, deterministic cost and bits.
cd "$(dirname "$0")/.." || exit 1
OUT=/tmp/o4 PARTS="CORES CEIL PROF2 E C D16 BIT" timeout 190 bash .dev/run17.sh > "$OUT/r17c.txt" 2>&1
echo "rc=$?"; grep -v "^  [0-9] \|T product\|barrier\|^kernels" "$OUT/r17c.txt" | cut -c1-260
