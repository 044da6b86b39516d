#!/usr/bin/python3
"""Where the time goes in a data-parallel step: runs dptrain on one net and
batch over several layouts (ranks x threads), with and without overlap and in
deterministic mode, and prints the per-phase breakdown (seconds, mean over
ranks, with the max) and the throughput ratios, side by side from one run.

Usage: tools/results/dp_timing.py [--layers 784,1024,1024,10] [--batch 128] [--steps 150]
                          [--layouts 1x2,2x1] [--json FILE]
"""
import argparse
import json
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHASES = ["data", "compute", "allreduce", "update", "eval"]


def run(dptrain, data, layers, batch, steps, ranks, threads, extra, tmp):
    metrics = os.path.join(tmp, "m.jsonl")
    cmd = [os.path.join(ROOT, "tools", "launch.sh"), str(ranks), str(threads), dptrain, "train",
           "--data", data, "--layers", layers, "--hidden", "relu", "--output", "softmax", "--cost", "cce",
           "--optimizer", "momentum", "--lr", "0.01", "--batch", str(batch), "--epochs", "1",
           "--max-steps", str(steps), "--quiet", "--metrics", metrics] + extra
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
    with open(metrics) as f:
        last = [json.loads(line) for line in f][-1]
    return last


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dptrain", default=os.path.join(ROOT, "build", "dptrain"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "fashion-mnist.h5"))
    ap.add_argument("--layers", default="784,1024,1024,10")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--layouts", default="1x2,2x1")
    ap.add_argument("--json")
    args = ap.parse_args()
    variants = [("overlap", ["--overlap"]), ("no overlap", ["--no-overlap"]), ("deterministic", ["--deterministic"])]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for layout in args.layouts.split(","):
            ranks, threads = (int(v) for v in layout.split("x"))
            for name, extra in variants:
                m = run(args.dptrain, args.data, args.layers, args.batch, args.steps, ranks, threads, extra, tmp)
                rows.append({"ranks": ranks, "threads": threads, "variant": name,
                             "samples_per_s": m["samples_per_s"], "time": m["time"]})
    print(f"net [{args.layers}], global batch {args.batch}, {args.steps} steps; seconds per phase, "
          "mean over ranks (max); 'vs default' is the throughput over that of the default mode (one allreduce)")
    print("| ranks x threads | variant | samples/s | " + " | ".join(PHASES[:-1]) + " | vs default |")
    print("|---|---|---:|" + "---:|" * (len(PHASES) - 1) + "---:|")
    base = {(r["ranks"], r["threads"]): r["samples_per_s"] for r in rows if r["variant"] == "no overlap"}
    for r in rows:
        key = (r["ranks"], r["threads"])
        cells = [f"{r['time'][p]['mean']:.3f} ({r['time'][p]['max']:.3f})" for p in PHASES[:-1]]
        print(f"| {r['ranks']} x {r['threads']} | {r['variant']} | {r['samples_per_s']:.0f} | "
              + " | ".join(cells) + f" | {r['samples_per_s'] / base[key]:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
