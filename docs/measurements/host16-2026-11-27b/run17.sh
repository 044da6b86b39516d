#!/bin/bash
# 16-core host, one short pass (2026-11-27):
#  A. issue 16: 1 rank x T threads vs PyTorch (its own BLAS) at T = 1..16, batch 1024, two rounds;
#  B. issue 12: strong (1024) and weak (128/rank) at 1 and 16 ranks, phases; DDP at 1 and 16;
#  C. the node's ceiling: 16 independent 1-thread processes (no MPI traffic), one per core,
#     batch 64 and 128, against one alone: compute per step;
#  D. deterministic vs default, 16 x 1 and 1 x 16 (2 interleaved rounds); E. 1-thread repeat x3.
set -uo pipefail
D=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$D/.." && pwd)
O=${OUT:-/tmp/out}; mkdir -p "$O"
exec > >(tee "$O/log.txt") 2>&1
T0=$(date +%s)
lscpu | grep -E 'Model name|^CPU\(s\)|Thread\(s\)|Core\(s\)|L3|MHz'
mkdir -p /opt/inih && for f in "$D"/debs/libinih*.deb; do dpkg -x "$f" /opt/inih; done
if ! command -v pkg-config >/dev/null; then
  mkdir -p /opt/pkgconf; for f in "$D"/debs/*pkgconf*.deb; do dpkg -x "$f" /opt/pkgconf; done
  export PATH=/opt/pkgconf/usr/bin:$PATH
fi
PC=/opt/inih/usr/lib/x86_64-linux-gnu/pkgconfig
sed -i 's#^prefix=.*#prefix=/opt/inih/usr#' $PC/inih.pc
export PKG_CONFIG_PATH=$PC LD_LIBRARY_PATH=/opt/inih/usr/lib/x86_64-linux-gnu:/opt/pkgconf/usr/lib/x86_64-linux-gnu
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
B=/tmp/dpt-build; pids=()
cmake -S "$ROOT" -B $B -DCMAKE_BUILD_TYPE=Release -DDPT_TESTS=OFF > "$O/cmake.txt" 2>&1 || { cat "$O/cmake.txt"; exit 1; }
cmake --build $B -j16 --target dptrain > "$O/build.txt" 2>&1 || { tail -40 "$O/build.txt"; exit 1; }
echo "built in $(( $(date +%s) - T0 )) s"
DPT=$B/dptrain; $DPT --version | head -3
python3 - <<'EOF'
import numpy as np, h5py
r = np.random.default_rng(1)
with h5py.File('/tmp/rand.h5', 'w') as f:
    f.create_dataset('train/x', data=r.random((32768, 784), dtype=np.float32))
    f.create_dataset('train/y', data=r.integers(0, 10, 32768).astype(np.int32))
EOF
NET="--quiet --data /tmp/rand.h5 --layers 784,1024,1024,10 --hidden sigmoid --output softmax --cost cce --optimizer momentum --lr 0.1 --momentum 0.9 --epochs 1000"
rate() { python3 -c "
import json
L=[json.loads(l) for l in open('$1') if l.strip()]; t=L[-1]['time']; s=L[-1]['step']
p=' (fwd %.2f wgrad %.2f igrad %.2f)' % tuple(1e3*t[k]['mean']/s for k in ('forward_products','weight_gradients','input_gradients')) if 'forward_products' in t else ''
mm=' [over ranks, min-max: compute %.2f-%.2f reduce %.2f-%.2f]' % tuple(1e3*t[k][m]/s for k in ('compute','allreduce') for m in ('min','max')) if L[-1]['ranks'] > 1 else ''
print('%d samples/s; per step ms: compute %.2f%s reduce %.2f update %.2f%s' % (round(s*$2/sum(x['epoch_s'] for x in L)), 1e3*t['compute']['mean']/s, p, 1e3*t['allreduce']['mean']/s, 1e3*t['update']['mean']/s, mm))"; }
plain() {  # label threads batch steps [options]
  local lab=$1 T=$2 Bt=$3 S=$4; shift 4; local m=/tmp/p-$lab.jsonl; rm -f "$m"
  OMP_NUM_THREADS=$T timeout 60 ${PIN:-} $DPT train $NET --batch $Bt --max-steps $S --metrics "$m" "$@" </dev/null >/dev/null 2>"$O/$lab.err" \
    && echo "$lab T=$T B=$Bt: $(rate "$m" $Bt)" || echo "$lab failed"; }
mp() {  # label ranks threads batch steps [options]
  local lab=$1 P=$2 T=$3 Bt=$4 S=$5; shift 5; local m=/tmp/m-$lab.jsonl; rm -f "$m"
  local map="--map-by core --bind-to core"; [ "$T" -gt 1 ] && map="--map-by slot:PE=$T --bind-to core"
  OMP_NUM_THREADS=$T timeout 60 mpirun -np $P $map -x LD_LIBRARY_PATH -x OMP_NUM_THREADS $DPT train $NET \
    --batch $Bt --max-steps $S --metrics "$m" "$@" </dev/null >"$O/$lab.out" 2>&1 \
    && echo "$lab ${P}x$T B=$Bt: $(rate "$m" $Bt)" || echo "$lab failed"; }
torch_threads() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE timeout 90 python3 - <<'EOF'
import time, torch
cfg = torch.__config__.show()
print("torch", torch.__version__, "MKL" if "USE_MKL=ON" in cfg else "", "BLAS_INFO=" + next((l.split("BLAS_INFO=")[1].split(",")[0] for l in cfg.splitlines() if "BLAS_INFO=" in l), "?"))
for th in (1, 2, 4, 8, 16):
    torch.set_num_threads(th); torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.Sigmoid(), torch.nn.Linear(1024, 1024),
                              torch.nn.Sigmoid(), torch.nn.Linear(1024, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9); lf = torch.nn.CrossEntropyLoss()
    X = torch.rand(8192, 784); Y = torch.randint(0, 10, (8192,))
    def step(i):
        j = (i % 8) * 1024
        opt.zero_grad(); lf(net(X[j:j + 1024]), Y[j:j + 1024]).backward(); opt.step()
    for i in range(3): step(i)
    t0 = time.perf_counter(); n = 0
    while time.perf_counter() - t0 < 2.5: step(n); n += 1
    print("torch T=%d B=1024: %d samples/s" % (th, round(n * 1024 / (time.perf_counter() - t0))), flush=True)
EOF
}
# The four calls made on 2026-11-27: PARTS="A B ddp" (the DDP line then failed on an unquoted $d,
# fixed below), PARTS="A2 ddp C" (C's 16 concurrent singletons hung: cut at the 420 s limit),
# PARTS="D E" ROUNDS_D=1, PARTS="F"; after the sliced fixed-point conversion: PARTS="D16 BIT".
part_A() {
echo "== A. threads (1 rank) vs PyTorch, batch 1024 (t=$(( $(date +%s) - T0 )))"
for r in 1 2; do
  for T in 1 2 4 8 16; do S=40; [ $T -le 2 ] && S=15; plain thr$r-$T $T 1024 $S; done
  torch_threads
done
}
part_B() {
echo "== B. scaling, one thread per rank (t=$(( $(date +%s) - T0 )))"
mp strong-1 1 1 1024 15; mp strong-16 16 1 1024 60; mp weak-1 1 1 128 100; mp weak-16 16 1 2048 100
mp strong-16-mpi 16 1 1024 60 --reduce mpi
}
part_A2() {
echo "== A2. micro-kernel avx512 vs avx2, 1 rank (t=$(( $(date +%s) - T0 )))"
for r in 1 2; do
  for K in avx512 avx2; do
    DPT_KERNEL=$K plain k$r-$K-1 1 1024 15; DPT_KERNEL=$K plain k$r-$K-8 8 1024 40; DPT_KERNEL=$K plain k$r-$K-16 16 1024 40
  done
done
DPT_KERNEL=avx2 mp strong16-avx2 16 1 1024 60; mp strong16-avx512 16 1 1024 60
}
part_ddp() {
sed '/# single process, threads/,$d' "$D/ddp_cpu_scaling.py" > /tmp/ddp_short.py
cd /tmp && PS=1,16 OPENBLAS_NUM_THREADS=1 timeout 100 python3 ddp_short.py 2>"$O/ddp.err" | sed "s/^/ddp /"; cd "$ROOT"
}
part_C() {
echo "== C. ceiling: independent processes, one per core (t=$(( $(date +%s) - T0 )))"
for Bt in 64 128; do
  plain alone-$Bt 1 $Bt 100
  for i in $(seq 0 15); do
    OMP_NUM_THREADS=1 taskset -c $i timeout 60 $DPT train $NET --batch $Bt --max-steps 100 --metrics /tmp/c-$Bt-$i.jsonl </dev/null >/dev/null 2>&1 & pids+=($!)
  done; wait "${pids[@]}"; pids=()   # (a bare wait also waits for the log's tee: the hang of 2026-11-27)
  python3 -c "
import json, statistics as st
v=[]
for i in range(16):
    L=[json.loads(l) for l in open('/tmp/c-$Bt-%d.jsonl' % i) if l.strip()]; v.append(1e3*L[-1]['time']['compute']['mean']/L[-1]['step'])
print('16 copies B=$Bt: compute ms/step median %.2f min %.2f max %.2f' % (st.median(v), min(v), max(v)))"
done
}
part_D() {
echo "== D. deterministic vs default (t=$(( $(date +%s) - T0 )))"
for r in $(seq ${ROUNDS_D:-2}); do
  mp def16-$r 16 1 1024 40; mp det16-$r 16 1 1024 40 --deterministic
  mp def1x16-$r 1 16 1024 40; mp det1x16-$r 1 16 1024 40 --deterministic
done
}
part_E() {
echo "== E. the same 1-thread command three times (t=$(( $(date +%s) - T0 )))"
for r in 1 2 3; do plain rep-$r 1 1024 15; done
}
part_F() {
echo "== F. 1 thread: core 0 (default pin) vs core 9 vs unpinned"
for r in 1 2; do
  plain f$r-pin0 1 1024 15; taskset -c 9 bash -c "true" && { OMP_NUM_THREADS=1 taskset -c 9 $DPT train $NET --batch 1024 --max-steps 15 --metrics /tmp/f9-$r.jsonl </dev/null >/dev/null 2>&1; echo "f$r-core9: $(rate /tmp/f9-$r.jsonl 1024)"; }
  OMP_PROC_BIND=false plain f$r-unpinned 1 1024 15
done
}
part_D16() {
echo "== D16. deterministic vs default after the sliced conversion (t=$(( $(date +%s) - T0 )))"
for r in 1 2; do mp def16-$r 16 1 1024 40; mp det16-$r 16 1 1024 40 --deterministic; done
mp def1x16 1 16 1024 40; mp det1x16 1 16 1024 40 --deterministic
}
part_BIT() {
echo "== BIT. deterministic models bitwise across layouts (t=$(( $(date +%s) - T0 )))"
for L in 1x16 4x4 16x1; do P=${L%x*}; T=${L#*x}; mp bit-$L $P $T 1024 10 --deterministic --save /tmp/bit-$L.h5; done
$DPT compare /tmp/bit-1x16.h5 /tmp/bit-4x4.h5; echo "compare 1x16 4x4: $?"
$DPT compare /tmp/bit-1x16.h5 /tmp/bit-16x1.h5; echo "compare 1x16 16x1: $?"
}
# Added after that run, for the next one (not yet run): PARTS="W" measures the AVX-512
# in-place forward kernel (off by default until this says it is faster) against the packed
# path, and checks that both give the same model.
part_W() {
echo "== W. forward product with W in place (DPT_W_IN_PLACE=1) vs packed (0) (t=$(( $(date +%s) - T0 )))"
DPT_W_IN_PLACE=1 $DPT --version | grep kernels
for r in 1 2; do
  for w in 0 1; do
    export DPT_W_IN_PLACE=$w
    plain w$r-$w-1x1 1 1024 15; plain w$r-$w-1x1-b128 1 128 60; plain w$r-$w-1x16 16 1024 40
    mp w$r-$w-16x1 16 1 1024 60
  done
done
DPT_W_IN_PLACE=0 plain wbit-0 1 128 20 --save /tmp/wbit-0.h5; DPT_W_IN_PLACE=1 plain wbit-1 1 128 20 --save /tmp/wbit-1.h5
unset DPT_W_IN_PLACE
$DPT compare /tmp/wbit-0.h5 /tmp/wbit-1.h5; echo "compare W packed / in place: $?"
}
# Added 2026-11-27 (later session), not yet run: PARTS="WP" measures W kept packed once per
# node (DPT_WPACK=1, the default from 2 ranks on a node for the transposed copy, 4 for the
# plain one) against every rank packing W in its products (DPT_WPACK=0), and checks the bits.
ab() {  # VAR TAG: 16 x 1 strong and weak, 4 x 4, with VAR=0 and VAR=1 interleaved, twice
  local var=$1 tag=$2
  for r in 1 2; do
    for v in 0 1; do
      export "$var=$v"
      mp $tag$r-$v-16x1 16 1 1024 60; mp $tag$r-$v-16x1-weak 16 1 2048 40; mp $tag$r-$v-4x4 4 4 1024 60
    done
  done
  unset "$var"
}
part_WP() {
echo "== WP. W packed once per node (DPT_WPACK=1) vs per rank and product (0) (t=$(( $(date +%s) - T0 )))"
ab DPT_WPACK wp
for w in 0 1; do DPT_WPACK=$w mp wpbit-$w 16 1 1024 10 --deterministic --save /tmp/wpbit-$w.h5; done
unset DPT_WPACK
$DPT compare /tmp/wpbit-0.h5 /tmp/wpbit-1.h5; echo "compare WPACK 0 / 1: $?"
}
# PARTS="PROF": where a rank's compute goes when 16 ranks share the node (the products' own
# clock, printed by rate() as fwd/wgrad/igrad): one rank alone at 64 and 128 rows, then 16 ranks
# at the same rows each, with and without the node's packed W.
part_PROF() {
echo "== PROF. products per step, 1 rank alone vs 16 ranks (t=$(( $(date +%s) - T0 )))"
for r in 1 2; do
  plain prof$r-solo64 1 64 120; plain prof$r-solo128 1 128 80
  mp prof$r-16x64 16 1 1024 60; mp prof$r-16x128 16 1 2048 40
  DPT_WPACK=0 mp prof$r-16x64-wp0 16 1 1024 60
done
}
# Added 2026-11-27 (third session), not yet run: PARTS="SL" measures the node-sliced weight
# gradient (DPT_SLICED=1, the default from 4 ranks on a node, 2 in deterministic mode: each rank computes its units' rows
# of dW over the node's rows; no partial gradients written or summed) against the shared-memory
# reduction of whole per-rank gradients (DPT_SLICED=0), and checks that default-mode training on
# 16 ranks gives one rank's bits (a 512-row step: one pass on one rank).
part_SL() {
echo "== SL. node-sliced weight gradient (DPT_SLICED=1) vs per-rank gradients summed (0) (t=$(( $(date +%s) - T0 )))"
ab DPT_SLICED sl
for r in 1 2; do for v in 0 1; do DPT_SLICED=$v mp sl$r-$v-16x1-det 16 1 1024 40 --deterministic; done; done
plain slbit-1 1 512 10 --save /tmp/slbit-1.h5; mp slbit-16 16 1 512 10 --save /tmp/slbit-16.h5
$DPT compare /tmp/slbit-1.h5 /tmp/slbit-16.h5; echo "compare 1 rank / 16 ranks, default mode: $?"
}
threads_ab() {  # VAR TAG ROUND: one process, 16, 8, 4, 2 threads, VAR=0 and VAR=1 interleaved
  local var=$1 tag=$2 r=$3
  for T in 16 8 4 2; do S=40; [ $T -le 2 ] && S=15
    for v in 0 1; do export "$var=$v"; plain $tag$r-$v-1x$T $T 1024 $S; done
  done
  unset "$var"
}
# Added 2026-11-27 (fourth session): PARTS="RS" measures a thread team taking the product's
# output rows thread by thread (DPT_ROWSPLIT=1; not the default) against the team sharing each
# 128-row block's tiles (0), and checks the bits. (DPT_ROWSPLIT was removed on 2026-11-28:
# both halves now run the same code.)
part_RS() {
echo "== RS. rows split per thread (DPT_ROWSPLIT=1) vs tiles shared per block (0) (t=$(( $(date +%s) - T0 )))"
for r in 1 2; do
  threads_ab DPT_ROWSPLIT rs $r
  for v in 0 1; do export DPT_ROWSPLIT=$v; mp rs$r-$v-4x4 4 4 1024 60; mp rs$r-$v-2x8 2 8 1024 60; done
  unset DPT_ROWSPLIT
done
torch_threads
for v in 0 1; do DPT_ROWSPLIT=$v plain rsbit-$v 16 1024 10 --save /tmp/rsbit-$v.h5; DPT_ROWSPLIT=$v plain rsdet-$v 16 1024 10 --deterministic --save /tmp/rsdet-$v.h5; done
$DPT compare /tmp/rsbit-0.h5 /tmp/rsbit-1.h5; echo "compare ROWSPLIT 0 / 1: $?"
$DPT compare /tmp/rsdet-0.h5 /tmp/rsdet-1.h5; echo "compare ROWSPLIT 0 / 1, deterministic: $?"
}
# Added 2026-11-27 (fourth session), not yet run: PARTS="TH" measures where a team of threads
# loses time in one product (tools/bench/bench_threads.c): barrier and fork/join costs, each
# product shared / by rows, against its 1/T share on one thread alone, at 1-16 threads.
part_TH() {
echo "== TH. threads in one product (t=$(( $(date +%s) - T0 )))"
cmake --build $B -j16 --target bench_threads > "$O/build-th.txt" 2>&1 || { tail -20 "$O/build-th.txt"; return; }
for r in 1 2; do OMP_PROC_BIND=close OMP_PLACES=cores timeout 120 $B/bench_threads 1024 9 1 2 4 8 16; done
OMP_PROC_BIND=close OMP_PLACES=cores timeout 60 $B/bench_threads 128 15 1 4 16
}
# Added 2026-11-28: PARTS="TM2" measures threads as ranks (DPT_TEAM=1: one parallel region a
# pass, each thread its rows, then its units of the weight gradient) against threads sharing
# each product (0), one process at 2-16 threads, batch 256/512/1024 and deterministic, PyTorch's
# threads in the same call, and checks the bits. (It replaced a part TM, never run, that had
# 2 x 8 in place of batch 512: node-sliced there, so DPT_TEAM changes nothing.) (Run 21, 2026-11-28, also ran one round of part TH's bench_threads at its end.)
part_TM2() {
echo "== TM2. threads as ranks (DPT_TEAM=1) vs sharing each product (0) (t=$(( $(date +%s) - T0 )))"
for r in 1 2; do
  threads_ab DPT_TEAM tm $r
  for v in 0 1; do DPT_TEAM=$v plain tm$r-$v-1x16-b256 16 256 80; DPT_TEAM=$v plain tm$r-$v-1x16-b512 16 512 60; done
  for v in 0 1; do DPT_TEAM=$v plain tm$r-$v-1x16-det 16 1024 40 --deterministic; done
  [ $r = 1 ] && torch_threads
done
for v in 0 1; do DPT_TEAM=$v plain tmbit-$v 16 1024 10 --save /tmp/tmbit-$v.h5; DPT_TEAM=$v plain tmdet-$v 16 1024 10 --deterministic --save /tmp/tmdet-$v.h5; done
$DPT compare /tmp/tmbit-0.h5 /tmp/tmbit-1.h5; echo "compare TEAM 0 / 1: $?"
$DPT compare /tmp/tmdet-0.h5 /tmp/tmdet-1.h5; echo "compare TEAM 0 / 1, deterministic: $?"
}
# Added 2026-11-28: PARTS="PK": one core's FMA peak (zmm and ymm, 24 / 12 independent
# accumulators; docs/measurements/host16-2026-11-28/fma_peak.c), the CPU's AVX-512 flags,
# our products on one thread (bench_threads, avx512 and avx2 kernels), and PyTorch's (MKL)
# sgemm on the same shapes on one thread: is one core's gap to MKL in the kernel or the peak?
part_PK() {
echo "== PK. one core: FMA peak, our products, MKL's (t=$(( $(date +%s) - T0 )))"
grep -o 'avx512[a-z_0-9]*\|amx[a-z_0-9]*\|avx_vnni' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq 2>/dev/null; grep -m1 MHz /proc/cpuinfo
gcc -O2 -o /tmp/fma_peak "$ROOT/docs/measurements/host16-2026-11-28/fma_peak.c" && taskset -c 5 /tmp/fma_peak
cmake --build $B -j16 --target bench_threads > "$O/build-th.txt" 2>&1 || { tail -20 "$O/build-th.txt"; return; }
for k in avx512 avx2 avx512; do DPT_KERNEL=$k OMP_PROC_BIND=close OMP_PLACES=cores taskset -c 5 timeout 60 $B/bench_threads 1024 7 1; done
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c 5 timeout 60 python3 - <<'PY'
import time, torch
torch.set_num_threads(1)
for (m, k, n) in ((1024, 784, 1024), (1024, 1024, 1024), (784, 1024, 1024)):
    a = torch.rand(m, k); b = torch.rand(k, n)
    for _ in range(3): torch.mm(a, b)
    t0 = time.perf_counter(); r = 0
    while time.perf_counter() - t0 < 1.5: torch.mm(a, b); r += 1
    print("torch mm %dx%dx%d 1 thread: %.1f GFLOP/s" % (m, k, n, 2 * m * k * n * r / (time.perf_counter() - t0) / 1e9), flush=True)
PY
# (added in a later session, 2026-11-28) the whole 1-thread step, three times on one core
# (the products' own clocks), then on core 9, on core 0 (where a plain run pins its one
# thread: the first CPU), unpinned (OMP_PROC_BIND=false: the OS places it, as PyTorch's),
# then with the in-place forward kernel
for r in 1 2 3; do PIN="taskset -c 5" plain pk1-$r 1 1024 20; done
PIN="taskset -c 9" plain pk1-core9 1 1024 20
PIN="taskset -c 0" plain pk1-core0 1 1024 20
OMP_PROC_BIND=false plain pk1-free 1 1024 20
DPT_W_IN_PLACE=1 PIN="taskset -c 5" plain pk1-wip 1 1024 20
# AVX-512 reads W in place in the forward product up to 32 rows by default (since 2026-11-28,
# from 2-core figures): the default against the packed path at 32 rows, one core, twice
for r in 1 2; do PIN="taskset -c 5" plain pk32-$r 1 32 300; DPT_W_IN_PLACE=0 PIN="taskset -c 5" plain pk32-packed-$r 1 32 300; done
}
# Added 2026-11-28 (later): PARTS="MC": the rows of A a block (MC), chosen from the L2 since
# then (an eighth of it: 256 rows with 2 MiB; 128 before): 1 and 16 threads at batch 1024,
# and 64 rows a thread (16 x batch 64 = 1024 on one process), MC 128 / 256 / 1024, twice
part_MC() {
echo "== MC. rows of A a block (t=$(( $(date +%s) - T0 )))"
$DPT --version | sed -n 3p
for r in 1 2; do for mc in 128 256 1024; do
  DPT_MC=$mc plain mc$r-$mc-1 1 1024 15; DPT_MC=$mc plain mc$r-$mc-16 16 1024 40
done; done
}
# Added 2026-11-28 (fourth session): PARTS="NT": the node's team for the forward products and
# the hidden layers' errors (DPT_NTEAM=1: each rank its units over all the node's rows; the
# default where a rank has at most 64 rows) against each rank its own rows (0): 16 x 1 at global
# 1024 (64 a rank) and 512 (32), 8 x 1 at 1024 (128), 16 x 1 at 2048 (128 a rank: the weak
# study's layout; added 2026-11-28, fifth session), two rounds; and the bits against one rank.
part_NT() {
echo "== NT. the node's team (DPT_NTEAM) (t=$(( $(date +%s) - T0 )))"
for r in 1 2; do for v in 0 1; do
  DPT_NTEAM=$v mp nt$r-$v-16x1-b1024 16 1 1024 40; DPT_NTEAM=$v mp nt$r-$v-16x1-b512 16 1 512 60
  DPT_NTEAM=$v mp nt$r-$v-8x1-b1024 8 1 1024 40; DPT_NTEAM=$v mp nt$r-$v-16x1-b2048 16 1 2048 30
done; done
plain ntbit-1 1 512 10 --save /tmp/ntbit-1.h5; DPT_NTEAM=1 mp ntbit-16 16 1 512 10 --save /tmp/ntbit-16.h5
$DPT compare /tmp/ntbit-1.h5 /tmp/ntbit-16.h5; echo "compare 1 rank / 16 ranks with the team, default mode: $?"
}
# Added 2026-11-28 (sixth session): PARTS="CEIL": the node's ceiling for the products without
# MPI (part C's 16 singletons hung in MPI_Init): bench_threads on one thread, batch 64 and 128
# (16 x 1's rows a rank at global 1024 and 2048), alone on core 5, then 16 copies at once, one
# on each core: the sum of the five products' ms a step, alone vs each copy (median, min, max).
part_CEIL() {
echo "== CEIL. products on one core alone vs 16 copies at once (t=$(( $(date +%s) - T0 )))"
cmake --build $B -j16 --target bench_threads > "$O/build-th.txt" 2>&1 || { tail -20 "$O/build-th.txt"; return; }
for Bt in 64 128; do
  OMP_PROC_BIND=close OMP_PLACES=cores taskset -c 5 timeout 60 $B/bench_threads $Bt 101 1 > /tmp/ceil-alone-$Bt.txt
  for i in $(seq 0 15); do
    OMP_PROC_BIND=close OMP_PLACES=cores taskset -c $i timeout 60 $B/bench_threads $Bt 101 1 > /tmp/ceil-$Bt-$i.txt & pids+=($!)
  done; wait "${pids[@]}"; pids=()
  python3 -c "
import statistics as st
def prods(f):
    return [float(l.split()[3]) for l in open(f) if l.split()[1:2] and l.split()[1] in ('forward', 'wgrad', 'igrad')]
a = prods('/tmp/ceil-alone-$Bt.txt'); c = [sum(prods('/tmp/ceil-$Bt-%d.txt' % i)) for i in range(16)]
print('batch $Bt: five products alone %.2f ms (%s); 16 copies each: median %.2f min %.2f max %.2f ms -> alone/copy %.2f' % (sum(a), ' '.join('%.2f' % x for x in a), st.median(c), min(c), max(c), sum(a) / st.median(c)))"
done
}
# PARTS="CORES": each core alone, one after the other: the five products at batch 128 (ms),
# to see whether the cores run at one speed (a rank on a slow core holds up the node's step).
part_CORES() {
echo "== CORES. the five products at batch 128 on each core alone (t=$(( $(date +%s) - T0 )))"
cmake --build $B -j16 --target bench_threads > "$O/build-th.txt" 2>&1 || { tail -20 "$O/build-th.txt"; return; }
for i in $(seq 0 $(( $(nproc) - 1 ))); do
  OMP_PROC_BIND=close OMP_PLACES=cores taskset -c $i timeout 30 $B/bench_threads 128 41 1 > /tmp/core-$i.txt
  echo "core $i: $(awk '$2 ~ /^(forward|wgrad|igrad)$/ { s += $4 } END { printf "%.2f ms", s }' /tmp/core-$i.txt)"
done
}
# PARTS="PROF2": part PROF's runs with the spread over ranks (rate() prints min-max since the
# sixth session of 2026-11-28): where 16 ranks' step goes, against one rank alone.
part_PROF2() {
echo "== PROF2. 1 rank alone vs 16 ranks, spread over ranks (t=$(( $(date +%s) - T0 )))"
plain prof-solo64 1 64 120; plain prof-solo128 1 128 80
mp prof-16x64 16 1 1024 60; mp prof-16x128 16 1 2048 40
mp prof-16x64-mpi 16 1 1024 60 --reduce mpi
}
# Added 2026-11-28 (sixth session): PARTS="CL": the weight gradient's units claimed in turns
# (DPT_CLAIM=1, the default since 6abb67e) against fixed shares (0), 16 x 1 at global 1024 and
# 2048 (the node's team now off there by its rule) and 1 x 16 (threads as ranks), interleaved,
# twice; the bits with claims (deterministic 16 x 1 = 1 x 16; default 16 x 1 = 1 x 1 at 512);
# then weak and strong at 1 and 16 ranks for the efficiencies.
part_CL() {
echo "== CL. claimed units (DPT_CLAIM) (t=$(( $(date +%s) - T0 )))"
for r in 1 2; do for v in 1 0; do
  DPT_CLAIM=$v mp cl$r-$v-16x1-b1024 16 1 1024 40; DPT_CLAIM=$v mp cl$r-$v-16x1-b2048 16 1 2048 30
  DPT_CLAIM=$v plain cl$r-$v-1x16-b1024 16 1024 40
done; done
mp clbit-det16 16 1 1024 10 --deterministic --save /tmp/clbit-det16.h5; plain clbit-det1x16 16 1024 10 --deterministic --save /tmp/clbit-det1x16.h5
$DPT compare /tmp/clbit-det16.h5 /tmp/clbit-det1x16.h5; echo "compare det 16 x 1 / 1 x 16: $?"
mp clbit-16 16 1 512 10 --save /tmp/clbit-16.h5; plain clbit-1 1 512 10 --save /tmp/clbit-1.h5
$DPT compare /tmp/clbit-16.h5 /tmp/clbit-1.h5; echo "compare default 16 x 1 / 1 x 1: $?"
mp clweak-1 1 1 128 100; mp clweak-16 16 1 2048 100; mp clstrong-1 1 1 1024 15; mp clstrong-16 16 1 1024 60
}
# Added 2026-11-28 (sixth session), not yet run: PARTS="CL4" (with weighted rows, DPT_WROWS): what the sixth session's rules chose
# without a measurement on this host: claimed units at 4 and 8 ranks (on by default from 4 ranks a
# node) and the node's team at 4 ranks and 64 rows a rank (on there by the floats rule; measured
# on 2 and 16 ranks only), interleaved, twice; run part CORES first to see the cores' speeds.
part_CL4() {
echo "== CL4. claims at 4 and 8 ranks, the team at 4 (t=$(( $(date +%s) - T0 )))"
for r in 1 2; do
  for v in 1 0; do
    DPT_CLAIM=$v mp cl4$r-$v-4x1-b1024 4 1 1024 30; DPT_CLAIM=$v mp cl4$r-$v-8x1-b1024 8 1 1024 40
    DPT_CLAIM=$v mp cl4$r-$v-4x4-b1024 4 4 1024 40
  done
  for v in 1 0; do DPT_NTEAM=$v mp nt4$r-$v-4x1-b256 4 1 256 100; DPT_NTEAM=$v mp nt4$r-$v-4x1-b128 4 1 128 150; done
  # weighted rows (DPT_WROWS=1, on request since 4160bba): do the host's slow cores stay slow?
  for v in 1 0; do DPT_WROWS=$v mp wr$r-$v-16x1-b1024 16 1 1024 60; DPT_WROWS=$v mp wr$r-$v-16x1-b2048 16 1 2048 40; done
done
mp wrbit-16 16 1 1024 20 --save /tmp/wrbit-16.h5; DPT_WROWS=1 mp wrbit-16w 16 1 1024 20 --save /tmp/wrbit-16w.h5
$DPT compare /tmp/wrbit-16.h5 /tmp/wrbit-16w.h5; echo "compare even / weighted rows: $?"
}
# Added 2026-11-28 (seventh session), not yet run: PARTS="LOOP": each thread's A panel held in
# L1 across B panels of its own (DPT_LOOP=a, the default with AVX-512 since dbde580; on the
# 2-core Xeon 1.06-1.20x at batch 1024 on one thread) against a B panel held across all A panels
# (b, the loop before): 1 x 1, 1 x 4, 1 x 16 and 16 x 1 at batch 1024, interleaved, twice; then
# PyTorch's threads in the same minutes.
part_LOOP() {
echo "== LOOP. A panel / B panel in L1 (DPT_LOOP) (t=$(( $(date +%s) - T0 )))"
$DPT --version | sed -n 4p
for r in 1 2; do for v in a b; do
  DPT_LOOP=$v plain lp$r-$v-1 1 1024 15; DPT_LOOP=$v plain lp$r-$v-4 4 1024 30
  DPT_LOOP=$v plain lp$r-$v-16 16 1024 40; DPT_LOOP=$v mp lp$r-$v-16x1 16 1 1024 40
done; done
torch_threads
}
# Added 2026-11-29 (later, on a 2-core AMD EPYC Zen 4 VM), not yet run: PARTS="WU": the weight
# gradient on a team split by units (gemm_rows, the default where each thread gets 8 panels of 8
# units or the product has at most 16 rows) against the split by B panels before it
# (DPT_WGRAD_UNITS=0): 1 x 2, 1 x 4 and 1 x 16 at batch 32, 128 and 256 (threads as ranks are off
# below 32 rows a thread), interleaved, twice. On the 2-core VM 1.30-1.54x at batch 10, 1.01-1.11x
# at 32, 1.01-1.05x at 128, 0.99-1.02x at 256.
part_WU() {
echo "== WU. weight gradient split by units / by B panels (DPT_WGRAD_UNITS) (t=$(( $(date +%s) - T0 )))"
for r in 1 2; do for T in 2 4 16; do for Bt in 32 128 256; do for v in 1 0; do
  DPT_WGRAD_UNITS=$v plain wu$r-$v-$T-$Bt $T $Bt $(( 40 * 1024 / Bt ))
done; done; done; done
}
# Added 2026-11-29 (later still, on the 2-core AMD EPYC Zen 4 VM), not yet run: PARTS="UPD": the
# optimiser's update split by each layer's units (the default since d3cc4cd) against the flat split
# (DPT_UPDATE_UNITS=0): build/bench_update on 2, 4, 8, 16 threads at batch 10 and 128 (both splits in
# one process), then training 1 x 16 at batch 128 and 1024, interleaved, twice (threads as ranks are on
# there, so the default also packs W's copies inside the update, 378f79a; DPT_UPDATE_UNITS=0 packs them in
# a pass after it). On the VM: level with its two cores sharing a cache, the update 3.4-3.8x faster with
# them apart; with threads as ranks at 1 x 2 the update 1.15x faster.
part_UPD() {
echo "== UPD. update split by units / flat (DPT_UPDATE_UNITS) (t=$(( $(date +%s) - T0 )))"
cmake --build $B -j16 --target bench_update > "$O/build-upd.txt" 2>&1 || { tail -20 "$O/build-upd.txt"; return; }
for T in 2 4 8 16; do for Bt in 10 128; do
  OMP_NUM_THREADS=$T OMP_PROC_BIND=close OMP_PLACES=cores $B/bench_update $Bt 40
done; done
for r in 1 2; do for Bt in 128 1024; do for v in 1 0; do
  DPT_UPDATE_UNITS=$v plain upd$r-$v-16-$Bt 16 $Bt $(( 40 * 1024 / Bt ))
done; done; done
}
# The next call (written 2026-11-29; part LOOP checked on the 2-core Xeon, where its 16-rank rows
# cannot run): PARTS="LOOP A E B ddp D16 CORES" measures what issues 12 and 16 still lack on this
# host after the A-panel loop (threads against PyTorch + MKL at 1-16, the spread of one command,
# weak and strong scaling at 1 and 16 ranks with DDP, deterministic mode's cost, the cores' speeds);
# about five minutes by the durations of earlier calls. Then PARTS="WU UPD" (about two minutes).
for p in ${PARTS:-A B ddp C D E}; do "part_$p"; done
echo "all done at $(( $(date +%s) - T0 )) s"
