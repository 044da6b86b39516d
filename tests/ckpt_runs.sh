#!/bin/bash
# How runs own their checkpoints and stops, through the command line and
# mpiexec (each case failed before the fix it covers):
#  1. stops: one stop request arriving several times (SIGUSR1 to one rank, then
#     SIGTERM to every rank and a forwarded copy, as scancel and a batch script
#     send them) still ends in one checkpoint and status 75 (test_stop.c: a
#     repeat after --signal-grace ends the process at once); Ctrl-C or SIGTERM
#     to jobs/train-local.sh ends with 75;
#  1b. a checkpoint asked for while training goes on (SIGUSR2 to one rank;
#     --checkpoint-minutes): every rank writes after the same step, the run
#     ends as it would have, and resumes from it to the same model;
#  2. a checkpoint directory belongs to one run: a second, new run into it is
#     refused and deletes nothing; resuming an older checkpoint sets the newer
#     ones aside (kept, untouched); resuming with --epochs at or below the
#     checkpoint's does not overwrite it; leftover temporaries are removed;
#  3. resume and init checks: --cost must match the checkpoint; --init-from
#     checks output and cost as --layers does; a run stopped by --max-steps
#     and resumed follows the uninterrupted cosine schedule, bit for bit;
#  4. deterministic mode: one rank forced to the portable micro-kernel gives
#     the model of all ranks on it, and a resumed run keeps the checkpoint's;
#  5. output paths are checked before any training step.
# Usage: ckpt_runs.sh DPTRAIN MPIEXEC JOBS_DIR
set -u
DPTRAIN=$1
MPIEXEC=${2:-mpiexec}
JOBS=${3:-$(dirname "$0")/../jobs}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"
MPI=("$MPIEXEC" --oversubscribe --mca mpi_yield_when_idle 1)
make_dataset "$T"
ARGS=(--data "$T/d.h5" --layers 20,64,64,4 --hidden tanh --optimizer adam --lr 0.003 --batch 16 --deterministic --quiet)
same() { "$DPTRAIN" compare "$1" "$2" >/dev/null; }   # every parameter, bit for bit

# ---- 1. stops
"${MPI[@]}" -n 2 "$DPTRAIN" train "${ARGS[@]}" --epochs 2000 --checkpoint-dir "$T/st" --checkpoint-every 50 \
    --keep 1 </dev/null 2>"$T/st.err" &
job=$!
wait_until 60 has_ckpt "$T/st"
pids=$(rank_pids "$T/st")
p0=$(echo "$pids" | head -1)
kill -USR1 "$p0"
for p in $pids; do kill -TERM "$p"; done   # scancel: SIGTERM to every task ...
for p in $pids; do kill -TERM "$p"; done   # ... and srun's forwarded copy
wait $job
rc=$?
if [ "$rc" -ne 0 ] && grep -q "Exit code:    75" "$T/st.err" && [ "$(ckpts "$T/st" | wc -l)" -eq 1 ] \
   && "$DPTRAIN" info "$T/st/$(ckpts "$T/st")" >/dev/null && ! grep -q "Terminated\|signal 15" "$T/st.err"; then
    ok "one stop request sent five times (USR1, TERM x2 to each rank): status 75, one complete checkpoint"
else
    bad "repeated stop signals: status $rc, checkpoints: $(ckpts "$T/st" | tr '\n' ' ')"; head -5 "$T/st.err"
fi

(DPTRAIN=$DPTRAIN NP=2 exec "$JOBS/train-local.sh" "${ARGS[@]}" --epochs 2000 --checkpoint-dir "$T/loc" \
    --checkpoint-every 50 </dev/null >/dev/null 2>"$T/loc.err") &
job=$!
wait_until 60 has_ckpt "$T/loc"
kill -TERM $job; kill -INT $job
wait $job
rc=$?
if [ "$rc" -eq 75 ] && [ -z "$(ls "$T/loc" | grep '\.tmp\.')" ]; then
    ok "SIGTERM then Ctrl-C to jobs/train-local.sh: status 75, checkpoint $(ckpts "$T/loc" | tail -1)"
else
    bad "jobs/train-local.sh stopped: status $rc"; tail -5 "$T/loc.err"
fi

# ---- 1b. checkpoints asked for while training goes on (deterministic mode:
# a checkpoint written or not changes nothing in the model)
LEN=(--epochs 2000 --max-steps 60000)   # about 4 s on 2 cores
"${MPI[@]}" -n 2 "$DPTRAIN" train "${ARGS[@]}" "${LEN[@]}" --save "$T/ask-ref.h5" </dev/null
"${MPI[@]}" -n 2 "$DPTRAIN" train "${ARGS[@]}" "${LEN[@]}" --no-quiet --no-progress --checkpoint-dir "$T/usr2" \
    --keep 10 --save "$T/usr2.h5" </dev/null >"$T/usr2.out" 2>&1 &
job=$!
wait_until 60 lock_held "$T/usr2"
kill -USR2 "$(rank_pid "$T/usr2")"   # one rank of the two
wait $job
rc=$?
first=$(ckpts "$T/usr2" | head -1)
if [ "$rc" -eq 0 ] && [ "$(ckpts "$T/usr2" | wc -l)" -eq 2 ] && [ "$first" != ckpt-000060000.h5 ] \
   && grep -q "^checkpoint .*$first written after global step" "$T/usr2.out" && same "$T/ask-ref.h5" "$T/usr2.h5" \
   && "${MPI[@]}" -n 2 "$DPTRAIN" train "${ARGS[@]}" "${LEN[@]}" --checkpoint-dir "$T/usr2" \
          --resume "$T/usr2/$first" --save "$T/usr2-resumed.h5" </dev/null 2>/dev/null \
   && same "$T/ask-ref.h5" "$T/usr2-resumed.h5"; then
    ok "SIGUSR2 to one rank: every rank checkpoints ($first) and goes on (status 0, the uninterrupted model); resumed from it, the same model"
else
    bad "SIGUSR2: status $rc, checkpoints: $(ckpts "$T/usr2" | tr '\n' ' ')"; tail -5 "$T/usr2.out"
fi
(DPTRAIN=$DPTRAIN NP=2 exec "$JOBS/train-local.sh" "${ARGS[@]}" --epochs 2000 --checkpoint-dir "$T/loc2" \
    </dev/null >/dev/null 2>"$T/loc2.err") &
job=$!
wait_until 60 lock_held "$T/loc2"
kill -USR2 $job
wait_until 60 has_ckpt "$T/loc2"
got=$?
kill -TERM $job
wait $job
rc=$?
if [ "$got" -eq 0 ] && [ "$rc" -eq 75 ] && [ "$(ckpts "$T/loc2" | wc -l)" -eq 2 ]; then
    ok "SIGUSR2 to jobs/train-local.sh: a checkpoint ($(ckpts "$T/loc2" | head -1)) and training went on; SIGTERM then: 75"
else
    bad "SIGUSR2 to jobs/train-local.sh: checkpoint seen: $got, status $rc, checkpoints: $(ckpts "$T/loc2" | tr '\n' ' ')"
    tail -5 "$T/loc2.err"
    pkill -KILL -f "dptrain train .*$T/loc2"   # ranks the script's death left running
fi
"${MPI[@]}" -n 2 "$DPTRAIN" train "${ARGS[@]}" "${LEN[@]}" --checkpoint-dir "$T/min" --checkpoint-minutes 0.005 \
    --keep 100 --save "$T/min.h5" </dev/null
rc=$?
n=$(ckpts "$T/min" | wc -l)
all_load=1
for f in $(ckpts "$T/min"); do "$DPTRAIN" info "$T/min/$f" >/dev/null || all_load=0; done
if [ "$rc" -eq 0 ] && [ "$n" -ge 3 ] && [ "$all_load" = 1 ] && same "$T/ask-ref.h5" "$T/min.h5"; then
    ok "--checkpoint-minutes 0.005 (0.3 s): $n checkpoints, all complete, the uninterrupted model"
else
    bad "--checkpoint-minutes: status $rc, $n checkpoints (3 or more expected), all complete: $all_load"
fi

# ---- 2. one run per checkpoint directory
"$DPTRAIN" train "${ARGS[@]}" --epochs 1 --max-steps 50 --checkpoint-dir "$T/own" --checkpoint-every 10 --keep 10 \
    </dev/null
cp -r "$T/own" "$T/own.before"
out=$("$DPTRAIN" train "${ARGS[@]}" --seed 2 --epochs 1 --max-steps 30 --checkpoint-dir "$T/own" \
      --checkpoint-every 10 2>&1 </dev/null)
rc=$?
if [ "$rc" -eq 4 ] && printf '%s' "$out" | grep -q "holds checkpoints of another run" \
   && diff -r -x .dptrain.lock "$T/own" "$T/own.before" >/dev/null; then
    ok "a new run into a used directory is refused (status 4), nothing there changed"
else
    bad "new run into a used directory: status $rc: $out"; ls "$T/own"
fi
mkdir -p "$T/own/sub"; : > "$T/own/ckpt-000000060.h5.tmp.999"
out=$("$DPTRAIN" train "${ARGS[@]}" --epochs 1 --max-steps 40 --checkpoint-dir "$T/own" --checkpoint-every 10 \
      --keep 10 --resume "$T/own/ckpt-000000020.h5" 2>&1 </dev/null)
rc=$?
aside=$(ls -d "$T"/own/abandoned-000000020-* 2>/dev/null | head -1)
if [ "$rc" -eq 0 ] && [ -n "$aside" ] && [ "$(ckpts "$aside" | tr '\n' ' ')" = "ckpt-000000030.h5 ckpt-000000040.h5 ckpt-000000050.h5 " ] \
   && same "$aside/ckpt-000000050.h5" "$T/own.before/ckpt-000000050.h5" \
   && [ "$(ckpts "$T/own" | tr '\n' ' ')" = "ckpt-000000010.h5 ckpt-000000020.h5 ckpt-000000030.h5 ckpt-000000040.h5 " ] \
   && printf '%s' "$out" | grep -q "moved to" && printf '%s' "$out" | grep -q "removed .*tmp.999"; then
    ok "resuming step 20 of 50: the newer 30..50 set aside in $(basename "$aside") (unchanged), the branch writes 30, 40"
else
    bad "branch from an older checkpoint: status $rc: $out"; ls -R "$T/own"
fi
"$DPTRAIN" train "${ARGS[@]}" --epochs 2 --checkpoint-dir "$T/done" </dev/null
final=$(ckpts "$T/done" | tail -1)
sum=$(md5sum < "$T/done/$final")
out=$("$DPTRAIN" train "${ARGS[@]}" --epochs 1 --checkpoint-dir "$T/done" --resume latest 2>&1 </dev/null)
rc=$?
if [ "$rc" -eq 0 ] && [ "$(md5sum < "$T/done/$final")" = "$sum" ] && [ "$(ckpts "$T/done" | tail -1)" = "$final" ]; then
    ok "resuming a finished run with --epochs 1 (checkpoint at epoch 2): $final left as it was"
else
    bad "resume with fewer epochs: status $rc, $final changed or replaced: $out"
fi

# ---- 3. resume and init checks
"$DPTRAIN" train "${ARGS[@]}" --output sigmoid --cost mse --epochs 1 --max-steps 20 --checkpoint-dir "$T/mse" </dev/null
out=$("$DPTRAIN" train "${ARGS[@]}" --output sigmoid --cost bce --epochs 1 --checkpoint-dir "$T/mse" --resume latest \
      2>&1 </dev/null)
rc=$?
if [ "$rc" -eq 3 ] && printf '%s' "$out" | grep -q "checkpoint of --cost mse; this run has --cost bce"; then
    ok "resume with another --cost is refused: $(printf '%s' "$out" | grep -o 'checkpoint of --cost.*')"
else
    bad "resume with another --cost: status $rc: $out"
fi
"$DPTRAIN" train --data "$T/d.h5" --layers 20,8,4 --output linear --cost mse --epochs 1 --max-steps 5 --quiet \
    --save "$T/linear.h5" </dev/null
out=$("$DPTRAIN" train --data "$T/d.h5" --init-from "$T/linear.h5" --output linear --cost cce --epochs 1 --quiet \
      2>&1 </dev/null)
rc=$?
if [ "$rc" -eq 2 ] && printf '%s' "$out" | grep -q "^dptrain: error: --init-from .*cce"; then
    ok "--init-from a linear-output model with --cost cce is refused: $(printf '%s' "$out" | cut -c1-100)"
else
    bad "--init-from with an unsuitable cost: status $rc: $out"
fi
COS=(--lr-schedule cosine --lr-min 0.0001 --epochs 2)
"$DPTRAIN" train "${ARGS[@]}" "${COS[@]}" --save "$T/cos-straight.h5" </dev/null
"$DPTRAIN" train "${ARGS[@]}" "${COS[@]}" --max-steps 150 --checkpoint-dir "$T/cos" </dev/null
"$DPTRAIN" train "${ARGS[@]}" "${COS[@]}" --checkpoint-dir "$T/cos" --resume latest --save "$T/cos-resumed.h5" </dev/null
if same "$T/cos-straight.h5" "$T/cos-resumed.h5"; then
    ok "cosine schedule: stopped by --max-steps 150 and resumed = uninterrupted, bitwise"
else
    bad "cosine schedule: the resumed run differs from the uninterrupted one"
fi

# ---- 4. the micro-kernel of deterministic runs
DPT_KERNEL=generic "${MPI[@]}" -n 2 "$DPTRAIN" train "${ARGS[@]}" --epochs 1 --save "$T/k-generic.h5" </dev/null
"${MPI[@]}" -n 2 "$DPTRAIN" train "${ARGS[@]}" --epochs 1 --save "$T/k-native.h5" </dev/null
same "$T/k-generic.h5" "$T/k-native.h5" && echo "note: this machine's micro-kernel gives the portable one's model"
"${MPI[@]}" -n 1 "$DPTRAIN" train "${ARGS[@]}" --epochs 1 --save "$T/k-mixed.h5" : \
    -n 1 env DPT_KERNEL=generic "$DPTRAIN" train "${ARGS[@]}" --epochs 1 --save "$T/k-mixed.h5" </dev/null 2>"$T/k.err"
if same "$T/k-generic.h5" "$T/k-mixed.h5" && grep -q "micro-kernel generic here too" "$T/k.err"; then
    ok "one of 2 ranks on the portable micro-kernel: every rank runs it, model bitwise = all-portable"
else
    bad "mixed micro-kernels: model differs from the all-portable one"; cat "$T/k.err"
fi
DPT_KERNEL=generic "$DPTRAIN" train "${ARGS[@]}" --epochs 1 --max-steps 90 --checkpoint-dir "$T/kres" </dev/null
"$DPTRAIN" train "${ARGS[@]}" --epochs 1 --checkpoint-dir "$T/kres" --resume latest --save "$T/k-resumed.h5" \
    </dev/null
if same "$T/k-generic.h5" "$T/k-resumed.h5"; then
    ok "resumed without DPT_KERNEL: continues with the checkpoint's micro-kernel, model bitwise = all-portable"
else
    bad "resume after a portable-kernel checkpoint: model differs"
fi
# The packed copies of W (DPT_WPACK=1 keeps them on one rank too) are laid out
# for the kernel the resumed run switches to, not the one it started with.
B32=("${ARGS[@]}" --batch 32)
DPT_KERNEL=generic "$DPTRAIN" train "${B32[@]}" --epochs 1 --save "$T/w-generic.h5" </dev/null
DPT_KERNEL=generic "$DPTRAIN" train "${B32[@]}" --epochs 1 --max-steps 20 --checkpoint-dir "$T/wres" </dev/null
DPT_WPACK=1 "$DPTRAIN" train "${B32[@]}" --epochs 1 --checkpoint-dir "$T/wres" --resume latest \
    --save "$T/w-resumed.h5" </dev/null
if same "$T/w-generic.h5" "$T/w-resumed.h5"; then
    ok "W kept packed, resumed onto the checkpoint's portable kernel: model bitwise = all-portable"
else
    bad "W kept packed across a kernel switch at resume: model differs"
fi

# ---- 5. output paths before any step
for opt in save metrics trace; do
    rm -rf "$T/out"
    out=$("$DPTRAIN" train "${ARGS[@]}" --epochs 1 --checkpoint-dir "$T/out" --checkpoint-every 1 \
          --$opt "$T/missing/file.out" 2>&1 </dev/null)
    rc=$?
    if [ "$rc" -eq 4 ] && printf '%s' "$out" | grep -q "^dptrain: error: --$opt .*missing" && ! has_ckpt "$T/out"; then
        ok "--$opt into a missing directory: status 4 before any step ($(printf '%s' "$out" | cut -c17-90))"
    else
        bad "--$opt into a missing directory: status $rc, checkpoints: $(ckpts "$T/out" | wc -l): $out"
    fi
done
"$DPTRAIN" train "${ARGS[@]}" --epochs 1 --max-steps 5 --save "$T/m.h5" </dev/null
out=$("$DPTRAIN" predict --model "$T/m.h5" --data "$T/d.h5" --out "$T/missing/p.h5" 2>&1)
rc=$?
if [ "$rc" -eq 4 ] && printf '%s' "$out" | grep -q "^dptrain: error: --out .*missing"; then
    ok "predict --out into a missing directory: status 4 before the forward pass"
else
    bad "predict --out into a missing directory: status $rc: $out"
fi

# ---- 6. batch-job logs: --log-every, the options that differ, --print-config
out=$("$DPTRAIN" train --data "$T/d.h5" --layers 20,8,4 --epochs 1 --max-steps 100 --log-every 50 --lr 0.05 \
      --no-progress 2>&1 </dev/null)
if [ "$(printf '%s\n' "$out" | grep -cE '^step (50|100)/100 \(epoch 1/1\)  loss [0-9.]+  [0-9]+ samples/s  eta [0-9]+h[0-9]{2}m[0-9]{2}s$')" -eq 2 ] \
   && printf '%s' "$out" | grep -q "^lr = 0.05" && ! printf '%s' "$out" | grep -q "^beta1 = "; then
    ok "--log-every 50: two lines with step, loss, samples/s and ETA; the header lists only changed options"
else
    bad "--log-every or the header: $out"
fi
out=$("$DPTRAIN" train --data "$T/d.h5" --layers 20,8,4 --print-config 2>&1 </dev/null)
rc=$?
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "^beta1 = 0.9" && printf '%s' "$out" | grep -q "^signal-grace = 30"; then
    ok "--print-config prints every option and exits 0"
else
    bad "--print-config: status $rc: $out"
fi

finish
