#!/bin/bash
# Builds data/fashion-mnist.h5 from the IDX files of Debian's
# dataset-fashion-mnist package (60000 training and 10000 test images,
# 28x28, 10 classes), stored as uint8 with scale 1/255.
# Usage: data/make-fashion-mnist.sh [path/to/dptrain]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DPTRAIN=${1:-$HERE/../build/dptrain}
OUT=$HERE/fashion-mnist.h5
SRC=/usr/share/datasets/fashion-mnist
if [ -f "$OUT" ] && [ "$OUT" -nt "$SRC/train-images-idx3-ubyte.gz" ]; then
    echo "== $OUT is up to date"
    exit 0
fi
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -f "$SRC/$f" ] || { echo "missing $SRC/$f: apt-get install dataset-fashion-mnist" >&2; exit 1; }
done
"$DPTRAIN" convert idx "$SRC/train-images-idx3-ubyte.gz" "$SRC/train-labels-idx1-ubyte.gz" \
    "$SRC/t10k-images-idx3-ubyte.gz" "$SRC/t10k-labels-idx1-ubyte.gz" -o "$OUT" \
    --description "Fashion-MNIST (Zalando Research), 28x28 grey images, 10 classes; from Debian's dataset-fashion-mnist"
"$DPTRAIN" info "$OUT"
