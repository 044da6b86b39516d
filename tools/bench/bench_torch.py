#!/usr/bin/python3
"""PyTorch training the same net as dptrain, for tools/bench/bench: Linear layers
with ReLU hidden units, softmax + cross-entropy (CrossEntropyLoss, mean over
the batch), plain SGD, batches drawn from a random permutation of the
Fashion-MNIST training set held in memory as float32. Prints JSON with
samples/s (median of repetitions) and peak RSS.

Usage: bench_torch.py DATA.h5 LAYERS BATCH STEPS REPS THREADS
"""
import json
import resource
import sys
import time

import h5py
import numpy as np
import torch


def main():
    data, layers, batch, steps, reps, threads = sys.argv[1:7]
    layers = [int(v) for v in layers.split(",")]
    batch, steps, reps, threads = int(batch), int(steps), int(reps), int(threads)
    torch.set_num_threads(threads)
    with h5py.File(data, "r") as f:
        xs = f["train/x"]
        x = xs[...].astype(np.float32) * float(xs.attrs.get("scale", 1.0))
        y = f["train/y"][...].astype(np.int64)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    torch.manual_seed(1)
    mods = []
    for i in range(len(layers) - 1):
        mods.append(torch.nn.Linear(layers[i], layers[i + 1]))
        if i < len(layers) - 2:
            mods.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    lossf = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(X.shape[0])
    pos = 0

    def step():
        nonlocal pos
        if pos + batch > X.shape[0]:
            pos = 0
        idx = perm[pos:pos + batch]
        pos += batch
        opt.zero_grad(set_to_none=False)
        loss = lossf(net(X[idx]), Y[idx])
        loss.backward()
        opt.step()

    for _ in range(min(20, steps)):
        step()
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - t0))
    rates.sort()
    print(json.dumps({"samples_per_s": rates[len(rates) // 2], "all": rates,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


if __name__ == "__main__":
    main()
