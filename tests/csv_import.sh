#!/bin/bash
# CSV tables as users bring them, end to end: a table written by pandas'
# to_csv with its defaults (unnamed index column, header, class names as
# labels) converted with
# --split and --standardize, trained on 2 ranks, evaluated on its validation
# split; new inputs (no label column) converted with the stored statistics
# and predicted, also straight from the raw table (the model keeps the class
# names and the statistics); a ';'-separated regression table trained with a
# linear output. Checks the stored class names and statistics with h5py.
# Usage: csv_import.sh DPTRAIN MPIEXEC   (needs Debian's python3-h5py, python3-pandas, python3-onnx)
set -u
DPTRAIN=$1
MPIEXEC=$2
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"

# Three Gaussian clusters in 4 features with very different scales (so that
# standardising matters), labelled by name; the rows of new.csv come with
# their true classes in new-truth.txt.
"$PY" - "$T" <<'PYEOF'
import random, sys
import pandas as pd
T = sys.argv[1]
random.seed(5)
centres = {"setosa": (5.0, 3.4, 150.0, 0.2), "versicolor": (5.9, 2.8, 430.0, 1.3), "virginica": (6.6, 3.0, 550.0, 2.0)}
spread = (0.35, 0.3, 45.0, 0.25)
cols = ["sepal length", "sepal width", "petal area", "petal width"]
def row(name):
    return [round(random.gauss(c, s), 4) for c, s in zip(centres[name], spread)]
names = sorted(centres)
iris = pd.DataFrame([row(names[i % 3]) for i in range(900)], columns=cols)
iris["species"] = [names[i % 3] for i in range(900)]
iris.to_csv(f"{T}/iris.csv")                       # pandas' defaults: index column, header, ',' separator
iris.to_csv(f"{T}/iris-eu.csv", sep=";", decimal=",", index=False)   # a European spreadsheet's export
truth = [random.choice(names) for i in range(300)]
pd.DataFrame([row(n) for n in truth], columns=cols).to_csv(f"{T}/new.csv", index=False)
with open(f"{T}/new-truth.txt", "w") as t:
    t.write("".join(f"{names.index(n)}\n" for n in truth))
a = [random.uniform(-1, 1) for i in range(1000)]
b = [random.uniform(-1, 1) for i in range(1000)]
reg = pd.DataFrame({"a": a, "b": b, "target": [0.5 * u - 2 * v + 1 for u, v in zip(a, b)]})
reg.to_csv(f"{T}/reg.csv", sep=";", index=False)   # a spreadsheet-style ';' table
PYEOF
head -2 "$T/iris.csv" | sed 's/^/    /'
if "$DPTRAIN" convert csv "$T/iris.csv" -o "$T/iris.h5" --split 0.7,0.15,0.15 --seed 3 --standardize >/dev/null; then
    ok "pandas' default to_csv table converted"
else
    bad "pandas' table: convert failed"
fi
# The same table as a European spreadsheet writes it: ';' and decimal commas.
"$DPTRAIN" convert csv "$T/iris.csv" -o "$T/iris-plain.h5" >/dev/null
if "$DPTRAIN" convert csv "$T/iris-eu.csv" --decimal , --label-col species -o "$T/iris-eu.h5" >/dev/null &&
   same_group "$T/iris-plain.h5" "$T/iris-eu.h5" /train; then
    ok "';' with decimal commas (--decimal ,) gives the same dataset as pandas' default"
else
    bad "';' with decimal commas: $(head -2 "$T/iris-eu.csv")"
fi
out=$("$DPTRAIN" info "$T/iris.h5")
if grep -q "classes    3: setosa, versicolor, virginica" <<<"$out" && grep -q "/train      x \[630, 4\]" <<<"$out" &&
   grep -q "/validation x \[135, 4\]" <<<"$out" && grep -q "/test       x \[135, 4\]" <<<"$out"; then
    ok "info shows the class names and the 630/135/135 split"
else
    bad "info: $out"
fi
if "$PY" - "$T" <<'PYEOF'
import sys, h5py, numpy as np
T = sys.argv[1]
with h5py.File(f"{T}/iris.h5", "r") as f:
    names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["class_names"]]
    assert names == ["setosa", "versicolor", "virginica"], names
    x = f["train/x"][...]
    assert np.allclose(x.mean(0), 0, atol=1e-4) and np.allclose(x.std(0), 1, atol=1e-4), (x.mean(0), x.std(0))
    assert 100 < f["standardize/mean"][2] < 1000 and f["standardize/std"][2] > 10
PYEOF
then ok "h5py reads class_names; training x has mean 0, sd 1"; else bad "h5py check of iris.h5"; fi

"$MPIEXEC" -n 2 --oversubscribe "$DPTRAIN" train --data "$T/iris.h5" --layers 4,16,3 --hidden relu --optimizer adam \
    --lr 0.01 --batch 32 --epochs 15 --quiet --save "$T/iris-model.h5" </dev/null
out=$("$DPTRAIN" eval --model "$T/iris-model.h5" --data "$T/iris.h5" --split validation)
acc=$(sed -n 's/.*accuracy \([0-9.]*\).*/\1/p' <<<"$out")
if awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.9) }'; then
    ok "2-rank training on the converted table: validation accuracy $acc"
else
    bad "validation accuracy ${acc:-?} < 0.9: $out"
fi

# New inputs: the same standardisation, then predict. Three ways in: converted
# with --standardize-from, converted raw, and the CSV table itself; the model
# carries the training data's statistics and class names, so all three give
# the same predictions, named.
"$DPTRAIN" convert csv "$T/new.csv" --label-col none --standardize-from "$T/iris.h5" -o "$T/new.h5" >/dev/null &&
    "$DPTRAIN" predict --model "$T/iris-model.h5" --data "$T/new.h5" --split train --out "$T/pred.csv" >/dev/null
right=$(tail -n +2 "$T/pred.csv" | cut -d, -f1 | paste -d' ' - "$T/new-truth.txt" | awk '$1 == $2' | wc -l)
if [ "$right" -ge 285 ]; then
    ok "new inputs standardised with the stored statistics: $right of 300 predicted right"
else
    bad "only $right of 300 new inputs predicted right"
fi
if head -1 "$T/pred.csv" | grep -q '^class,name,output_0,output_1,output_2$' &&
   tail -n +2 "$T/pred.csv" | awk -F, '{ n[$1] = n[$1] " " $2 } END { exit !(n[0] ~ /^( setosa)+$/ && n[1] ~ /^( versicolor)+$/ && n[2] ~ /^( virginica)+$/) }'; then
    ok "predictions name the classes (class,name,output_...)"
else
    bad "predictions CSV: $(head -3 "$T/pred.csv")"
fi
"$DPTRAIN" convert csv "$T/new.csv" --label-col none -o "$T/raw.h5" >/dev/null
msg=$("$DPTRAIN" predict --model "$T/iris-model.h5" --data "$T/raw.h5" --out "$T/raw.csv" 2>&1)
msg2=$("$DPTRAIN" predict --model "$T/iris-model.h5" --data "$T/new.csv" --out "$T/direct.h5" 2>&1)
if grep -q "standardised with the statistics" <<<"$msg" && cmp -s "$T/pred.csv" "$T/raw.csv" &&
   grep -q "standardised with the statistics" <<<"$msg2"; then
    ok "raw inputs (HDF5 or the CSV itself) are standardised with the model's statistics: same predictions"
else
    bad "raw inputs: $msg / $msg2; $(diff "$T/pred.csv" "$T/raw.csv" | head -3)"
fi
if "$PY" - "$T" <<'PYEOF'
import sys, h5py, numpy as np
T = sys.argv[1]
with h5py.File(f"{T}/direct.h5", "r") as f:
    names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["class_names"]]
    cls = f["predictions/class"][...]
truth = np.loadtxt(f"{T}/new-truth.txt", dtype=int)
assert names == ["setosa", "versicolor", "virginica"], names
assert (cls == truth).sum() >= 285, (cls == truth).sum()
PYEOF
then ok "HDF5 predictions carry class_names"; else bad "HDF5 predictions: class_names or classes wrong"; fi
out=$("$DPTRAIN" info "$T/iris-model.h5")
if grep -q "classes    3: setosa, versicolor, virginica" <<<"$out" && grep -q "standardised inputs" <<<"$out"; then
    ok "the model file keeps the class names and statistics"
else
    bad "model info: $out"
fi

# Out to Python and ONNX: the module applies the same statistics, and the
# ONNX export (Sub, Div, then the layers) takes raw inputs; evaluated node by
# node with NumPy (Debian has no onnxruntime).
out=$(PYTHONPATH="$(dirname "$0")/../tools/python" "$PY" - "$T" <<'PYEOF'
import sys, csv, json, h5py, numpy as np, onnx
from onnx import numpy_helper
import dptrain
T = sys.argv[1]
m = dptrain.load_model(f"{T}/iris-model.h5")
raw = np.loadtxt(f"{T}/new.csv", delimiter=",", skiprows=1, dtype=np.float32)
y = m.forward(m.standardize(raw))
with h5py.File(f"{T}/direct.h5", "r") as f:
    ref = f["predictions/output"][...]
d_py = float(np.abs(y - ref).max())
g = m.to_onnx(f"{T}/iris.onnx").graph
onnx.checker.check_model(onnx.load(f"{T}/iris.onnx"))
v = {i.name: numpy_helper.to_array(i) for i in g.initializer}
v["x"] = raw
for n in g.node:
    a = [v[i] for i in n.input]
    if n.op_type == "Sub": r = a[0] - a[1]
    elif n.op_type == "Div": r = a[0] / a[1]
    elif n.op_type == "Gemm": r = a[0] @ a[1].T + a[2]
    elif n.op_type == "Relu": r = np.maximum(a[0], 0)
    elif n.op_type == "Softmax": e = np.exp(a[0] - a[0].max(1, keepdims=True)); r = e / e.sum(1, keepdims=True)
    elif n.op_type == "Identity": r = a[0]
    else: raise SystemExit(f"op {n.op_type}")
    v[n.output[0]] = r.astype(np.float32)
d_onnx = float(np.abs(v["y"] - ref).max())
meta = {p.key: p.value for p in onnx.load(f"{T}/iris.onnx").metadata_props}
names = json.loads(meta["class_names"])
ok = d_py <= 1e-5 and d_onnx <= 1e-4 and names == m.class_names == ["setosa", "versicolor", "virginica"] \
     and [n.op_type for n in g.node][:2] == ["Sub", "Div"] and m.names(y)[:1] == [names[int(ref[0].argmax())]]
print(("OK " if ok else "BAD ") + f"Python max|diff| {d_py:.2g}, ONNX ({len(g.node)} nodes: "
      f"{' '.join(n.op_type for n in g.node)}) max|diff| {d_onnx:.2g}, class names {names}")
PYEOF
)
if grep -q "^OK " <<<"$out"; then ok "raw CSV -> Python and ONNX: ${out#OK }"; else bad "Python/ONNX: $out"; fi

# Regression: ';' separators, float targets, a linear output.
"$DPTRAIN" convert csv "$T/reg.csv" -o "$T/reg.h5" --split 0.8,0,0.2 >/dev/null
out=$("$DPTRAIN" info "$T/reg.h5")
if grep -q "/train      x \[800, 2\] float32, y \[800, 1\] float32 targets" <<<"$out"; then
    ok "';' table with fractional labels becomes regression targets"
else
    bad "regression info: $out"
fi
"$MPIEXEC" -n 2 --oversubscribe "$DPTRAIN" train --data "$T/reg.h5" --layers 2,8,1 --hidden tanh --output linear \
    --cost mse --optimizer adam --lr 0.01 --batch 32 --epochs 30 --quiet --save "$T/reg-model.h5" </dev/null
out=$("$DPTRAIN" eval --model "$T/reg-model.h5" --data "$T/reg.h5")
loss=$(sed -n 's/.*loss \([0-9.e+-]*\).*/\1/p' <<<"$out")
# y has variance about 1.4 (0.25/3 + 4/3): a trained model is far below it.
if awk -v l="${loss:-9}" 'BEGIN { exit !(l < 0.01) }'; then
    ok "regression trained on 2 ranks: test loss $loss (C = 1/n sum 1/2 (y - a)^2)"
else
    bad "regression test loss ${loss:-?}: $out"
fi

# Errors name the file, line, column or option.
out=$("$DPTRAIN" convert csv "$T/iris.csv" -o "$T/x.h5" --label-col colour 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "label-col 'colour': .*iris.csv has no such column" <<<"$out"; then
    ok "unknown label column: $out"
else
    bad "unknown label column (rc $rc): $out"
fi
out=$("$DPTRAIN" convert csv "$T/iris.csv" -o "$T/x.h5" --split 0.7,0.2 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "split '0.7,0.2': expected three fractions" <<<"$out"; then ok "bad --split: $out"; else bad "bad --split (rc $rc): $out"; fi
out=$("$DPTRAIN" convert csv "$T/new.csv" --label-col none --standardize-from "$T/reg.h5" -o "$T/x.h5" 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "standardize-from .*reg.h5: no /standardize/mean" <<<"$out"; then ok "statistics missing: $out"; else bad "statistics missing (rc $rc): $out"; fi
[ ! -e "$T/x.h5" ] && ok "no output file after errors" || bad "an output file was left after errors"
finish
