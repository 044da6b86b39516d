#!/bin/bash
# The cluster-workflow job that CI runs: a real single-node SLURM cluster
# (tools/slurm-ci.sh: training job, preemption and requeue, scaling study) and
# several hosts in network namespaces (tools/netns-ci.sh: training across them
# over TCP gives the same model as on one host).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/tools/slurm-ci.sh"
"$ROOT/tools/netns-ci.sh" 2
"$ROOT/tools/netns-ci.sh" 3
