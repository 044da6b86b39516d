#!/bin/bash
# Issue 16 on the 16-core host, short: build (no PyTorch), then
#  1. stability: the same 1-thread and 16-thread commands 3 times each, plain
#     (no mpirun, no OMP_PROC_BIND: dptrain pins its threads), and 16 threads
#     once with OMP_PROC_BIND=false (unpinned);
#  2. deterministic mode's cost: 1 x 16 and 16 x 1 at global batch 1024;
#  3. deterministic bitwise: 1x16, 4x4, 16x1 models compared.
set -uo pipefail
D=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$D/.." && pwd)
O=${OUT:-/tmp/out}; mkdir -p "$O"
exec > >(tee "$O/log.txt") 2>&1
T0=$(date +%s)
lscpu | grep -E 'Model name|^CPU\(s\)|Thread\(s\)|Core\(s\)|L3'
mkdir -p /opt/inih && for f in "$D"/debs/libinih*.deb; do dpkg -x "$f" /opt/inih; done
if ! command -v pkg-config >/dev/null; then
  mkdir -p /opt/pkgconf; for f in "$D"/debs/*pkgconf*.deb; do dpkg -x "$f" /opt/pkgconf; done
  export PATH=/opt/pkgconf/usr/bin:$PATH
fi
PC=/opt/inih/usr/lib/x86_64-linux-gnu/pkgconfig
sed -i 's#^prefix=.*#prefix=/opt/inih/usr#' $PC/inih.pc
export PKG_CONFIG_PATH=$PC LD_LIBRARY_PATH=/opt/inih/usr/lib/x86_64-linux-gnu:/opt/pkgconf/usr/lib/x86_64-linux-gnu
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
B=/tmp/dpt-build
cmake -S "$ROOT" -B $B -DCMAKE_BUILD_TYPE=Release -DDPT_TESTS=OFF > "$O/cmake.txt" 2>&1 || { cat "$O/cmake.txt"; exit 1; }
cmake --build $B -j16 --target dptrain > "$O/build.txt" 2>&1 || { tail -40 "$O/build.txt"; exit 1; }
echo "built in $(( $(date +%s) - T0 )) s"
DPT=$B/dptrain
python3 - <<'EOF'
import numpy as np, h5py
r = np.random.default_rng(1)
with h5py.File('/tmp/rand.h5', 'w') as f:
    f.create_dataset('train/x', data=r.random((32768, 784), dtype=np.float32))
    f.create_dataset('train/y', data=r.integers(0, 10, 32768).astype(np.int32))
EOF
ARGS="--quiet --data /tmp/rand.h5 --layers 784,1024,1024,10 --hidden sigmoid --output softmax --cost cce --optimizer momentum --lr 0.1 --momentum 0.9 --batch 1024 --epochs 1000"
rate() { python3 -c "
import json
L=[json.loads(l) for l in open('$1') if l.strip()]
print(round(L[-1]['step']*1024/sum(x['epoch_s'] for x in L)))"; }
plain() {  # label threads steps [env...] -- [options]
  local lab=$1 T=$2 S=$3; shift 3
  local m=/tmp/p-$lab.jsonl; rm -f "$m"
  env OMP_NUM_THREADS=$T "$@" timeout 60 $DPT train $ARGS --max-steps $S --metrics "$m" </dev/null >/dev/null 2>"$O/$lab.err" \
    && echo "$lab T=$T: $(rate "$m") samples/s" || echo "$lab failed"
}
mp() {  # label ranks threads steps [options]
  local lab=$1 P=$2 T=$3 S=$4; shift 4
  local m=/tmp/m-$lab.jsonl; rm -f "$m"
  local map="--map-by core --bind-to core"; [ "$T" -gt 1 ] && map="--map-by slot:PE=$T --bind-to core"
  OMP_NUM_THREADS=$T timeout 60 mpirun -np $P $map -x LD_LIBRARY_PATH -x OMP_NUM_THREADS \
    $DPT train $ARGS --max-steps $S --metrics "$m" "$@" </dev/null >"$O/$lab.out" 2>&1 \
    && echo "$lab ${P}x$T: $(rate "$m") samples/s" || echo "$lab failed"
}
grep -h "rank 0 on" "$O"/*.out 2>/dev/null | head -1
for r in 1 2 3; do plain t1-$r 1 15; plain t16-$r 16 40; done
plain t16-unpinned 16 40 OMP_PROC_BIND=false
for r in 1 2; do
  mp def-1x16-$r 1 16 40; mp det-1x16-$r 1 16 40 --deterministic
  mp def-16x1-$r 16 1 40; mp det-16x1-$r 16 1 40 --deterministic
done
grep -h "pinned\|rank 0 on" "$O"/def-1x16-1.out | head -2
for L in 1x16 4x4 16x1; do
  P=${L%x*}; T=${L#*x}; mp bit-$L $P $T 10 --deterministic --save /tmp/bit-$L.h5
done
$DPT compare /tmp/bit-1x16.h5 /tmp/bit-4x4.h5; echo "compare 1x16 4x4: $?"
$DPT compare /tmp/bit-1x16.h5 /tmp/bit-16x1.h5; echo "compare 1x16 16x1: $?"
echo "all done at $(( $(date +%s) - T0 )) s"
