#!/usr/bin/python3
"""Makes the README's figures from dptrain's own runs (traces and metrics),
with matplotlib, into docs/figures/:

  trajectories.png  weight-space trajectories over the contour of the loss of a
                    two-weight problem (a sigmoid neuron's w and b, cross-entropy):
                    full-batch GD vs SGD vs mini-batch, and mini-batch without and
                    with momentum, and Adam, all from the same start
  vanishing.png     per-layer gradient norms over one epoch of Fashion-MNIST for
                    [784,30,30,30,30,10] with sigmoid hidden units against ReLU
  neuron.png        Nielsen's single neuron: output against epoch, quadratic cost
                    against cross-entropy
  curves.png        training curves (loss and accuracy per epoch, train and test)
                    from metrics files
  scaling.png       throughput, speedup and efficiency against ranks, from the
                    scaling-study tool (tools/scaling/study.sh; as root only,
                    for its namespaced hosts; --no-scaling skips it)

Prints the per-layer gradient ratios at initialisation as JSON (stdout).
Usage: tools/results/figures.py [--out docs/figures] [--quick]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
import dptrain as dptmodel  # noqa: E402  (tools/python/dptrain.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DPTRAIN = os.path.join(ROOT, "build", "dptrain")
FASHION = os.path.join(ROOT, "data", "fashion-mnist.h5")
ENV = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))


def train(*args):
    subprocess.run([DPTRAIN, "train", "--quiet", *map(str, args)], check=True, env=ENV, stdin=subprocess.DEVNULL)


def read_trace(path):
    with h5py.File(path, "r") as f:
        t = f["trace"]
        return {k: t[k][...] for k in t.keys()}


# ---------------------------------------------------------------- 1. trajectories

def two_weight_data(tmp):
    """A sigmoid neuron on 12 points of one feature; two labels flipped so that
    the optimum is finite."""
    x = np.linspace(-2.0, 2.0, 12).astype(np.float32)
    y = (x > 0.3).astype(np.int32)
    y[2], y[9] = 1, 0
    csv = os.path.join(tmp, "two.csv")
    with open(csv, "w") as f:
        for xi, yi in zip(x, y):
            f.write(f"{xi:.6f},{yi}\n")
    h5 = os.path.join(tmp, "two.h5")
    subprocess.run([DPTRAIN, "convert", "csv", csv, "-o", h5], check=True, stdout=subprocess.DEVNULL)
    return x, y.astype(np.float64), h5


def bce(w, b, x, y):
    z = w[..., None] * x + b[..., None]
    return np.mean(np.logaddexp(0, z) - y * z, axis=-1)


def trajectories(out, tmp):
    x, y, data = two_weight_data(tmp)
    start = os.path.join(tmp, "start.h5")
    w0, b0 = -3.0, 3.5
    dptmodel.write_model(start, [1, 1], [[w0]], [[b0]], output="sigmoid", cost="bce")
    common = ["--data", data, "--layers", "1,1", "--output", "sigmoid", "--cost", "bce", "--init-from", start,
              "--trace-params", "0:0:0,0:0:b"]
    runs = {
        "full-batch GD (12)": dict(batch="full", epochs=60, opt=["--optimizer", "sgd", "--lr", "1.0"]),
        "SGD (batch 1)": dict(batch=1, epochs=5, opt=["--optimizer", "sgd", "--lr", "1.0"]),
        "mini-batch (4)": dict(batch=4, epochs=20, opt=["--optimizer", "sgd", "--lr", "1.0"]),
        "mini-batch (4) + momentum 0.9": dict(batch=4, epochs=20,
                                              opt=["--optimizer", "momentum", "--lr", "0.2", "--momentum", "0.9"]),
        "mini-batch (4), Adam": dict(batch=4, epochs=20, opt=["--optimizer", "adam", "--lr", "0.3"]),
    }
    paths = {}
    for name, r in runs.items():
        tr = os.path.join(tmp, f"tr{len(paths)}.h5")
        train(*common, "--batch", r["batch"], "--epochs", r["epochs"], "--trace", tr, *r["opt"])
        paths[name] = read_trace(tr)["params"]
    W, B = np.meshgrid(np.linspace(-4, 8, 240), np.linspace(-4, 5, 200))
    Z = bce(W, B, x.astype(np.float64), y)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    groups = [list(runs)[:3], [list(runs)[2], list(runs)[3], list(runs)[4]]]
    titles = ["(a) full batch, stochastic and mini-batch descent, eta = 1",
              "(b) mini-batch without and with momentum, and Adam"]
    for ax, names, title in zip(axes, groups, titles):
        cs = ax.contour(W, B, Z, levels=np.geomspace(Z.min() * 1.01, Z.max(), 18), cmap="viridis", linewidths=0.8)
        ax.clabel(cs, cs.levels[::3], fontsize=7, fmt="%.2f")
        for name in names:
            p = paths[name]
            ax.plot(p[:, 0], p[:, 1], ".-", ms=3, lw=1, label=f"{name}: {len(p) - 1} steps")
        ax.plot([w0], [b0], "k*", ms=12, label="start")
        i = np.unravel_index(np.argmin(Z), Z.shape)
        ax.plot([W[i]], [B[i]], "rx", ms=10, label="grid minimum")
        ax.set_xlabel("w")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    axes[0].set_ylabel("b")
    fig.suptitle("Weight-space trajectories of a sigmoid neuron (cross-entropy) traced by dptrain --trace-params")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "trajectories.png"), dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- 2. vanishing gradients

def vanishing(out, tmp, quick):
    layers = "784,30,30,30,30,10"
    res = {}
    steps = 600 if quick else 6000
    for hidden, init in (("sigmoid", "nielsen"), ("relu", "he")):
        tr = os.path.join(tmp, f"v-{hidden}.h5")
        train("--data", FASHION, "--layers", layers, "--hidden", hidden, "--init", init, "--output", "softmax",
              "--cost", "cce", "--lr", "0.1", "--batch", "10", "--epochs", "1", "--max-steps", steps,
              "--trace", tr, "--trace-every", "1")
        res[hidden] = read_trace(tr)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    ratios = {}
    for ax, hidden in zip(axes, ("sigmoid", "relu")):
        t = res[hidden]
        g = t["grad_norm_bias"][1:]
        st = t["step"][1:]
        k = 50  # running mean over 50 steps for legibility
        for l in range(g.shape[1] - 1):
            sm = np.convolve(g[:, l], np.ones(k) / k, mode="valid")
            ax.semilogy(st[k - 1:], sm, label=f"hidden layer {l + 1}")
        ax.set_title(f"{hidden} hidden units: |dC/db| per layer (mean of {k} steps)", fontsize=10)
        ax.set_xlabel("step (mini-batch of 10)")
        ax.legend(fontsize=8)
        first = g[:10].mean(axis=0)[:-1]
        ratios[hidden] = {"bias_grad_norm_first_10_steps": [float(v) for v in first],
                          "relative_to_last_hidden": [float(v / first[-1]) for v in first],
                          "weight_grad_norm_first_10_steps": [float(v) for v in t["grad_norm_weight"][1:11].mean(0)[:-1]]}
    axes[0].set_ylabel("norm of the averaged bias gradient")
    fig.suptitle(f"Vanishing gradients: [{layers}] on Fashion-MNIST, one epoch, traced by dptrain --trace")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "vanishing.png"), dpi=110)
    plt.close(fig)
    return ratios


# ---------------------------------------------------------------- 3. single neuron

def neuron(out, tmp):
    csv = os.path.join(tmp, "neuron.csv")
    subprocess.run([os.path.join(ROOT, "tools", "results", "nielsen_neuron.py"), "--csv", csv], check=True,
                   stdout=subprocess.DEVNULL, env=ENV)
    data = np.genfromtxt(csv, delimiter=",", names=True)
    names = data.dtype.names[1:]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, style in zip(names, ("-", "--", "-")):
        ax.plot(data["epoch"], data[n], style, label=n.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("output a (target 0)")
    ax.set_title("Nielsen's single neuron, eta = 0.15: the quadratic cost's slowdown", fontsize=10)
    ax.legend(["quadratic, w=0.6 b=0.9", "quadratic, w=2 b=2", "cross-entropy, w=2 b=2"])
    fig.tight_layout()
    fig.savefig(os.path.join(out, "neuron.png"), dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- 4. training curves

def plot_curves(files, labels, path, title):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for f, label in zip(files, labels):
        rows = [json.loads(line) for line in open(f)]
        ep = [r["epoch"] for r in rows]
        line, = axes[0].plot(ep, [r["train_loss"] for r in rows], "--", label=f"{label}: train")
        axes[0].plot(ep, [r["test_loss"] for r in rows], "-", color=line.get_color(), label=f"{label}: test")
        axes[1].plot(ep, [r["train_acc"] for r in rows], "--", color=line.get_color(), label=f"{label}: train")
        axes[1].plot(ep, [r["test_acc"] for r in rows], "-", color=line.get_color(), label=f"{label}: test")
    axes[0].set_ylabel("cost")
    axes[1].set_ylabel("accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves(out, tmp, quick):
    epochs = 3 if quick else 10
    files, labels = [], []
    for opt in (["--optimizer", "sgd", "--lr", "0.1"], ["--optimizer", "momentum", "--lr", "0.01"],
                ["--optimizer", "adam", "--lr", "0.001"]):
        m = os.path.join(tmp, f"c-{opt[1]}.jsonl")
        train("--data", FASHION, "--layers", "784,100,10", "--hidden", "relu", "--init", "he", "--batch", "32",
              "--epochs", epochs, "--metrics", m, *opt)
        files.append(m)
        labels.append(f"{opt[1]} (eta {opt[3]})")
    plot_curves(files, labels, os.path.join(out, "curves.png"),
                "Training curves: Fashion-MNIST [784,100,10], ReLU, batch 32 (train: mean over the epoch's batches)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "figures"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--curves", nargs="*", help="only plot these metrics files into OUT/curves.png")
    ap.add_argument("--no-scaling", action="store_true", help="do not rerun the scaling study")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.curves:
        plot_curves(args.curves, [os.path.basename(f) for f in args.curves], os.path.join(args.out, "curves.png"),
                    "Training curves")
        return
    with tempfile.TemporaryDirectory() as tmp:
        trajectories(args.out, tmp)
        ratios = vanishing(args.out, tmp, args.quick)
        neuron(args.out, tmp)
        curves(args.out, tmp, args.quick)
    if not args.no_scaling and os.geteuid() == 0:
        subprocess.run([os.path.join(ROOT, "tools", "scaling", "study.sh")], check=True, stdout=subprocess.DEVNULL)
    print(json.dumps(ratios, indent=1))


if __name__ == "__main__":
    main()
