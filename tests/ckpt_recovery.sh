#!/bin/bash
# Checkpoints under stress, through the command line and mpiexec:
#  1. signal: SIGUSR1 to one rank of a 2-rank run: both stop after the same
#     step with status 75, the checkpoint is complete, and resuming (on 1 rank,
#     deterministic mode) ends with the same model as an uninterrupted run;
#  2. kill: SIGKILL one rank of a 3-rank run: mpiexec returns non-zero within
#     a few seconds and the newest checkpoint loads (info, eval);
#  3. bad files: truncated, flipped bytes inside a dataset, other
#     architecture, other format version, not HDF5, empty, missing: a clear
#     message and status 3 on every rank, and --resume latest falls back to the
#     newest good checkpoint, naming the ones it skips.
# Usage: ckpt_recovery.sh DPTRAIN MAKE_BAD_DATA MPIEXEC [NOLOCK_SO]
set -u
DPTRAIN=$1
HELPER=$2
MPIEXEC=${3:-mpiexec}
NOLOCK=${4:-}   # a library whose flock() fails as without file locks
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"
MPI=("$MPIEXEC" --oversubscribe --mca mpi_yield_when_idle 1)
make_dataset "$T"
ARGS=(--data "$T/d.h5" --layers 20,256,256,4 --hidden tanh --optimizer adam --lr 0.001 --batch 16 --epochs 60
      --deterministic --quiet)

# ---- 1. signal
"${MPI[@]}" -n 1 "$DPTRAIN" train "${ARGS[@]}" --save "$T/straight.h5" </dev/null
# The periodic checkpoint at step 100 shows that training (and the signal
# handlers) are running; --keep 1 leaves only the checkpoint of the stop.
"${MPI[@]}" -n 2 "$DPTRAIN" train "${ARGS[@]}" --checkpoint-dir "$T/sig" --checkpoint-every 100 --keep 1 \
    </dev/null 2>"$T/sig.err" &
job=$!
pid=$(pid_of "$T/sig")
wait_until 120 has_ckpt "$T/sig"
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -USR1 "$pid"
    wait $job
    rc=$?
    n=$(ls "$T/sig" | grep -c '^ckpt-')
    if [ "$rc" -ne 0 ] && grep -q "dptrain: stopped by a signal after global step" "$T/sig.err" && [ "$n" -eq 1 ] \
       && [ "$(grep -c 'stopped by a signal' "$T/sig.err")" -eq 1 ]; then
        ok "signal: both ranks stopped after the same step, one checkpoint ($(ls "$T/sig"))"
    else
        bad "signal: status $rc, $n checkpoints"; cat "$T/sig.err"
    fi
    grep -q "Exit code:    75" "$T/sig.err" && ok "signal: exit status 75" || bad "signal: exit status is not 75"
    "${MPI[@]}" -n 1 "$DPTRAIN" train "${ARGS[@]}" --checkpoint-dir "$T/sig" --resume latest --save "$T/resumed.h5" </dev/null
    if "$DPTRAIN" compare "$T/straight.h5" "$T/resumed.h5"; then
        ok "signal: resumed on 1 rank, final model bitwise identical to the uninterrupted run"
    else
        bad "signal: resumed model differs"
    fi
else
    wait $job
    bad "signal: the run ended before the signal could be sent"
fi

# ---- 2. kill
"${MPI[@]}" -n 3 "$DPTRAIN" train "${ARGS[@]}" --checkpoint-dir "$T/kill" --checkpoint-every 200 </dev/null \
    >/dev/null 2>"$T/kill.err" &
job=$!
pid=$(pid_of "$T/kill")
# Kill only once the first checkpoint is complete (its rename is the last step of a write).
wait_until 120 has_ckpt "$T/kill" || bad "kill: no checkpoint within 120 s"
start=$(date +%s.%N)
kill -KILL "$pid"
wait $job
rc=$?
end=$(date +%s.%N)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
if [ "$rc" -ne 0 ] && awk -v s="$secs" 'BEGIN { exit !(s < 10) }'; then
    ok "kill: mpiexec returned $rc, $secs s after SIGKILL of one of 3 ranks"
else
    bad "kill: mpiexec returned $rc after $secs s"
fi
newest=$(ls "$T/kill" | grep '^ckpt-.*\.h5$' | sort | tail -1)
if [ -n "$newest" ] && "$DPTRAIN" info "$T/kill/$newest" >/dev/null && \
   "$DPTRAIN" eval --model "$T/kill/$newest" --data "$T/d.h5" >/dev/null; then
    ok "kill: newest checkpoint $newest loads (info, eval)"
else
    bad "kill: no loadable checkpoint ($newest)"
fi

# ---- 3. bad files
"$DPTRAIN" train "${ARGS[@]}" --epochs 1 --max-steps 100 --checkpoint-dir "$T/good" --checkpoint-every 50 --keep 10 </dev/null
good=$(ls "$T/good" | grep '^ckpt-' | sort | head -1)   # the oldest: ckpt-000000050.h5
mkdir -p "$T/bad"
cp "$T/good/$good" "$T/bad/ckpt-000000001.h5"
G="$T/bad/ckpt-000000001.h5"
mk() { cp "$G" "$T/bad/$1"; }
mk truncated.h5; truncate -s 3000 "$T/bad/truncated.h5"
mk flipped.h5; "$HELPER" flip "$T/bad/flipped.h5" model/layer_1/weight
mk version.h5; "$HELPER" version "$T/bad/version.h5" 7
echo "not a checkpoint" > "$T/bad/text.h5"
: > "$T/bad/empty.h5"
"$DPTRAIN" train --data "$T/d.h5" --layers 20,8,4 --epochs 1 --max-steps 3 --quiet --checkpoint-dir "$T/other" </dev/null
cp "$T/other/$(ls "$T/other" | grep '^ckpt-')" "$T/bad/other.h5"

CASES=$(cat <<CASES_END
truncated.h5|truncated or damaged
flipped.h5|checksum mismatch or damaged file
version.h5|format_version 7; this dptrain reads version 1
text.h5|not an HDF5 file
empty.h5|empty file
other.h5|checkpoint of layers 20,8,4 (hidden sigmoid, output softmax); this run has 20,256,256,4
missing.h5|cannot open (No such file or directory)
CASES_END
)
while IFS='|' read -r file frag; do
    for np in 1 2; do
        out=$(timeout 60 "${MPI[@]}" -n $np "$DPTRAIN" train "${ARGS[@]}" --resume "$T/bad/$file" 2>&1 >/dev/null </dev/null)
        rc=$?
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(printf '%s\n' "$out" | grep -c '^dptrain: error: ')" -eq 1 ] \
           && printf '%s' "$out" | grep -qF -- "$frag" && printf '%s' "$out" | grep -q "Exit code:    3\|^dptrain: error"; then
            ok "bad file $file (np $np): $(printf '%s\n' "$out" | grep '^dptrain: error' | cut -c1-110)"
        else
            bad "bad file $file (np $np): status $rc"; printf '%s\n' "$out" | head -5
        fi
    done
done <<< "$CASES"

# latest: a good checkpoint at step 50, broken newer ones at steps 60 and 70
mkdir -p "$T/fall"
cp "$T/good/$good" "$T/fall/ckpt-000000050.h5"
cp "$T/bad/truncated.h5" "$T/fall/ckpt-000000070.h5"
cp "$T/bad/flipped.h5" "$T/fall/ckpt-000000060.h5"
cp "$T/bad/flipped.h5" "$T/fall/ckpt-000000080.h5.tmp.123"
out=$("${MPI[@]}" -n 2 "$DPTRAIN" train "${ARGS[@]}" --epochs 1 --max-steps 60 --checkpoint-dir "$T/fall" --resume latest 2>&1 </dev/null)
rc=$?
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "skipping checkpoint .*ckpt-000000070.h5" \
   && printf '%s' "$out" | grep -q "skipping checkpoint .*ckpt-000000060.h5" \
   && printf '%s' "$out" | grep -q "removed .*ckpt-000000080.h5.tmp.123" && [ ! -e "$T/fall/ckpt-000000080.h5.tmp.123" ]; then
    ok "latest: skipped the broken checkpoints 70 and 60, resumed from 50; the dead write's temporary file removed"
else
    bad "latest: status $rc"; printf '%s\n' "$out" | head -8
fi

# two runs, one checkpoint directory
"$DPTRAIN" train "${ARGS[@]}" --checkpoint-dir "$T/shared" </dev/null >/dev/null 2>&1 &
job=$!
wait_until 60 lock_held "$T/shared" || bad "lock: the first run did not take the lock within 60 s"
out=$("$DPTRAIN" train "${ARGS[@]}" --checkpoint-dir "$T/shared" 2>&1 </dev/null)
rc=$?
kill -TERM $job 2>/dev/null; wait $job 2>/dev/null
if [ "$rc" -eq 4 ] && printf '%s' "$out" | grep -q "in use by another run (pid $job on $(hostname) holds"; then
    ok "lock: a second run on the same checkpoint directory is refused, naming the holder (pid $job)"
else
    bad "lock: status $rc: $out"
fi

# a file system without locks (flock fails with ENOSYS, as on Lustre
# mounted noflock, or ENOLCK, as on NFS without its lock daemon): a warning,
# and the run checkpoints and resumes as anywhere else; HDF5's own lock on
# the files it opens is refused too (it lets ENOSYS pass, not ENOLCK), and
# dptrain opens them without it
# nolock ERRNO ARGS...: dptrain train on a file system whose flock fails with ERRNO
nolock() {
    local e=$1
    shift
    LD_PRELOAD=$NOLOCK ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 DPT_TEST_FLOCK_ERRNO=$e \
        "$DPTRAIN" train "${ARGS[@]}" "$@" 2>&1 </dev/null
}
if [ -n "$NOLOCK" ]; then
    for e in 38:ENOSYS 37:ENOLCK; do
        out=$(nolock "${e%%:*}" --epochs 1 --max-steps 40 --checkpoint-every 20 --checkpoint-dir "$T/nolock-${e#*:}")
        rc=$?
        out2=$(nolock "${e%%:*}" --no-quiet --epochs 1 --max-steps 60 --checkpoint-dir "$T/nolock-${e#*:}" \
               --resume latest)
        rc2=$?
        if [ "$rc" -eq 0 ] && [ "$rc2" -eq 0 ] && printf '%s' "$out" | grep -q "does not lock files (flock: " \
           && [ "$(ckpts "$T/nolock-${e#*:}" | tr '\n' ' ')" = "ckpt-000000020.h5 ckpt-000000040.h5 ckpt-000000060.h5 " ] \
           && printf '%s' "$out2" | grep -q "^resuming from .*ckpt-000000040.h5" \
           && grep -q "^[0-9][0-9]* ." "$T/nolock-${e#*:}/.dptrain.lock" \
           && { [ "${e#*:}" = ENOSYS ] || printf '%s' "$out" | grep -q "refused HDF5's file lock; opened without it"; }; then
            ok "lock: no file locks (flock ${e#*:}): a warning, checkpoints at 20 and 40, resumed from 40 to 60; the lock file names the run (\"$(cat "$T/nolock-${e#*:}/.dptrain.lock")\")"
        else
            bad "lock: no file locks (flock ${e#*:}): status $rc / $rc2: $(printf '%s\n%s' "$out" "$out2" | head -6)"
        fi
    done
fi

# a small /dev/shm (a container's): Open MPI 4.1 backs node-shared windows by
# files there, and one too large failed on node rank 0 alone while the others
# waited for ever. 200 KiB: the dataset (252 KB) does not fit, every rank
# reads its own copy, the model is the one of a normal run, bit for bit;
# 8 KiB: not even the model's windows fit, status 5 and one line, no hang.
SMALL=(--data "$T/d.h5" --layers 20,64,4 --epochs 2 --quiet)
# small_shm SIZE NP ARGS...: NP ranks of dptrain train with a tmpfs of SIZE over /dev/shm
small_shm() {
    local size=$1 np=$2
    shift 2
    timeout 120 unshare -m sh -c 'mount -t tmpfs -o size="$0" tmpfs /dev/shm && exec "$@"' "$size" \
        "${MPI[@]}" -n "$np" "$DPTRAIN" train "${SMALL[@]}" "$@" 2>&1 </dev/null
}
if "${MPI[@]}" -n 2 "$DPTRAIN" train "${SMALL[@]}" --save "$T/shm-normal.h5" </dev/null >/dev/null 2>&1 \
   && unshare -m true 2>/dev/null; then
    out=$(small_shm 200k 2 --save "$T/shm-small.h5")
    rc=$?
    if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "/dev/shm has .* bytes free.*every rank reads its own copy of the train split" \
       && "$DPTRAIN" compare "$T/shm-normal.h5" "$T/shm-small.h5" >/dev/null; then
        ok "small /dev/shm (200 KiB): each rank its own copy of the data, model bitwise = a normal run's"
    else
        bad "small /dev/shm (200 KiB): status $rc: $(printf '%s' "$out" | grep dptrain | head -3)"
    fi
    out=$(small_shm 8k 2)
    rc=$?
    if [ "$rc" -eq 5 ] && [ "$(printf '%s\n' "$out" | grep -c '^dptrain: error: ')" -eq 1 ] \
       && printf '%s' "$out" | grep -q "^dptrain: error: cannot allocate .* bytes of node-shared memory: /dev/shm has"; then
        ok "tiny /dev/shm (8 KiB): status 5, one line naming /dev/shm, no rank left waiting"
    else
        bad "tiny /dev/shm (8 KiB): status $rc: $(printf '%s' "$out" | grep dptrain | head -3)"
    fi
    # a node of one rank: Open MPI keeps its "shared" windows in the process's
    # own memory, so /dev/shm's size does not matter (it refused before)
    out=$(small_shm 8k 1 --save "$T/shm-one.h5")
    rc=$?
    if [ "$rc" -eq 0 ] && "${MPI[@]}" -n 1 "$DPTRAIN" train "${SMALL[@]}" --save "$T/shm-one-normal.h5" </dev/null \
          >/dev/null 2>&1 && "$DPTRAIN" compare "$T/shm-one-normal.h5" "$T/shm-one.h5" >/dev/null; then
        ok "tiny /dev/shm (8 KiB), one rank: trains, model bitwise = a normal run's"
    else
        bad "tiny /dev/shm (8 KiB), one rank: status $rc: $(printf '%s' "$out" | grep dptrain | head -3)"
    fi
fi

# disk full while writing checkpoints: a 96 KiB tmpfs, a checkpoint every 20 steps, all kept
mkdir -p "$T/full"
if mount -t tmpfs -o size=96k tmpfs "$T/full" 2>/dev/null; then
    out=$("$DPTRAIN" train --data "$T/d.h5" --layers 20,16,4 --batch 16 --epochs 50 --quiet \
          --checkpoint-dir "$T/full" --checkpoint-every 20 --keep 1000 2>&1 </dev/null)
    rc=$?
    n=$(ls "$T/full" | grep -c '^ckpt-.*\.h5$')
    tmpfiles=$(ls "$T/full" | grep -c '\.tmp\.' || true)
    newest=$(ls "$T/full" | grep '^ckpt-.*\.h5$' | sort | tail -1)
    if [ "$rc" -eq 4 ] && printf '%s' "$out" | grep -q "disk full" && [ "$n" -ge 1 ] && [ "$tmpfiles" -eq 0 ] \
       && "$DPTRAIN" info "$T/full/$newest" >/dev/null; then
        ok "disk full: status 4 ($(printf '%s' "$out" | grep '^dptrain: error' | cut -c1-90)), $n complete checkpoints kept, no temporary file, newest loads"
    else
        bad "disk full: status $rc, $n checkpoints, $tmpfiles temporary files: $out"
    fi
    umount "$T/full"
else
    echo "skip disk full: cannot mount a tmpfs here"
fi

finish
