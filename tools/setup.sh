#!/bin/bash
# Installs what dptrain needs on Debian 12 (only what is missing), then
# configures and builds it in build/. Sourced by the two entry points
# (tools/quickstart.sh and tools/test.sh); safe to run on its own.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKAGES=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-dev hdf5-tools
          libcmocka-dev libinih-dev zlib1g-dev dataset-fashion-mnist python3-h5py python3-onnx python3-pandas ${DPT_EXTRA_PACKAGES:-})

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD=${DPT_BUILD_DIR:-$ROOT/build}
echo "== building in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release ${DPT_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
