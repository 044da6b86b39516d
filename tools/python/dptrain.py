"""dptrain's files from Python: models (load, forward pass, write), PyTorch
and ONNX export, metrics and traces. Needs NumPy and h5py; PyTorch only for
to_torch(), the onnx package only for to_onnx(), pandas only for a
DataFrame of the metrics.

    import sys; sys.path.insert(0, "tools/python")
    import dptrain
    m = dptrain.load_model("runs/model.h5")        # weights [out, in], biases [out], float32
    y = m.forward(x)                                # x [N, D] float32 -> outputs [N, K]
    m.to_onnx("model.onnx")                         # Gemm + activation nodes, opset 13
    m.class_names, m.mean, m.std                    # from the training data, when it had them
    net = m.to_torch()                              # torch.nn.Sequential of Linear and activations

Command line: dptrain.py onnx MODEL.h5 OUT.onnx | forward MODEL.h5 DATA.h5 [SPLIT]
The layout of the files is the one in dptrain's README ("Files").
"""
import json
import sys

import h5py
import numpy as np

ACTIVATIONS = ("sigmoid", "relu", "tanh", "linear", "softmax")


def _text(v):
    """An HDF5 string attribute as str, fixed-length (bytes) or variable-length."""
    return v.decode() if isinstance(v, bytes) else str(v)


def _activate(z, kind):
    if kind == "sigmoid":
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    if kind == "relu":
        return np.maximum(z, 0).astype(np.float32)
    if kind == "tanh":
        return np.tanh(z).astype(np.float32)
    if kind == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return z


def classes(y):
    """Classes of outputs y [N, K], as dptrain predicts them (ties: the first)."""
    return (y[:, 0] > 0.5).astype(np.int32) if y.shape[1] == 1 else y.argmax(axis=1).astype(np.int32)


class Model:
    """A dptrain network: layers [inputs, ..., outputs], hidden and output
    activations, cost, and per layer a weight [out, in] and a bias [out]
    (the nn.Linear convention: y = W x + b). class_names, mean and std come
    from the data it was trained on (dptrain convert csv with class names or
    --standardize): None when it had none."""

    def __init__(self, layers, hidden, output, cost, weights, biases, class_names=None, mean=None, std=None):
        self.layers, self.hidden, self.output, self.cost = list(layers), hidden, output, cost
        self.weights = [np.asarray(w, dtype=np.float32) for w in weights]
        self.biases = [np.asarray(b, dtype=np.float32) for b in biases]
        self.class_names = list(class_names) if class_names is not None else None
        self.mean = np.asarray(mean, dtype=np.float32) if mean is not None else None
        self.std = np.asarray(std, dtype=np.float32) if std is not None else None

    def standardize(self, x):
        """Raw inputs as the network was trained on them: (x - mean) / std
        (as dptrain predict does for raw inputs); x itself without statistics."""
        x = np.asarray(x, dtype=np.float32)
        return x if self.mean is None else ((x - self.mean) / self.std).astype(np.float32)

    def names(self, y):
        """The class names of outputs y (the class numbers without names)."""
        c = classes(y)
        return [self.class_names[i] for i in c] if self.class_names else list(c)

    def forward(self, x):
        """Outputs [N, K] of inputs x [N, D], in float32 as dptrain computes them."""
        a = np.asarray(x, dtype=np.float32)
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ w.T + b
            a = _activate(z, self.output if l == len(self.weights) - 1 else self.hidden)
        return a

    def predict(self, x):
        """The predicted class of each row (for one output: output > 0.5)."""
        return classes(self.forward(x))

    def to_torch(self):
        """The same network as a torch.nn.Sequential (needs PyTorch)."""
        import torch
        mods = []
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
            kind = self.output if l == len(self.weights) - 1 else self.hidden
            act = {"sigmoid": torch.nn.Sigmoid(), "relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh(),
                   "softmax": torch.nn.Softmax(dim=1)}.get(kind)
            if act is not None:
                mods.append(act)
        return torch.nn.Sequential(*mods)

    def to_onnx(self, path=None, opset=13, raw_inputs=True):
        """An ONNX model (input "x" [N, D], output "y" [N, K]): one Gemm
        (transB) per layer and its activation. With statistics and raw_inputs,
        Sub and Div nodes first, so that it takes raw inputs; the class names
        go into the metadata ("class_names", JSON). Written to path if given;
        returned. Needs the onnx package."""
        import onnx
        from onnx import TensorProto, helper, numpy_helper
        nodes, inits, prev = [], [], "x"
        if raw_inputs and self.mean is not None:
            inits += [numpy_helper.from_array(self.mean, "mean"), numpy_helper.from_array(self.std, "std")]
            nodes += [helper.make_node("Sub", ["x", "mean"], ["centred"], name="standardize_sub"),
                      helper.make_node("Div", ["centred", "std"], ["x_std"], name="standardize_div")]
            prev = "x_std"
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            inits += [numpy_helper.from_array(w, f"W{l}"), numpy_helper.from_array(b, f"b{l}")]
            z = f"z{l}"
            nodes.append(helper.make_node("Gemm", [prev, f"W{l}", f"b{l}"], [z], transB=1, name=f"gemm{l}"))
            kind = self.output if l == len(self.weights) - 1 else self.hidden
            op = {"sigmoid": "Sigmoid", "relu": "Relu", "tanh": "Tanh", "softmax": "Softmax"}.get(kind)
            if op:
                attrs = {"axis": 1} if op == "Softmax" else {}
                nodes.append(helper.make_node(op, [z], [f"a{l}"], name=f"{op.lower()}{l}", **attrs))
                prev = f"a{l}"
            else:
                prev = z
        nodes.append(helper.make_node("Identity", [prev], ["y"], name="out"))
        graph = helper.make_graph(
            nodes, "dptrain",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", self.layers[0]])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", self.layers[-1]])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="dptrain")
        if self.class_names:
            helper.set_model_props(model, {"class_names": json.dumps(self.class_names)})
        onnx.checker.check_model(model)
        if path:
            onnx.save(model, path)
        return model


def load_model(path):
    """A model or checkpoint file (format 'dptrain-model' or 'dptrain-checkpoint')."""
    with h5py.File(path, "r") as f:
        fmt = _text(f.attrs["format"])
        if fmt not in ("dptrain-model", "dptrain-checkpoint"):
            raise ValueError(f"{path}: format '{fmt}'; expected a dptrain model or checkpoint")
        g = f["model"]
        layers = [int(v) for v in g.attrs["layers"]]
        ws = [g[f"layer_{l}/weight"][...] for l in range(len(layers) - 1)]
        bs = [g[f"layer_{l}/bias"][...] for l in range(len(layers) - 1)]
        names = [_text(v) for v in f.attrs["class_names"]] if "class_names" in f.attrs else None
        mean = f["standardize/mean"][...] if "standardize/mean" in f else None
        std = f["standardize/std"][...] if "standardize/std" in f else None
        return Model(layers, _text(g.attrs["hidden"]), _text(g.attrs["output"]), _text(g.attrs["cost"]), ws, bs,
                     names, mean, std)


def write_model(path, layers, weights, biases, hidden="sigmoid", output="sigmoid", cost="mse"):
    """A model file dptrain reads (--init-from, eval, predict); weights[l]:
    [layers[l+1], layers[l]], biases[l]: [layers[l+1]]."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = np.bytes_("dptrain-model")
        f.attrs["format_version"] = np.int64(1)
        f.attrs["dptrain_version"] = np.bytes_("python")
        g = f.create_group("model")
        g.attrs["layers"] = np.asarray(layers, dtype=np.int32)
        g.attrs["hidden"] = np.bytes_(hidden)
        g.attrs["output"] = np.bytes_(output)
        g.attrs["cost"] = np.bytes_(cost)
        for l, (w, b) in enumerate(zip(weights, biases)):
            lg = g.create_group(f"layer_{l}")
            lg.create_dataset("weight", data=np.asarray(w, dtype=np.float32).reshape(layers[l + 1], layers[l]))
            lg.create_dataset("bias", data=np.asarray(b, dtype=np.float32).reshape(layers[l + 1]))


def load_inputs(path, split=None):
    """The inputs x [N, D] (float32, uint8 scaled) of a dataset's split: the
    given one, else test, else the root's /x, else train."""
    with h5py.File(path, "r") as f:
        names = [split] if split else ["test", "", "train"]
        for s in names:
            key = f"{s}/x" if s else "x"
            if key in f:
                d = f[key]
                x = d[...]
                if x.dtype == np.uint8:
                    return (x.astype(np.float32) * np.float32(d.attrs.get("scale", 1.0))).astype(np.float32)
                return x.astype(np.float32)
    raise KeyError(f"{path}: no inputs (/test/x, /x or /train/x)")


def load_metrics(path):
    """The --metrics file: a pandas DataFrame (one row per epoch, the phase
    times flattened to time_<phase>_<min|mean|max>) if pandas is there, else
    a list of dicts."""
    rows = []
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            for phase, stats in r.pop("time", {}).items():
                for k, v in stats.items():
                    r[f"time_{phase}_{k}"] = v
            rows.append(r)
    try:
        import pandas
        return pandas.DataFrame(rows)
    except ImportError:
        return rows


def load_trace(path):
    """A --trace file as a dict of NumPy arrays (step, loss, grad_norm_weight,
    grad_norm_bias, params when recorded) and its attributes."""
    with h5py.File(path, "r") as f:
        g = f["trace"]
        out = {k: g[k][...] for k in g}
        out["attrs"] = {k: (_text(v) if isinstance(v, (bytes, str)) else v) for k, v in g.attrs.items()}
    return out


def main(argv):
    if len(argv) >= 3 and argv[0] == "onnx":
        m = load_model(argv[1])
        m.to_onnx(argv[2])
        print(f"wrote {argv[2]}" + (" (takes raw inputs: standardisation included)" if m.mean is not None else ""))
    elif len(argv) >= 3 and argv[0] == "forward":
        m = load_model(argv[1])
        x = load_inputs(argv[2], argv[3] if len(argv) > 3 else None)
        with h5py.File(argv[2], "r") as f:
            raw = "standardize" not in f          # as dptrain predict: raw inputs get the model's statistics
        y = m.forward(m.standardize(x) if raw else x)
        np.savetxt(sys.stdout, np.column_stack([classes(y), y]), fmt="%.9g")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
