#!/bin/bash
# tools/python/dptrain.py against dptrain itself: for nets with sigmoid, ReLU
# and tanh hidden units and softmax, sigmoid and linear outputs, the
# module's forward pass matches `dptrain predict` within 1e-5 (classes
# equal); the ONNX export passes onnx.checker, and evaluated node by node
# with NumPy (an evaluator written here, not the module's forward) matches
# within 1e-4; the metrics and trace loaders read a run's files.
# Usage: python_module.sh DPTRAIN SOURCE_DIR   (needs python3-h5py, python3-onnx)
set -u
DPTRAIN=$1
SRC=$2
PY=/usr/bin/python3
export OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$SRC/tests/lib.sh"
make_dataset "$T" 400
for net in "sigmoid softmax cce" "relu sigmoid bce" "tanh linear mse"; do
    set -- $net
    m="$T/m-$1-$2.h5"
    "$DPTRAIN" train --data "$T/d.h5" --layers 20,24,12,4 --hidden "$1" --output "$2" --cost "$3" --lr 0.05 \
        --epochs 2 --quiet --save "$m" --metrics "$T/m.jsonl" --trace "$T/t.h5" --trace-every 5 </dev/null
    "$DPTRAIN" predict --model "$m" --data "$T/d.h5" --out "$T/p.h5" >/dev/null
    out=$("$PY" - "$SRC/tools/python" "$m" "$T" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
import h5py, numpy as np, onnx
from onnx import numpy_helper
import dptrain
path, T = sys.argv[2], sys.argv[3]
m = dptrain.load_model(path)
x = dptrain.load_inputs(f"{T}/d.h5", "train")
y = m.forward(x)
with h5py.File(f"{T}/p.h5", "r") as f:
    ref, cls = f["predictions/output"][...], f["predictions/class"][...]
d_fwd = float(np.abs(y - ref).max())
same_cls = bool((m.predict(x) == cls).all())
model = m.to_onnx(f"{T}/m.onnx")
onnx.checker.check_model(onnx.load(f"{T}/m.onnx"))
# Node by node, with NumPy: an evaluator of the graph, independent of Model.forward.
g = model.graph
env = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in g.initializer}
env["x"] = x.astype(np.float64)
for n in g.node:
    a = [env[i] for i in n.input]
    if n.op_type == "Gemm":
        tb = {at.name: at.i for at in n.attribute}.get("transB", 0)
        r = a[0] @ (a[1].T if tb else a[1]) + a[2]
    elif n.op_type == "Sigmoid":
        r = 1 / (1 + np.exp(-a[0]))
    elif n.op_type == "Relu":
        r = np.maximum(a[0], 0)
    elif n.op_type == "Tanh":
        r = np.tanh(a[0])
    elif n.op_type == "Softmax":
        e = np.exp(a[0] - a[0].max(axis=1, keepdims=True)); r = e / e.sum(axis=1, keepdims=True)
    elif n.op_type == "Identity":
        r = a[0]
    else:
        raise SystemExit(f"unexpected node {n.op_type}")
    env[n.output[0]] = r
d_onnx = float(np.abs(env["y"] - ref).max())
met = dptrain.load_metrics(f"{T}/m.jsonl")
tr = dptrain.load_trace(f"{T}/t.h5")
n_epochs = len(met) if isinstance(met, list) else met.shape[0]
ok = d_fwd <= 1e-5 and same_cls and d_onnx <= 1e-4 and n_epochs == 2 and tr["loss"].shape[0] == tr["step"].shape[0] > 0
print(("OK " if ok else "BAD ") + f"forward max|diff| {d_fwd:.2g}, classes equal {same_cls}, ONNX ({len(g.node)} nodes, "
      f"checker passed) max|diff| {d_onnx:.2g}; metrics {n_epochs} epochs, trace {tr['step'].shape[0]} records")
PYEOF
)
    if printf '%s' "$out" | grep -q "^OK "; then
        ok "hidden $1, output $2: ${out#OK }"
    else
        bad "hidden $1, output $2: $out"
    fi
done
# tools/scaling/scaling.py: --mpirun-args takes the next word even when it
# starts with "--" (the launch itself is replaced by a stub here).
out=$("$PY" - "$SRC" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1] + "/tools/scaling")
import scaling
got = {}
scaling.cmd_run = lambda a, t: got.update(args=a, train=t)
sys.argv = ["scaling.py", "run", "/tmp/x", "--mpirun-args", "--mca btl self,vader", "--layouts", "1x1x2", "--", "--epochs", "1"]
scaling.main()
print(got["args"].mpirun_args, "|", got["args"].layouts, "|", " ".join(got["train"]))
PYEOF
)
if [ "$out" = "--mca btl self,vader | 1x1x2 | --epochs 1" ]; then
    ok "scaling.py --mpirun-args \"--mca ...\" is one value ($out)"
else
    bad "scaling.py --mpirun-args: $out"
fi
finish
