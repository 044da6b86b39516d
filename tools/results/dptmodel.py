"""Reading and writing dptrain model files (HDF5) from Python, for the tools.

The layout is the one in DESIGN.md: root attributes format, format_version,
dptrain_version; /model with attributes layers, hidden, output, cost; and
/model/layer_<l>/weight [out, in], /model/layer_<l>/bias [out], float32.
"""
import h5py
import numpy as np


def write_model(path, layers, weights, biases, hidden="sigmoid", output="sigmoid", cost="mse"):
    """weights[l]: array [layers[l+1], layers[l]]; biases[l]: [layers[l+1]]."""
    with h5py.File(path, "w") as f:
        # Fixed-length strings (np.bytes_), as dptrain writes and expects them.
        f.attrs["format"] = np.bytes_("dptrain-model")
        f.attrs["format_version"] = np.int64(1)
        f.attrs["dptrain_version"] = np.bytes_("tools")
        g = f.create_group("model")
        g.attrs["layers"] = np.asarray(layers, dtype=np.int32)
        g.attrs["hidden"] = np.bytes_(hidden)
        g.attrs["output"] = np.bytes_(output)
        g.attrs["cost"] = np.bytes_(cost)
        for l, (w, b) in enumerate(zip(weights, biases)):
            lg = g.create_group(f"layer_{l}")
            lg.create_dataset("weight", data=np.asarray(w, dtype=np.float32).reshape(layers[l + 1], layers[l]))
            lg.create_dataset("bias", data=np.asarray(b, dtype=np.float32).reshape(layers[l + 1]))


def read_model(path):
    with h5py.File(path, "r") as f:
        g = f["model"]
        layers = [int(v) for v in g.attrs["layers"]]
        ws = [g[f"layer_{l}/weight"][...] for l in range(len(layers) - 1)]
        bs = [g[f"layer_{l}/bias"][...] for l in range(len(layers) - 1)]
    return layers, ws, bs
