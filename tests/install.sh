#!/bin/bash
# cmake --install into a prefix: the binary, man page, completion, headers,
# library, pkg-config and CMake package files are there; an out-of-tree C
# program built with `pkg-config --cflags --libs dptrain`, and one built by
# CMake through find_package(dptrain), run a model's forward pass and match
# `dptrain predict` (classes equal, outputs within 1e-6).
# Usage: install.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$1
SRC=$2
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/lib.sh"
P=$T/prefix
if cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1; then
    ok "cmake --install --prefix: $(find "$P" -type f | wc -l) files"
else
    bad "cmake --install failed"; tail -5 "$T/install.log"; finish; exit 1
fi
missing=""
for f in bin/dptrain share/man/man1/dptrain.1 share/bash-completion/completions/dptrain include/dptrain/net.h \
         include/dptrain/ckpt.h; do
    [ -f "$P/$f" ] || missing="$missing $f"
done
LIBA=$(find "$P" -name libdptrain.a | head -1)
PC=$(find "$P" -name dptrain.pc | head -1)
CFG=$(find "$P" -name dptrainConfig.cmake | head -1)
[ -n "$LIBA" ] || missing="$missing libdptrain.a"
[ -n "$PC" ] || missing="$missing dptrain.pc"
[ -n "$CFG" ] || missing="$missing dptrainConfig.cmake"
if [ -z "$missing" ] && ! grep -rq "h5util\|hdf5.h\|mpi.h" "$P/include/dptrain"; then
    ok "installed: binary, man page, bash completion, headers (no <hdf5.h>, <mpi.h>), $(basename "$LIBA"), pkg-config, CMake package"
else
    bad "missing from the install:$missing"
fi
DPT=$P/bin/dptrain
DPTRAIN=$DPT make_dataset "$T" 300
DPTRAIN=$DPT
"$DPT" train --data "$T/d.h5" --layers 20,16,4 --epochs 2 --quiet --save "$T/m.h5" </dev/null
"$DPT" predict --model "$T/m.h5" --data "$T/d.h5" --out "$T/p.h5" >/dev/null
same_as_predict() {   # text file of "class outputs..." lines
    "$PY" - "$T/p.h5" "$1" <<'PYEOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    cls = f["predictions/class"][...]; out = f["predictions/output"][...]
rows = np.loadtxt(sys.argv[2], ndmin=2)
ok = rows.shape[0] == cls.shape[0] and (rows[:, 0].astype(int) == cls).all() and np.abs(rows[:, 1:] - out).max() <= 1e-6
print("max |diff| %.2g over %d rows" % (np.abs(rows[:, 1:] - out).max(), rows.shape[0]))
sys.exit(0 if ok else 1)
PYEOF
}
export PKG_CONFIG_PATH=$(dirname "$PC")
if cc -std=c11 "$SRC/tests/install/forward.c" $(pkg-config --cflags --libs dptrain) -o "$T/fwd-pc" 2>"$T/cc.log" \
   && "$T/fwd-pc" "$T/m.h5" "$T/d.h5" > "$T/fwd-pc.txt" && msg=$(same_as_predict "$T/fwd-pc.txt"); then
    ok "a C program built with pkg-config --cflags --libs dptrain: forward pass = dptrain predict ($msg)"
else
    bad "the pkg-config build"; cat "$T/cc.log" | head -10
fi
if cmake -S "$SRC/tests/install" -B "$T/consumer" -DCMAKE_PREFIX_PATH="$P" >"$T/cm.log" 2>&1 \
   && cmake --build "$T/consumer" >>"$T/cm.log" 2>&1 \
   && "$T/consumer/forward" "$T/m.h5" "$T/d.h5" > "$T/fwd-cm.txt" && msg=$(same_as_predict "$T/fwd-cm.txt"); then
    ok "a C program built by CMake with find_package(dptrain) (dptrain::dptrain): forward pass = dptrain predict ($msg)"
else
    bad "the find_package build"; tail -15 "$T/cm.log"
fi
finish
