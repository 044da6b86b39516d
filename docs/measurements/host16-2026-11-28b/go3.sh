#!/bin/bash
# Third device call (2026-11-28, sixth session): part CL.
cd "$(dirname "$0")/.." || exit 1
OUT=/tmp/o5 PARTS="CL" timeout 150 bash .dev/run17.sh > "$OUT/r17cl.txt" 2>&1
echo "rc=$?"; grep -v "^  [0-9] \|T product\|barrier\|^kernels" "$OUT/r17cl.txt" | cut -c1-260
