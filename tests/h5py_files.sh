#!/bin/bash
# Files written by h5py the usual way (Python str attributes are variable-
# length strings): a model and a dataset are accepted (info, eval, predict,
# --init-from, train), give the same predictions as the model they copy, and
# a damaged variable-length string (global heap overwritten) ends in a clear
# error within the bound, never a hang. Predictions without labels: inputs
# as /x at the root, as /test/x alone, or as a CSV table without a label
# column (with a header), to HDF5 and to CSV; eval refuses them. A dataset
# of compact layout trains like its contiguous copy.
# Usage: h5py_files.sh DPTRAIN   (needs Debian's python3-h5py)
set -u
DPTRAIN=$1
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"
make_dataset "$T" 600
"$DPTRAIN" train --data "$T/d.h5" --layers 20,16,4 --epochs 2 --quiet --save "$T/orig.h5" </dev/null
"$PY" - "$T" <<'PYEOF'
import sys, h5py, numpy as np
T = sys.argv[1]
with h5py.File(f"{T}/orig.h5", "r") as src, h5py.File(f"{T}/py-model.h5", "w") as f:
    f.attrs["format"] = "dptrain-model"          # str: a variable-length string
    f.attrs["format_version"] = 1
    f.attrs["dptrain_version"] = "h5py"
    g = f.create_group("model")
    g.attrs["layers"] = np.array([20, 16, 4], dtype=np.int64)
    g.attrs["hidden"] = "sigmoid"
    g.attrs["output"] = "softmax"
    g.attrs["cost"] = "cce"
    for l in range(2):
        f[f"model/layer_{l}/weight"] = src[f"model/layer_{l}/weight"][...]
        f[f"model/layer_{l}/bias"] = src[f"model/layer_{l}/bias"][...]
with h5py.File(f"{T}/d.h5", "r") as src, h5py.File(f"{T}/py-data.h5", "w") as f:
    f.attrs["description"] = "written by h5py"
    f.attrs["class_names"] = ["zero", "one", "two", "three"]   # a variable-length string array
    f["train/x"] = src["train/x"][...].astype(np.float64)     # numpy's default: read as float32
    f["train/y"] = src["train/y"][...].astype(np.int64)
PYEOF
out=$("$DPTRAIN" info "$T/py-model.h5" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q "dptrain model" && printf '%s' "$out" | grep -q "hidden sigmoid, output softmax, cost cce"; then
    ok "a model written by h5py with str attributes: info reads it"
else
    bad "info on the h5py model: status $rc: $out"
fi
"$DPTRAIN" predict --model "$T/orig.h5" --data "$T/d.h5" --out "$T/p-orig.h5" >/dev/null 2>&1
"$DPTRAIN" predict --model "$T/py-model.h5" --data "$T/d.h5" --out "$T/p-py.h5" >/dev/null 2>&1
out=$("$DPTRAIN" info "$T/p-orig.h5")
if grep -q "predictions - predictions of" <<<"$out" && grep -q "/predictions output \[.*, 4\] float32" <<<"$out"; then
    ok "info recognises a predictions file"
else
    bad "info on predictions: $out"
fi
if same_group "$T/p-orig.h5" "$T/p-py.h5" /predictions; then
    ok "predict with the h5py model = predict with the model it copies"
else
    bad "predictions of the h5py model differ"
fi
if "$DPTRAIN" train --data "$T/py-data.h5" --init-from "$T/py-model.h5" --epochs 1 --quiet --save "$T/named.h5" \
       </dev/null \
   && "$DPTRAIN" info "$T/py-data.h5" | grep -q "written by h5py" \
   && "$DPTRAIN" info "$T/py-data.h5" | grep -q "/train      x \[600, 20\] float64, y \[600\] int64 labels 0..3" \
   && "$DPTRAIN" info "$T/named.h5" | grep -q "classes    4: zero, one, two, three"; then
    ok "a dataset written by h5py (str description, str class_names, float64 x): info names the types; trains from the h5py model; the model keeps the names"
else
    bad "training on the h5py dataset"
fi
# Damage the global heap that holds the strings: overwrite the bytes after
# its signature (GCOL) in a copy.
cp "$T/py-model.h5" "$T/damaged.h5"
"$PY" - "$T/damaged.h5" <<'PYEOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b"GCOL")
assert i >= 0, "no global heap"
for k in range(i + 8, min(i + 64, len(b))):
    b[k] = 0xff
open(p, "wb").write(bytes(b))
PYEOF
# The same damage to the dataset's heap (its description and class_names).
cp "$T/py-data.h5" "$T/damaged-data.h5"
"$PY" - "$T/damaged-data.h5" <<'PYEOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b"GCOL")
assert i >= 0, "no global heap"
for k in range(i + 8, min(i + 96, len(b))):
    b[k] = 0xff
open(p, "wb").write(bytes(b))
PYEOF
out=$(timeout 60 "$DPTRAIN" train --data "$T/damaged-data.h5" --layers 20,8,4 --epochs 1 --quiet </dev/null 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "class_names" <<<"$out"; then
    ok "damaged class_names (variable-length strings): status $rc ($(printf '%s' "$out" | cut -c1-120))"
else
    bad "damaged class_names: status $rc: $out"
fi
start=$(date +%s)
out=$(timeout 60 "$DPTRAIN" info "$T/damaged.h5" 2>&1)
rc=$?
secs=$(( $(date +%s) - start ))
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(printf '%s\n' "$out" | grep -c '^dptrain: error: ')" -eq 1 ]; then
    ok "a damaged variable-length string: status $rc after $secs s ($(printf '%s' "$out" | cut -c1-110))"
else
    bad "damaged variable-length string: status $rc after $secs s: $out"
fi
# ---- compact datasets (their bytes in the object header): a sound one
# trains to the same model as the contiguous file it copies; one whose
# header holds fewer bytes than its extent needs is refused
# (tests/fuzz/regressions/hdf5/compact-*, cli_bad_input).
"$PY" - "$T" <<'PYEOF'
import sys, h5py, numpy as np
T = sys.argv[1]
with h5py.File(f"{T}/d.h5", "r") as src, h5py.File(f"{T}/compact.h5", "w") as f:
    for name in ("train/x", "train/y"):
        a = src[name][...]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        g = f.require_group("train")
        d = h5py.h5d.create(g.id, name[6:].encode(), h5py.h5t.py_create(a.dtype),
                            h5py.h5s.create_simple(a.shape), dcpl=dcpl)
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(a))
        assert f[name].id.get_create_plist().get_layout() == h5py.h5d.COMPACT
PYEOF
"$DPTRAIN" train --data "$T/d.h5" --layers 20,8,4 --epochs 2 --quiet --save "$T/contig-m.h5" </dev/null
"$DPTRAIN" train --data "$T/compact.h5" --layers 20,8,4 --epochs 2 --quiet --save "$T/compact-m.h5" </dev/null
if same_group "$T/contig-m.h5" "$T/compact-m.h5" /model; then
    ok "a dataset of compact layout (written by h5py) trains to the contiguous copy's model, bit for bit"
else
    bad "training on a compact-layout dataset"
fi
# ---- predict without labels
"$PY" - "$T" <<'PYEOF'
import sys, h5py, numpy as np
T = sys.argv[1]
with h5py.File(f"{T}/d.h5", "r") as src:
    x = src["train/x"][...].astype(np.float32)
with h5py.File(f"{T}/root-x.h5", "w") as f:
    f["x"] = x
with h5py.File(f"{T}/test-x.h5", "w") as f:
    f["test/x"] = x
with open(f"{T}/inputs.csv", "w") as f:
    f.write(",".join(f"f{j}" for j in range(x.shape[1])) + "\n")
    for row in x:
        f.write(",".join("%.9g" % v for v in row) + "\n")
PYEOF
"$DPTRAIN" predict --model "$T/orig.h5" --data "$T/d.h5" --split train --out "$T/p-train.h5" >/dev/null
for src in root-x.h5 test-x.h5 inputs.csv; do
    for fmt in h5 csv; do
        out=$("$DPTRAIN" predict --model "$T/orig.h5" --data "$T/$src" --out "$T/u-$src.$fmt" 2>&1)
        rc=$?
        same=$("$PY" - "$T/p-train.h5" "$T/u-$src.$fmt" <<'PYEOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    cls = f["predictions/class"][...]; out = f["predictions/output"][...]
p = sys.argv[2]
if p.endswith(".csv"):
    head = open(p).readline().strip()
    rows = np.loadtxt(p, delimiter=",", skiprows=1, ndmin=2)
    c, o = rows[:, 0].astype(int), rows[:, 1:]
    ok = head == "class," + ",".join(f"output_{j}" for j in range(out.shape[1]))
else:
    with h5py.File(p, "r") as f:
        c = f["predictions/class"][...]; o = f["predictions/output"][...]
    ok = True
ok = ok and c.shape == cls.shape and (c == cls).all() and np.abs(o - out).max() <= (1e-6 if p.endswith(".csv") else 0)
print("yes" if ok else "no")
PYEOF
)
        if [ "$rc" -eq 0 ] && [ "$same" = yes ]; then
            ok "predict on $src (no labels) to .$fmt = predict on the labelled split"
        else
            bad "predict on $src to .$fmt: status $rc, same: $same: $out"
        fi
    done
done
out=$("$DPTRAIN" eval --model "$T/orig.h5" --data "$T/root-x.h5" 2>&1)
rc=$?
if [ "$rc" -eq 3 ] && printf '%s' "$out" | grep -q "missing dataset /y (the labels"; then
    ok "eval on inputs without labels: status 3 ($(printf '%s' "$out" | cut -c17-90))"
else
    bad "eval without labels: status $rc: $out"
fi
finish
