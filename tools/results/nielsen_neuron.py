#!/usr/bin/python3
"""Nielsen's single neuron (Neural Networks and Deep Learning, chapter 3):
input 1, target 0, eta = 0.15, trained by dptrain from w = 0.6, b = 0.9 and
from w = b = 2.0, with the quadratic cost and with cross-entropy. Prints a
Markdown table of the neuron's output after selected epochs (and writes the
per-epoch outputs as CSV with --csv).

The output after each epoch comes from the trainer's own evaluation of the
training set (--eval-train): quadratic cost C = a^2/2, so a = sqrt(2C);
cross-entropy C = -ln(1 - a), so a = 1 - exp(-C).

Usage: tools/results/nielsen_neuron.py [--dptrain build/dptrain] [--epochs 300] [--csv FILE]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
import dptrain as dptmodel  # noqa: E402  (tools/python/dptrain.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(dptrain, tmp, w, b, cost, epochs):
    model = os.path.join(tmp, f"start-{w}-{b}.h5")
    output_cost = {"mse": "mse", "ce": "bce"}[cost]
    dptmodel.write_model(model, [1, 1], [[w]], [[b]], output="sigmoid", cost=output_cost)
    data = os.path.join(tmp, "neuron.h5")
    if not os.path.exists(data):
        subprocess.run([dptrain, "convert", "csv", os.path.join(ROOT, "data", "neuron.csv"), "-o", data],
                       check=True, stdout=subprocess.DEVNULL)
    metrics = os.path.join(tmp, f"m-{w}-{b}-{cost}.jsonl")
    subprocess.run([dptrain, "train", "--data", data, "--init-from", model, "--output", "sigmoid",
                    "--cost", output_cost, "--optimizer", "sgd", "--lr", "0.15", "--batch", "1",
                    "--epochs", str(epochs), "--eval-train", "--quiet", "--metrics", metrics], check=True)
    a0 = 1.0 / (1.0 + math.exp(-(w + b)))
    outs = [a0]
    with open(metrics) as f:
        for line in f:
            c = json.loads(line)["train_eval_loss"]
            outs.append(math.sqrt(2.0 * c) if cost == "mse" else 1.0 - math.exp(-c))
    return outs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dptrain", default=os.path.join(ROOT, "build", "dptrain"))
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--csv")
    args = ap.parse_args()
    env_ok = {"OMP_NUM_THREADS": "1"}
    os.environ.update(env_ok)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "quadratic, w=0.6 b=0.9": run(args.dptrain, tmp, 0.6, 0.9, "mse", args.epochs),
            "quadratic, w=2 b=2": run(args.dptrain, tmp, 2.0, 2.0, "mse", args.epochs),
            "cross-entropy, w=2 b=2": run(args.dptrain, tmp, 2.0, 2.0, "ce", args.epochs),
        }
    marks = [e for e in (0, 10, 25, 50, 100, 150, 200, 300, args.epochs) if e <= args.epochs]
    marks = sorted(set(marks))
    print("| epoch | " + " | ".join(runs) + " |")
    print("|---:|" + "---:|" * len(runs))
    for e in marks:
        print(f"| {e} | " + " | ".join(f"{v[e]:.4f}" for v in runs.values()) + " |")
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("epoch," + ",".join(n.replace(", ", "_").replace(" ", "_").replace("=", "") for n in runs) + "\n")
            for e in range(args.epochs + 1):
                f.write(f"{e}," + ",".join(f"{v[e]:.6f}" for v in runs.values()) + "\n")


if __name__ == "__main__":
    main()
