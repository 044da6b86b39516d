#!/bin/bash
# Table-driven bad-input suite for the dptrain command line.
# Each case: the expected exit status, a fragment of the expected error line,
# and the arguments. Every case runs once as a plain process and once under
# `mpiexec -n 2`; the error must be printed exactly once, on one line.
# Usage: cli_bad_input.sh DPTRAIN MAKE_BAD_DATA MPIEXEC
set -u
DPTRAIN=$1
MAKE_BAD=$2
MPIEXEC=${3:-mpiexec}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$MAKE_BAD" "$T" || { echo "make_bad_data failed"; exit 1; }
echo "this is not HDF5" > "$T/text.h5"
: > "$T/empty.h5"
mkdir "$T/dir.h5"
G="$T/good.h5"
R=$(cd "$(dirname "$0")" && pwd)   # fuzz-found files: /train/y claims integers of 4 GB each; a checkpoint's chunk of under 4 bytes; compact datasets with too few bytes; a group on which HDF5 itself crashes (the crash net)
TRAIN="train --quiet --epochs 1 --layers 2,3"

# status | fragment | arguments
CASES=$(cat <<CASES_END
3|$T/missing.h5: cannot open (No such file or directory)|$TRAIN --data $T/missing.h5
3|not an HDF5 file|$TRAIN --data $T/text.h5
3|empty file; expected an HDF5 file|$TRAIN --data $T/empty.h5
3|is a directory|$TRAIN --data $T/dir.h5
3|no group /train|$TRAIN --data $T/no-train.h5
3|missing dataset /train/y|$TRAIN --data $T/no-labels.h5
3|/train/x has rank 3; expected a 2-D array|$TRAIN --data $T/wrong-rank.h5
3|/train/x has an unsupported type; expected float32, float64 or uint8|$TRAIN --data $T/wrong-type.h5
3|/train/y must be [N] integer labels or [N, K] float targets|$TRAIN --data $R/fuzz/regressions/hdf5/oom-integer-of-4gb
3|/train/x is empty (0 rows|$TRAIN --data $T/zero-rows.h5
3|/train/y has 3 rows but /train/x has 4|$TRAIN --data $T/mismatched.h5
3|/train/y row 2 has label 7; expected 0..2|$TRAIN --data $T/labels-out-of-range.h5
3|/train/x row 2 column 1 is NaN; expected finite values|$TRAIN --data $T/nan.h5
3|/train/x row 2 column 1 is Inf|$TRAIN --data $T/inf.h5
3|/train/x has 1000000 columns but --layers starts with 2 inputs|$TRAIN --data $T/million-columns.h5
3|/train/x has 2 columns but --layers starts with 784 inputs|train --quiet --data $G --layers 784,100,10
2|--batch 5 is larger than the training set (4 samples|$TRAIN --data $G --batch 5
2|unknown option '--frobnicate'|$TRAIN --data $G --frobnicate 1
2|--hidden 'softmax': expected sigmoid, relu, tanh or linear|$TRAIN --data $G --hidden softmax
2|--cost 'hinge': expected mse, bce or cce|$TRAIN --data $G --cost hinge
2|--layers '784,,10': expected positive integers|train --data $G --layers 784,,10
2|--lr -0.5: expected a positive number|$TRAIN --data $G --lr -0.5
2|--epochs 0: expected 1 or more|train --data $G --layers 2,3 --epochs 0
2|--batch '0': expected a positive integer or 'full'|$TRAIN --data $G --batch 0
2|--layers '2,99999999999': size|train --data $G --layers 2,99999999999
2|--cost bce needs --output sigmoid|$TRAIN --data $G --cost bce
2|--data is required|train --layers 2,3
2|the network has too many parameters|train --data $G --layers 2,16777216,16777216,3
4|--checkpoint-dir /proc/dptrain-ckpt: cannot create|$TRAIN --data $G --batch 2 --checkpoint-dir /proc/dptrain-ckpt
4|--checkpoint-dir $G: not a directory|$TRAIN --data $G --batch 2 --checkpoint-dir $G
4|--metrics $T/no/such/dir/m.jsonl: cannot create|$TRAIN --data $G --batch 2 --metrics $T/no/such/dir/m.jsonl
2|--resume latest needs --checkpoint-dir|$TRAIN --data $G --resume latest
2|--trace-params '1:x': expected layer:i:j|$TRAIN --data $G --batch 2 --trace $T/t.h5 --trace-params 1:x
4|--trace $T/no/such/dir/t.h5: cannot create|$TRAIN --data $G --batch 2 --trace $T/no/such/dir/t.h5
2|--config $T/none.ini: cannot open|train --config $T/none.ini
2|unknown command 'fly'|fly
2|eval: --model FILE.h5 is required|eval --data $G
3|$T/missing.h5: cannot open|eval --model $T/missing.h5 --data $G
3|not a dptrain model or checkpoint|eval --model $G --data $G
3|cannot read /model/layer_1/bias (checksum mismatch or damaged file)|eval --model $R/fuzz/regressions/hdf5/fletcher32-chunk-under-4-bytes --data $G
3|compact-without-bytes: cannot read /train/x (damaged file?)|$TRAIN --batch 2 --data $R/fuzz/regressions/hdf5/compact-without-bytes
3|compact-4-of-32-bytes: cannot read /train/x (damaged file?)|$TRAIN --batch 2 --data $R/fuzz/regressions/hdf5/compact-4-of-32-bytes
3|group-local-heap-null-read: damaged file: the HDF5 library crashed reading it (SIGSEGV)|info $R/fuzz/regressions/hdf5-library/group-local-heap-null-read
3|group-local-heap-null-read: damaged file: the HDF5 library crashed reading it (SIGSEGV)|$TRAIN --batch 2 --data $R/fuzz/regressions/hdf5-library/group-local-heap-null-read
2|predict: --out FILE.h5 is required|predict --model $G --data $G
3|$T/none.gz: cannot open|convert idx $T/none.gz $T/none2.gz -o $T/x.h5
3|not an IDX file|convert idx $T/text.h5 $T/text.h5 -o $T/x.h5
2|convert: unknown format 'xls'|convert xls a -o b
3|not an HDF5 file|info $T/text.h5
CASES_END
)

pass=0
fail=0
run_case() {
    local launcher=$1 status=$2 frag=$3 args=$4
    local out rc lines
    # shellcheck disable=SC2086
    out=$(timeout 60 $launcher "$DPTRAIN" $args 2>&1 >/dev/null </dev/null)
    rc=$?
    lines=$(printf '%s\n' "$out" | grep -c '^dptrain: error: ')
    if [ "$rc" -eq "$status" ] && [ "$lines" -eq 1 ] && printf '%s' "$out" | grep -qF -- "$frag"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL [$launcher] dptrain $args"
        echo "     expected status $status and one line with: $frag"
        echo "     got status $rc, $lines error line(s):"
        printf '%s\n' "$out" | sed 's/^/       | /' | head -8
    fi
}

while IFS='|' read -r status frag args; do
    [ -n "$status" ] || continue
    run_case "" "$status" "$frag" "$args"
    run_case "$MPIEXEC -n 2 --oversubscribe" "$status" "$frag" "$args"
done <<< "$CASES"

# A tuning variable that is not one of its values: a warning, once, and the run goes on.
while IFS='|' read -r var line; do
    for launcher in "" "$MPIEXEC -n 2 --oversubscribe"; do
        # shellcheck disable=SC2086
        out=$(env "$var" timeout 60 $launcher "$DPTRAIN" $TRAIN --batch 2 --data "$G" 2>&1 >/dev/null </dev/null)
        rc=$?
        lines=$(printf '%s\n' "$out" | grep -c "dptrain: warning: $line")
        if [ "$rc" -eq 0 ] && [ "$lines" -eq 1 ]; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "FAIL [$launcher] $var dptrain $TRAIN: status $rc, $lines warning line(s)"
            printf '%s\n' "$out" | sed 's/^/       | /' | head -8
        fi
    done
done <<'EOF'
DPT_MC=lots|DPT_MC=lots ignored: expected a whole number from 16 to 1024
DPT_LOOP=c|DPT_LOOP=c ignored: expected a or b (the rule for this L1d and kernel gives [ab])
EOF

# Processes that another launcher started and MPI did not join into one job
# (MPICH's mpiexec sets PMI_SIZE; srun without a matching MPI plugin,
# SLURM_STEP_NUM_TASKS): each is a job of one rank, and would train alone.
# Status 8 and one line naming the variable, not N lone runs.
run_case "env PMI_SIZE=3 PMI_RANK=1" 8 \
    "PMI_SIZE=3, but MPI made this process a job of its own (1 rank), so each of the 3 would train alone" \
    "$TRAIN --batch 2 --data $G"
run_case "env SLURM_STEP_NUM_TASKS=4 SLURM_PROCID=2" 8 \
    "SLURM_STEP_NUM_TASKS=4, but MPI made this process a job of its own" "$TRAIN --batch 2 --data $G"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
