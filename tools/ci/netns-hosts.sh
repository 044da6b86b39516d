# Hosts in network namespaces, for the cluster tests (sourced by
# tools/ci/netns.sh and tools/ci/slurm.sh; needs root and iproute2).
#
#   ns_up N        N hosts: namespaces $NS_PFX-n1..nN joined by veth links to a
#                  bridge in a namespace of its own; host i has address
#                  10.213.0.i/24 on eth0 (used only between these hosts) and
#                  is named node<i>; writes $NS_DIR/hosts and the rsh agent
#                  $NS_DIR/nsrsh (`nsrsh [options] HOST COMMAND...`, for mpirun)
#   ns_exec I CMD  runs CMD on host I: in its network namespace, with its own
#                  hostname, /etc/hosts, /tmp and /dev/shm (UTS and mount
#                  namespaces: Open MPI's shared-memory files, which name
#                  their host, stay on it as on separate machines); the rest
#                  of the file system (/sys/fs/cgroup, /run/munge)
#                  is the machine's (nsenter, not `ip netns exec`, which
#                  remounts /sys)
#   ns_fail I      host I fails as a machine that loses its power: its link
#                  goes down (nothing more reaches the others, not even a TCP
#                  reset) and every process on it stops (SIGSTOP)
#   ns_revive I    after ns_fail: its processes are killed (waiting for them
#                  with tests/lib.sh's wait_until) and its link comes up; the
#                  caller starts again what the host runs
#   ns_down        removes them (also on exit, through the caller's trap)
#
# Files a host reads must live outside /tmp (each host has its own): NS_DIR
# is under /var/tmp, and the callers copy their binaries there.
NS_PFX=${NS_PFX:-dptns$$}
NS_DIR=${NS_DIR:-$(mktemp -d /var/tmp/dptns.XXXXXX)}
# A host's own files (both ns_exec and nsrsh): /etc/hosts, /tmp, /dev/shm.
NS_MOUNTS="mount --bind $NS_DIR/hosts /etc/hosts && mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /dev/shm"
NS_N=0

ns_up() {
    NS_N=$1
    command -v ip >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null; }
    ip netns add "$NS_PFX-br"
    ip -n "$NS_PFX-br" link add br0 type bridge
    ip -n "$NS_PFX-br" link set br0 up
    local i ns
    for i in $(seq "$NS_N"); do
        ns=$NS_PFX-n$i
        ip netns add "$ns"
        ip link add "v$i-$$" netns "$NS_PFX-br" type veth peer name eth0 netns "$ns"
        ip -n "$NS_PFX-br" link set "v$i-$$" master br0 up
        ip -n "$ns" addr add "10.213.0.$i/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
    done
    { echo "127.0.0.1 localhost"; for i in $(seq "$NS_N"); do echo "10.213.0.$i node$i"; done; } > "$NS_DIR/hosts"
    cat > "$NS_DIR/nsrsh" <<AGENT
#!/bin/bash
while [ "\${1:0:1}" = "-" ]; do shift; done
host=\$1; shift
i=\${host##*.}
i=\${i#node}
exec nsenter --net=/run/netns/$NS_PFX-n\$i unshare --uts --mount /bin/sh -c \\
    "hostname node\$i && $NS_MOUNTS && exec \$*"
AGENT
    chmod +x "$NS_DIR/nsrsh"
}

ns_exec() {
    local i=$1
    shift
    nsenter --net="/run/netns/$NS_PFX-n$i" unshare --uts --mount /bin/sh -c \
        "hostname node$i && $NS_MOUNTS && exec \"\$@\"" sh "$@"
}

ns_fail() {
    ip -n "$NS_PFX-br" link set "v$1-$$" down
    local k
    for k in 1 2 3; do   # again, for a process forked meanwhile
        ip netns pids "$NS_PFX-n$1" | xargs -r kill -STOP
    done
}

ns_revive() {
    local pids
    pids=$(ip netns pids "$NS_PFX-n$1")
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null
        # shellcheck disable=SC2086
        wait_until 20 all_gone $pids
    fi
    ip -n "$NS_PFX-br" link set "v$1-$$" up
}

ns_down() {
    local i
    for i in $(seq "$NS_N"); do ip netns del "$NS_PFX-n$i" 2>/dev/null || true; done
    ip netns del "$NS_PFX-br" 2>/dev/null || true
    rm -rf "$NS_DIR"
}
