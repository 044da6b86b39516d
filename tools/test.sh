#!/bin/bash
# The whole test suite, from a fresh Debian 12 machine: install what is
# missing, build (warnings are errors), run every test through CTest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DPT_CMAKE_ARGS="-DDPT_WERROR=ON ${DPT_CMAKE_ARGS:-}" "$ROOT/tools/setup.sh"
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
cd "${DPT_BUILD_DIR:-$ROOT/build}"
ctest --output-on-failure --timeout 900 "$@"
