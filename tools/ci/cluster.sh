#!/bin/bash
# The cluster-workflow job that CI runs: a real SLURM cluster of namespaced hosts
# (tools/ci/slurm.sh: training job, preemption and requeue, scaling study) and
# several hosts in network namespaces (tools/ci/netns.sh: training across them
# over TCP gives the same model as on one host).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
"$ROOT/tools/ci/slurm.sh"
"$ROOT/tools/ci/netns.sh" 2
"$ROOT/tools/ci/netns.sh" 3
