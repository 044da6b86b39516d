#!/bin/bash
# A real SLURM cluster on this machine, for CI, configured as clusters run it:
# NODES (2) hosts in network namespaces (tools/ci/netns-hosts.sh), each with its
# own slurmd (`slurmd -N node<i>`, its own address, hostname and /tmp), one
# slurmctld on node1, TaskPlugin=task/affinity (tasks are bound to the CPUs
# they were given), munge. Installs slurm-wlm and munge if missing. Checks,
# with sbatch and jobs/slurm-train.sbatch:
#   1. hybrid: --ntasks-per-node=1 --cpus-per-task=2: the rank runs 2 threads
#      on 2 CPUs (dptrain's placement line, read inside the step);
#   2. a training job on 2 ranks saves a model;
#   3. scancel of a running job (SIGTERM to every task and to the batch shell):
#      a complete checkpoint of the stop, no temporary file; a resubmission
#      with the same CKPT_DIR resumes it to the uninterrupted run's model, bit
#      for bit (deterministic mode, as in every check below);
#   4. preemption warning (scancel --signal=USR1 --batch): checkpoint, status
#      75, the script requeues, the job resumes: the same model;
#   5. scontrol requeue of a running job: the tasks checkpoint on SLURM's
#      SIGTERM, SLURM requeues, the job resumes: the same model;
#   6. a time limit reached (--time=1 --signal=B:USR1@40): the warning,
#      checkpoints and requeues until the work is done: the same model;
#   7. across nodes: --nodes=2 --ntasks-per-node=1, srun --mpi=pmix, one rank
#      on each namespaced host, then 3 tasks on 2 nodes (2 + 1): the same
#      model as on one host;
#   8. a strong-scaling study through jobs/slurm-scaling.sh, reported by
#      tools/scaling/scaling.py.
#   9. a node fails in the middle of a 2-node job (its link goes down and its
#      processes freeze, as when it loses power): SLURM declares it down and
#      requeues the job; the node comes back, the job resumes from the newest
#      complete checkpoint: the same model;
#  10. scancel --signal=USR2: a checkpoint of every rank after the same step,
#      and the job goes on to the same model.
# CASES="3 9" runs only those (and the reference runs they need); all by
# default. STARTS=N runs none of these: N starts of the 2 + 1 job instead
# (below).
# Stops every daemon it started. Needs root and build/dptrain.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NODES=${NODES:-2}
CASES=${CASES:-1 2 3 4 5 6 7 8 9 10}
want() { [[ " $CASES " == *" $1 "* ]]; }
missing=()
for p in slurm-wlm munge iproute2 util-linux python3-matplotlib; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
. "$ROOT/tools/ci/netns-hosts.sh"
. "$ROOT/tests/lib.sh"

SL=$NS_DIR/slurm
W=$NS_DIR/work
started_munge=0
cleanup() {
    ip netns exec "$NS_PFX-n1" env SLURM_CONF="$SL/slurm.conf" scontrol shutdown >/dev/null 2>&1 || true
    local f pids=""
    for f in "$SL"/*.pid; do [ -f "$f" ] && pids="$pids $(cat "$f")"; done
    [ "$started_munge" = 1 ] && pids="$pids $(pgrep -u munge -x munged)"
    # shellcheck disable=SC2086
    [ -n "$pids" ] && { kill $pids 2>/dev/null; wait_until 20 all_gone $pids; }
    ns_down
}
trap cleanup EXIT
ns_up "$NODES"
mkdir -p "$SL/state" "$SL/log" "$W"
for i in $(seq "$NODES"); do mkdir -p "$SL/spool-node$i"; done
# Files the hosts read live outside /tmp (each host has its own /tmp).
cp "$ROOT/build/dptrain" "$W/"
DPTRAIN=$W/dptrain
NODE_HW=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //; s/ *UpTime=.*//')
{
    cat <<CONF
ClusterName=dptci
SlurmctldHost=node1(10.213.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$SL/state
SlurmdSpoolDir=$SL/spool-%n
SlurmctldPidFile=$SL/slurmctld.pid
SlurmdPidFile=$SL/slurmd-%n.pid
SlurmctldLogFile=$SL/log/slurmctld.log
SlurmdLogFile=$SL/log/slurmd-%n.log
SlurmctldPort=6817
SlurmdPort=6818
JobRequeue=1
KillWait=30
MinJobAge=3600
MailProg=/bin/true
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
CONF
    for i in $(seq "$NODES"); do echo "NodeName=node$i NodeAddr=10.213.0.$i $NODE_HW State=UNKNOWN"; done
    echo "PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
} > "$SL/slurm.conf"

mkdir -p /run/munge && chown munge:munge /run/munge
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged
    started_munge=1
fi
ns_exec 1 slurmctld -f "$SL/slurm.conf"
for i in $(seq "$NODES"); do ns_exec "$i" slurmd -N "node$i" -f "$SL/slurm.conf"; done
# SLURM's clients talk to slurmctld on node1's address.
S() { ip netns exec "$NS_PFX-n1" env SLURM_CONF="$SL/slurm.conf" "$@"; }
all_idle() { [ "$(S sinfo -h -o '%T %D' 2>/dev/null)" = "idle $NODES" ]; }
wait_until 60 all_idle || { echo "the cluster did not come up"; S sinfo; tail -n 5 "$SL"/log/*; exit 1; }
S sinfo

state_of() { S scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
restarts_of() { S scontrol show job "$1" 2>/dev/null | grep -o 'Restarts=[0-9]*' | cut -d= -f2; }
is_final() { case "$(state_of "$1")" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) return 0;; esac; return 1; }
wait_job() { wait_until "$2" is_final "$1"; state_of "$1"; }   # job id, seconds
is_running() { [ "$(state_of "$1")" = RUNNING ]; }
# sbatch jobs/slurm-train.sbatch with the job name, CKPT_DIR, sbatch options, then -- and dptrain's options.
submit() {
    local name=$1 ck=$2
    shift 2
    local sb=()
    while [ "$1" != "--" ]; do sb+=("$1"); shift; done
    shift
    S sbatch --parsable --job-name="$name" --output="$W/$name-%j.out" "${sb[@]}" \
        --export=ALL,DPTRAIN="$DPTRAIN",CKPT_DIR="$ck" "$ROOT/jobs/slurm-train.sbatch" "$@"
}
out_of() { cat "$W/$1"-*.out 2>/dev/null; }
# A failed job's output, whole but for the progress lines: the first error of
# a failing start (Open MPI's, a backtrace) comes before the ranks' last words.
show_out() { out_of "$1" | grep -v '^epoch ' | tail -n 150; }
no_tmp() { [ -z "$(ls "$1" | grep '\.tmp\.')" ]; }

cd "$W"
awk 'BEGIN { srand(3); for (i = 0; i < 4000; i++) { s = 0; line = "";
       for (j = 0; j < 16; j++) { v = rand() * 2 - 1; s += v * (j % 4 - 1.5); line = line sprintf("%.5f,", v) }
       print line (s > 1 ? 3 : s > 0 ? 2 : s > -1 ? 1 : 0) } }' > d.csv
"$DPTRAIN" convert csv d.csv -o d.h5 >/dev/null
ARGS=(--data "$W/d.h5" --layers 16,512,512,4 --hidden tanh --optimizer momentum --lr 0.02 --batch 32 --deterministic)
JOB=("${ARGS[@]}" --checkpoint-every 100)   # in jobs (the script adds --checkpoint-dir)
UNEVEN=(--nodes=2 --ntasks=3 --distribution=block)   # 2 + 1 tasks on 2 nodes

# STARTS=N: only start a job of 3 tasks on 2 nodes (2 + 1) N times, one epoch
# each, and count the starts that fail: the race of SLURM's PMIx fences that
# jobs/slurm-train.sbatch avoids with SLURM_PMIX_FENCE=tree ("Start-up across
# nodes" there); SLURM_PMIX_FENCE=mixed in the environment gives SLURM's own
# choice back, to see the race. Also counts the jobs whose step the script
# started again (it does so for a step that fails before training begins).
# Exits 1 if any job failed.
if [ -n "${STARTS:-}" ] && [ "$NODES" -ge 2 ]; then
    failed=0 again=0
    for k in $(seq "$STARTS"); do
        j=$(submit "start$k" "$W/ck-start$k" "${UNEVEN[@]}" -- "${JOB[@]}" --epochs 1 --save "$W/start.h5")
        s=$(wait_job "$j" 60)
        is_final "$j" || { S scancel "$j"; wait_until 60 is_final "$j"; s="$s, cancelled after 60 s"; }
        [ "$s" = COMPLETED ] || { failed=$((failed + 1)); echo "start $k: job $j $s"; show_out "start$k"; }
        if out_of "start$k" | grep -q "starting it again"; then
            again=$((again + 1)); echo "start $k: job $j $s after a new start of its step"; show_out "start$k"
        fi
    done
    echo "$failed of $STARTS jobs failed, $again needed a new start of their step" \
         "(SLURM_PMIX_FENCE=${SLURM_PMIX_FENCE:-tree, from the job script})"
    exit $((failed > 0))
fi
# The runs' lengths come from this machine's pace (12 epochs took 5 s on one
# 2-core machine, 1.7 s on another): SHORT about 8 s, so that a job is still
# running when a case signals it after its first checkpoint, 12 epochs at
# least (the jobs nobody signals run BRIEF, 12 epochs: across hosts over TCP
# they ran 25x slower); LONG about 100 s, to outlast the time limit's first
# warning (20-50 s into a start), 150 epochs at least (a fixed 150 ran 22 s
# on the faster machine and finished before any warning). The start-up in
# the measured run makes both somewhat shorter than that. The uninterrupted
# runs (deterministic: any layout gives the same model) are the references;
# the BRIEF one is also the measured run.
BRIEF_EPOCHS=12
BRIEF=(--epochs "$BRIEF_EPOCHS")
t0=$(date +%s.%N)
"$ROOT/tools/launch.sh" 2 1 "$DPTRAIN" train "${ARGS[@]}" "${BRIEF[@]}" --quiet --save "$W/straight-brief.h5" </dev/null
t1=$(date +%s.%N)
epochs_for() { awk -v a="$t0" -v b="$t1" -v s="$1" -v m="$2" -v k="$BRIEF_EPOCHS" \
                   'BEGIN { e = int(k * s / (b - a)) + 1; print e < m ? m : e }'; }
SHORT=(--epochs "$(epochs_for 8 "$BRIEF_EPOCHS")")
LONG=(--epochs "$(epochs_for 100 150)")
if want 3 || want 4 || want 5 || want 10; then
    "$ROOT/tools/launch.sh" 2 1 "$DPTRAIN" train "${ARGS[@]}" "${SHORT[@]}" --quiet --save "$W/straight.h5" </dev/null
fi
if want 6; then
    t0=$(date +%s)
    "$ROOT/tools/launch.sh" 2 1 "$DPTRAIN" train "${ARGS[@]}" "${LONG[@]}" --quiet --save "$W/straight-long.h5" </dev/null
    LONG_S=$(( $(date +%s) - t0 ))
fi

# 1. hybrid: threads get their CPUs
case_1() {
    j=$(submit hybrid "$W/ck-hybrid" --nodes=1 --ntasks-per-node=1 --cpus-per-task=2 -- "${JOB[@]}" --epochs 1)
    s=$(wait_job "$j" 120)
    line=$(out_of hybrid | grep "rank 0 on node")
    if [ "$s" = COMPLETED ] && printf '%s' "$line" | grep -q "2 threads, CPUs 0-1 (2)" && ! out_of hybrid | grep -q "share cores"; then
        ok "--cpus-per-task=2 under task/affinity: 2 threads on 2 CPUs (${line#  })"
    else
        bad "hybrid job $j: $s: $line"; show_out hybrid
    fi
}

# 2. a training job on 2 ranks
case_2() {
    j=$(submit train "$W/ck-train" --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 -- "${JOB[@]}" "${BRIEF[@]}" \
        --save "$W/train.h5")
    s=$(wait_job "$j" 120)
    if [ "$s" = COMPLETED ] && "$DPTRAIN" compare "$W/straight-brief.h5" "$W/train.h5" >/dev/null; then
        ok "training job on 2 ranks (srun --mpi=pmix): $s, model = the uninterrupted one"
    else
        bad "training job $j: $s"; show_out train
    fi
}

# signalled NAME SAVE COMMAND...: a job of 2 ranks on one node, SHORT, into
# $W/ck-NAME, saving SAVE; once its first checkpoint is written, COMMAND...
# with the job's id (in $j) added.
signalled() {
    local name=$1 save=$2
    shift 2
    j=$(submit "$name" "$W/ck-$name" --nodes=1 --ntasks-per-node=2 -- "${JOB[@]}" "${SHORT[@]}" --save "$save")
    wait_until 120 has_ckpt "$W/ck-$name"
    S "$@" "$j"
}

# 3. scancel, then a resubmission resumes
case_3() {
    signalled cancel "$W/cancel.h5" scancel
    s=$(wait_job "$j" 60)
    last=$(ckpts "$W/ck-cancel" | tail -1)
    step=$(echo "$last" | sed 's/ckpt-0*\([0-9]*\)\.h5/\1/')
    if [ "$s" = CANCELLED ] && [ -n "$last" ] && [ $((step % 100)) -ne 0 ] && no_tmp "$W/ck-cancel" \
       && "$DPTRAIN" info "$W/ck-cancel/$last" >/dev/null; then
        ok "scancel: $s, the stop's checkpoint $last is complete, no temporary file"
    else
        bad "scancel job $j: $s, newest checkpoint '$last'"; show_out cancel; ls "$W/ck-cancel"
    fi
    j=$(submit cancel2 "$W/ck-cancel" --nodes=1 --ntasks-per-node=2 -- "${JOB[@]}" "${SHORT[@]}" --save "$W/cancel.h5")
    s=$(wait_job "$j" 120)
    if [ "$s" = COMPLETED ] && out_of cancel2 | grep -q "resuming from" && "$DPTRAIN" compare "$W/straight.h5" "$W/cancel.h5" >/dev/null; then
        ok "resubmitted with the same CKPT_DIR: resumed from $last, model bitwise = the uninterrupted run's"
    else
        bad "resubmission $j: $s"; show_out cancel2
    fi
}

# 4. the preemption warning: USR1 to the batch shell
case_4() {
    signalled preempt "$W/preempted.h5" scancel --signal=USR1 --batch
    s=$(wait_job "$j" 300)
    r=$(restarts_of "$j")
    if [ "$s" = COMPLETED ] && [ "${r:-0}" -ge 1 ] && out_of preempt | grep -q "requeueing" \
       && out_of preempt | grep -q "resuming from" && "$DPTRAIN" compare "$W/straight.h5" "$W/preempted.h5" >/dev/null; then
        ok "USR1 warning -> checkpoint -> status 75 -> requeue ($r restart) -> resumed -> model bitwise identical"
    else
        bad "preemption job $j: $s, restarts ${r:-?}"; show_out preempt
    fi
}

# 5. scontrol requeue of a running job
case_5() {
    signalled requeue "$W/requeued.h5" scontrol requeue
    s=$(wait_job "$j" 300)
    r=$(restarts_of "$j")
    if [ "$s" = COMPLETED ] && [ "${r:-0}" -ge 1 ] && out_of requeue | grep -q "resuming from" \
       && "$DPTRAIN" compare "$W/straight.h5" "$W/requeued.h5" >/dev/null; then
        ok "scontrol requeue: SIGTERM -> checkpoint -> requeued by SLURM ($r restart) -> resumed -> model bitwise identical"
    else
        bad "requeue job $j: $s, restarts ${r:-?}"; show_out requeue
    fi
}

# 6. a time limit: the warning, a checkpoint and a requeue each time, until done.
case_6() {
    # SLURM checks time limits about every 30 s, so the warning comes 20-50 s into
    # each start; if a start reaches its limit first, SIGTERM stops it (state
    # TIMEOUT, with a checkpoint) and the job is resubmitted, as a user would.
    timeouts=0 requeues=0 s=""
    for attempt in 1 2 3 4 5 6; do
        j=$(submit timelimit "$W/ck-time" --nodes=1 --ntasks-per-node=2 --time=1 --signal=B:USR1@40 -- "${JOB[@]}" \
            "${LONG[@]}" --save "$W/timelimit.h5")
        s=$(wait_job "$j" 600)
        requeues=$((requeues + $(restarts_of "$j")))
        [ "$s" = TIMEOUT ] || break
        timeouts=$((timeouts + 1))
        no_tmp "$W/ck-time" && has_ckpt "$W/ck-time" || { bad "time limit reached: no complete checkpoint"; break; }
    done
    if [ "$s" = COMPLETED ] && [ $((requeues + timeouts)) -ge 1 ] \
       && "$DPTRAIN" compare "$W/straight-long.h5" "$W/timelimit.h5" >/dev/null; then
        ok "time limit of 1 minute (--signal=B:USR1@40), a run of ${LONG[1]} epochs (${LONG_S} s uninterrupted): $requeues requeue(s) after the warning, $timeouts stop(s) at the limit, model bitwise = the uninterrupted run's"
    else
        bad "time-limit job $j: $s, $requeues requeues, $timeouts timeouts"; show_out timelimit
    fi
}

# 7. across nodes: one rank on each host
case_7() {
    if [ "$NODES" -ge 2 ]; then
        j=$(submit multinode "$W/ck-multi" --nodes=2 --ntasks-per-node=1 -- "${JOB[@]}" "${BRIEF[@]}" --save "$W/multinode.h5")
        s=$(wait_job "$j" 180)
        if [ "$s" = COMPLETED ] && out_of multinode | grep -q "rank 0 on node1" && out_of multinode | grep -q "rank 1 on node2" \
           && "$DPTRAIN" compare "$W/straight-brief.h5" "$W/multinode.h5" >/dev/null; then
            ok "sbatch --nodes=2, srun --mpi=pmix: ranks on node1 and node2, model bitwise = one host's"
        else
            bad "multi-node job $j: $s"; show_out multinode
        fi
        # nodes of different sizes: 3 tasks on 2 nodes (2 + 1), the hierarchical reduction
        j=$(submit uneven "$W/ck-uneven" "${UNEVEN[@]}" -- "${JOB[@]}" "${BRIEF[@]}" \
            --no-quiet --save "$W/uneven.h5")
        s=$(wait_job "$j" 180)
        if [ "$s" = COMPLETED ] && out_of uneven | grep -q "rank 1 on node1" && out_of uneven | grep -q "rank 2 on node2" \
           && out_of uneven | grep -q "^reduction:.*hierarchical" && "$DPTRAIN" compare "$W/straight-brief.h5" "$W/uneven.h5" >/dev/null; then
            ok "sbatch --nodes=2 --ntasks=3: ranks 0-1 on node1, 2 on node2, hierarchical, model bitwise = one host's"
        else
            bad "uneven multi-node job $j: $s"; show_out uneven
        fi
    fi
}

# 8. a strong-scaling study through SLURM
case_8() {
    SBATCH_EXTRA="--export=ALL" DPTRAIN="$DPTRAIN" SCALING_OUT="$W/scaling" S "$ROOT/jobs/slurm-scaling.sh" strong-ci \
        "1" "1 2" 1 -- --data "$W/d.h5" --layers 16,256,256,4 --batch 64 --epochs 1 --max-steps 200 >/dev/null
    queue_empty() { [ "$(S squeue -h | wc -l)" -eq 0 ]; }
    wait_until 180 queue_empty
    if "$ROOT/tools/scaling/scaling.py" report "$W/scaling/strong-ci" --label "(SLURM, 1 node, CI)" \
        --bytes $(( 4 * (16 * 256 + 256 + 256 * 256 + 256 + 256 * 4 + 4 + 8) )); then
        ok "scaling study through SLURM: scaling.{csv,txt,png}"
    else
        bad "scaling study"; ls -R "$W/scaling"
    fi
}

# 9. a node fails: node2 stops answering in the middle of a 2-node job.
# SLURM's patience with a silent node (SlurmdTimeout, 300 s by default) is
# 10 s during this case.
node_down() { case "$(S sinfo -h -n "$1" -o %T 2>/dev/null)" in down*) return 0;; esac; return 1; }
requeued() { local r; r=$(restarts_of "$1"); [ "$(state_of "$1")" = PENDING ] && [ "${r:-0}" -ge 1 ]; }
case_9() {
    [ "$NODES" -ge 2 ] || return 0
    sed -i '/^SlurmdTimeout=/d' "$SL/slurm.conf"
    echo "SlurmdTimeout=10" >> "$SL/slurm.conf"
    S scontrol reconfigure
    local ck=$W/ck-nodefail t0 newest=""
    j=$(submit nodefail "$ck" --nodes=2 --ntasks-per-node=1 -- "${JOB[@]}" "${BRIEF[@]}" --save "$W/nodefail.h5")
    wait_until 180 has_ckpt "$ck"
    t0=$SECONDS
    ns_fail 2
    if wait_until 120 node_down node2 && wait_until 180 requeued "$j"; then
        newest=$(ckpts "$ck" | tail -1)
        echo "node2 failed; down and job $j requeued after $((SECONDS - t0)) s; newest checkpoint $newest"
    else
        bad "node failure: node2 $(S sinfo -h -n node2 -o %T), job $j $(state_of "$j") after $((SECONDS - t0)) s"
        show_out nodefail; S scancel "$j"
    fi
    # node2 comes back, and SLURM's patience its default again, whatever happened
    ns_revive 2
    ns_exec 2 slurmd -N node2 -f "$SL/slurm.conf"
    s=$(wait_job "$j" 300)
    sed -i '/^SlurmdTimeout=/d' "$SL/slurm.conf"
    S scontrol reconfigure
    [ -n "$newest" ] || return 0
    if [ "$s" = COMPLETED ] && out_of nodefail | grep -q "resuming from $ck/$newest" && no_tmp "$ck" \
       && "$DPTRAIN" compare "$W/straight-brief.h5" "$W/nodefail.h5" >/dev/null; then
        ok "node failure (link down, processes frozen): node2 down, job requeued by SLURM ($(restarts_of "$j") restart), $(out_of nodefail | grep -c "starting it again") new start(s) of a step that failed to launch, resumed from $newest, model bitwise = the uninterrupted run's ($((SECONDS - t0)) s from the failure)"
    else
        bad "node-failure job $j: $s, newest checkpoint at the failure $newest"; show_out nodefail; ls "$ck"
    fi
}

# 10. a checkpoint now, and the job goes on: scancel --signal=USR2 (to the
# tasks, not the batch shell)
case_10() {
    local ck=$W/ck-usr2 first
    j=$(submit usr2 "$ck" --nodes=1 --ntasks-per-node=2 -- "${JOB[@]}" --checkpoint-every 0 "${SHORT[@]}" \
        --save "$W/usr2.h5")
    wait_until 120 is_running "$j" && wait_until 60 lock_held "$ck"
    S scancel --signal=USR2 "$j"
    s=$(wait_job "$j" 120)
    first=$(ckpts "$ck" | head -1)
    if [ "$s" = COMPLETED ] && [ "$(ckpts "$ck" | wc -l)" -eq 2 ] && out_of usr2 | grep -q "^checkpoint .*$first written" \
       && "$DPTRAIN" compare "$W/straight.h5" "$W/usr2.h5" >/dev/null; then
        ok "scancel --signal=USR2: checkpoint $first written by every rank after the same step, the job went on: $s, model bitwise = the uninterrupted run's"
    else
        bad "USR2 job $j: $s, checkpoints: $(ckpts "$ck" | tr '\n' ' ')"; show_out usr2
    fi
}

for c in $CASES; do "case_$c"; done
if [ "$fail" -gt 0 ]; then
    for f in "$SL"/log/*.log; do echo "== $f"; tail -n 40 "$f"; done
fi
finish
