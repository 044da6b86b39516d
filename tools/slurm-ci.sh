#!/bin/bash
# A real SLURM cluster on this machine (one node), for CI: installs slurm-wlm
# and munge if missing, starts munged, slurmctld and slurmd as root with a
# generated configuration, and checks, with sbatch:
#   1. jobs/slurm-train.sbatch on 2 ranks (srun --mpi=pmix) trains and saves a model;
#   2. preemption: `scancel --signal=USR1 --batch` on a running job ->
#      checkpoint -> requeue -> the job resumes and finishes with the same final
#      model as an uninterrupted run (deterministic mode, compared with h5diff);
#   3. a small strong-scaling study through jobs/slurm-scaling.sh (1 and 2
#      ranks), reported by tools/scaling.py.
# Stops every daemon it started. Needs build/dptrain.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DPTRAIN=$ROOT/build/dptrain
missing=()
for p in slurm-wlm munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
SL=$(mktemp -d /tmp/dpt-slurm.XXXXXX)
W=$SL/work
mkdir -p "$SL/state" "$SL/spool" "$W"
HOST=$(hostname)
NODE_LINE=$(slurmd -C | head -1)
cat > "$SL/slurm.conf" <<CONF
ClusterName=dptci
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$SL/state
SlurmdSpoolDir=$SL/spool
SlurmctldPidFile=$SL/slurmctld.pid
SlurmdPidFile=$SL/slurmd.pid
SlurmctldLogFile=$SL/slurmctld.log
SlurmdLogFile=$SL/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
JobRequeue=1
MinJobAge=3600
MailProg=/bin/true
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
$NODE_LINE State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$SL/slurm.conf

started_munge=0
cleanup() {
    scontrol shutdown >/dev/null 2>&1 || true
    sleep 1
    for f in slurmctld slurmd; do
        [ -f "$SL/$f.pid" ] && kill "$(cat "$SL/$f.pid")" 2>/dev/null || true
    done
    [ "$started_munge" = 1 ] && pkill -u munge munged 2>/dev/null || true
    rm -rf "$SL"
}
trap cleanup EXIT

mkdir -p /run/munge && chown munge:munge /run/munge
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged
    started_munge=1
fi
slurmctld -f "$SL/slurm.conf"
slurmd -f "$SL/slurm.conf"
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qE "^idle" && break
    sleep 0.5
done
sinfo

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
state_of() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
wait_job() {   # job id, seconds
    local s
    for _ in $(seq $(($2 * 2))); do
        s=$(state_of "$1")
        case "$s" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) echo "$s"; return;; esac
        sleep 0.5
    done
    echo "TIMEOUT_WAITING($s)"
}

cd "$W"
awk 'BEGIN { srand(3); for (i = 0; i < 4000; i++) { s = 0; line = "";
       for (j = 0; j < 16; j++) { v = rand() * 2 - 1; s += v * (j % 4 - 1.5); line = line sprintf("%.5f,", v) }
       print line (s > 1 ? 3 : s > 0 ? 2 : s > -1 ? 1 : 0) } }' > d.csv
"$DPTRAIN" convert csv d.csv -o d.h5 >/dev/null
ARGS=(--data "$W/d.h5" --layers 16,128,128,4 --hidden tanh --optimizer momentum --lr 0.02 --batch 32
      --epochs 12 --deterministic --quiet)

# ---- 1. a training job on 2 ranks
j=$(sbatch --parsable --ntasks-per-node=2 --cpus-per-task=1 --job-name=train --output="$W/train-%j.out" \
    --export=ALL,DPTRAIN="$DPTRAIN",CKPT_DIR="$W/ck-train" "$ROOT/jobs/slurm-train.sbatch" "${ARGS[@]}" \
    --epochs 2 --save "$W/train.h5")
s=$(wait_job "$j" 120)
if [ "$s" = COMPLETED ] && [ -f "$W/train.h5" ] && "$DPTRAIN" info "$W/train.h5" >/dev/null; then
    ok "sbatch jobs/slurm-train.sbatch on 2 ranks (srun --mpi=pmix): $s, model saved"
else
    bad "training job $j: $s"; cat "$W"/train-*.out
fi

# ---- 2. preemption: signal, checkpoint, requeue, resume; same model as uninterrupted
mpirun -np 2 --oversubscribe "$DPTRAIN" train "${ARGS[@]}" --save "$W/straight.h5" </dev/null
j=$(sbatch --parsable --ntasks-per-node=2 --cpus-per-task=1 --job-name=preempt --output="$W/preempt-%j.out" \
    --export=ALL,DPTRAIN="$DPTRAIN",CKPT_DIR="$W/ck-preempt" "$ROOT/jobs/slurm-train.sbatch" "${ARGS[@]}" \
    --save "$W/preempted.h5")
for _ in $(seq 120); do [ "$(state_of "$j")" = RUNNING ] && break; sleep 0.5; done
sleep 3
scancel --signal=USR1 --batch "$j"
# the requeued job is held until its credential expires; release it early
for _ in $(seq 60); do
    s=$(state_of "$j"); r=$(scontrol show job "$j" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
    [ "${r:-0}" -ge 1 ] && break
    sleep 0.5
done
sleep 2
scontrol update jobid="$j" StartTime=now >/dev/null 2>&1 || true
s=$(wait_job "$j" 300)
restarts=$(scontrol show job "$j" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
if [ "$s" = COMPLETED ] && [ "${restarts:-0}" -ge 1 ] && grep -q "requeueing" "$W"/preempt-*.out \
   && grep -q "resuming from" "$W"/preempt-*.out && h5diff -q "$W/straight.h5" "$W/preempted.h5" /model /model; then
    ok "preemption: USR1 -> checkpoint -> status 75 -> requeue ($restarts restart) -> resumed -> model bitwise identical"
else
    bad "preemption job $j: $s, restarts ${restarts:-?}"; cat "$W"/preempt-*.out
fi

# ---- 3. a strong-scaling study through SLURM
SBATCH_EXTRA="--export=ALL" "$ROOT/jobs/slurm-scaling.sh" strong-ci "1" "1 2" 1 -- --data "$W/d.h5" \
    --layers 16,256,256,4 --batch 64 --epochs 1 --max-steps 200 >/dev/null
for _ in $(seq 240); do
    [ "$(squeue -h | wc -l)" -eq 0 ] && break
    sleep 0.5
done
if "$ROOT/tools/scaling.py" report "$ROOT/runs/scaling/strong-ci" --label "(SLURM, 1 node, CI)" \
    --bytes $(( 4 * (16 * 256 + 256 + 256 * 256 + 256 + 256 * 4 + 4 + 8) )); then
    ok "scaling study through SLURM: runs/scaling/strong-ci/scaling.{csv,txt,png}"
else
    bad "scaling study"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
