#!/usr/bin/python3
"""Reference trajectories for the optimisers, from an implementation that is
not ours: PyTorch (Debian's python3-torch) for SGD, momentum, Nesterov,
Adagrad, RMSprop and Adam, and, for Nadam (torch 1.13's NAdam has a known bug,
fixed upstream in PR 92699), a NumPy transcription of Dozat's equations with
the gradients taken from torch's autograd.

A fixed net [4, 5, 3] (sigmoid hidden units, softmax output, cross-entropy
averaged over a full batch of 12 samples), 50 steps of each optimiser with
non-default hyper-parameters; the parameters after every step, in dptrain's
flat layout (W0 [5, 4] row-major, b0, W1 [3, 5], b1), float32.

Writes tests/data/optim_reference.h5 (committed; tests do not need torch):
  /inputs/x [12, 4] float32, /inputs/y [12] int32, /init [n] float32
  /<optimizer>/params [50, n] float32, attrs lr, momentum, beta1, beta2, eps, decay
"""
import os
import sys

import h5py
import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 50
SIZES = [4, 5, 3]
torch.set_num_threads(1)

HYPER = {
    "sgd": dict(lr=0.3),
    "momentum": dict(lr=0.2, momentum=0.8),
    "nesterov": dict(lr=0.2, momentum=0.7),
    "adagrad": dict(lr=0.15, eps=1e-6),
    "rmsprop": dict(lr=0.01, decay=0.85, eps=1e-6),
    "adam": dict(lr=0.02, beta1=0.8, beta2=0.99, eps=1e-6),
    "nadam": dict(lr=0.02, beta1=0.85, beta2=0.995, eps=1e-6),
}


def make_problem():
    rng = np.random.default_rng(20261126)
    x = rng.uniform(-1, 1, size=(12, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=12).astype(np.int32)
    w0 = rng.normal(0, 0.5, size=(5, 4)).astype(np.float32)
    b0 = rng.normal(0, 0.5, size=5).astype(np.float32)
    w1 = rng.normal(0, 0.5, size=(3, 5)).astype(np.float32)
    b1 = rng.normal(0, 0.5, size=3).astype(np.float32)
    return x, y, [w0, b0, w1, b1]


def flat(params):
    return np.concatenate([p.detach().numpy().reshape(-1) for p in params]).astype(np.float32)


def loss_fn(params, x, y):
    w0, b0, w1, b1 = params
    h = torch.sigmoid(x @ w0.T + b0)
    z = h @ w1.T + b1
    return torch.nn.functional.cross_entropy(z, y.long(), reduction="mean")


def run_torch(name, hp, x, y, init):
    params = [torch.tensor(p, requires_grad=True) for p in init]
    if name == "sgd":
        opt = torch.optim.SGD(params, lr=hp["lr"])
    elif name in ("momentum", "nesterov"):
        opt = torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], nesterov=name == "nesterov")
    elif name == "adagrad":
        opt = torch.optim.Adagrad(params, lr=hp["lr"], eps=hp["eps"])
    elif name == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=hp["lr"], alpha=hp["decay"], eps=hp["eps"])
    elif name == "adam":
        opt = torch.optim.Adam(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])
    traj = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss_fn(params, x, y).backward()
        opt.step()
        traj.append(flat(params))
    return np.stack(traj)


def run_nadam(hp, x, y, init):
    """Dozat (2016), 'Incorporating Nesterov momentum into Adam', with the
    momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t * 0.004)):
      m_t = b1 m + (1 - b1) g;  v_t = b2 v + (1 - b2) g^2;  v^ = v_t / (1 - b2^t)
      w -= lr [ (1 - mu_t) / (1 - prod_{i<=t} mu_i) g + mu_{t+1} / (1 - prod_{i<=t+1} mu_i) m_t ] / (sqrt(v^) + eps)
    Computed in float32 like the trainer, the scalar coefficients in float64."""
    params = [torch.tensor(p, requires_grad=True) for p in init]
    b1, b2, eps, lr = hp["beta1"], hp["beta2"], hp["eps"], hp["lr"]
    w = [p.copy() for p in init]
    m = [np.zeros_like(p) for p in w]
    v = [np.zeros_like(p) for p in w]
    prod = 1.0
    traj = []
    for t in range(1, STEPS + 1):
        for p, wi in zip(params, w):
            p.data = torch.from_numpy(wi.copy())
            p.grad = None
        loss_fn(params, x, y).backward()
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * 0.004))
        mu_n = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * 0.004))
        prod *= mu_t
        cg = np.float32((1 - mu_t) / (1 - prod))
        cm = np.float32(mu_n / (1 - prod * mu_n))
        c2 = np.float32(1.0 / (1 - b2 ** t))
        for i, p in enumerate(params):
            g = p.grad.numpy()
            m[i] = np.float32(b1) * m[i] + np.float32(1 - b1) * g
            v[i] = np.float32(b2) * v[i] + np.float32(1 - b2) * g * g
            w[i] = w[i] - np.float32(lr) * (cg * g + cm * m[i]) / (np.sqrt(v[i] * c2) + np.float32(eps))
        traj.append(np.concatenate([wi.reshape(-1) for wi in w]).astype(np.float32))
    return np.stack(traj)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "optim_reference.h5")
    x, y, init = make_problem()
    xt, yt = torch.tensor(x), torch.tensor(y)
    with h5py.File(out, "w") as f:
        f.attrs["description"] = ("optimiser reference trajectories: torch %s (nadam: NumPy %s transcription of "
                                  "Dozat 2016)" % (torch.__version__, np.__version__))
        f.attrs["layers"] = np.asarray(SIZES, dtype=np.int32)
        f.attrs["hidden"] = "sigmoid"
        f.attrs["output"] = "softmax"
        f.attrs["cost"] = "cce"
        g = f.create_group("inputs")
        g.create_dataset("x", data=x)
        g.create_dataset("y", data=y)
        f.create_dataset("init", data=np.concatenate([p.reshape(-1) for p in init]).astype(np.float32))
        for name, hp in HYPER.items():
            traj = run_nadam(hp, xt, yt, init) if name == "nadam" else run_torch(name, hp, xt, yt, init)
            d = f.create_dataset(f"{name}/params", data=traj)
            full = dict(lr=0.0, momentum=0.0, beta1=0.9, beta2=0.999, eps=1e-8, decay=0.9)
            full.update(hp)
            for k, v in full.items():
                d.parent.attrs[k] = float(v)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
