#!/usr/bin/python3
"""Where the time goes in a data-parallel step: runs dptrain on one net and
batch over several layouts (ranks x threads): with several ranks, the flat
MPI_Allreduce, the node-sliced weight gradient (DPT_SLICED=1; the default
from 2 ranks on a node) and each rank's gradient summed through shared
memory (DPT_SLICED=0), with and without overlap, and deterministic mode both ways;
with one rank, the default, its threads working as ranks (DPT_TEAM=1; the default
for large nets from 4 threads) and sharing each product (DPT_TEAM=0); prints the per-phase breakdown (seconds, mean over
ranks, with the max) and the throughput ratios, side by side from one run.

Usage: tools/results/dp_timing.py [--layers 784,1024,1024,10] [--batch 256] [--steps 100]
                          [--layouts 1x2,2x1] [--reps 3] [--json FILE]
"""
import argparse
import json
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHASES = ["data", "compute", "allreduce", "update", "eval"]


def run(dptrain, data, layers, batch, steps, ranks, threads, extra, env, tmp):
    metrics = os.path.join(tmp, "m.jsonl")
    cmd = [os.path.join(ROOT, "tools", "launch.sh"), str(ranks), str(threads), dptrain, "train",
           "--data", data, "--layers", layers, "--hidden", "relu", "--output", "softmax", "--cost", "cce",
           "--optimizer", "momentum", "--lr", "0.01", "--batch", str(batch), "--epochs", "1",
           "--max-steps", str(steps), "--quiet", "--metrics", metrics] + extra
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, env=dict(os.environ, **env))
    with open(metrics) as f:
        last = [json.loads(line) for line in f][-1]
    return last


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dptrain", default=os.path.join(ROOT, "build", "dptrain"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "fashion-mnist.h5"))
    ap.add_argument("--layers", default="784,1024,1024,10")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--layouts", default="1x2,2x1")
    ap.add_argument("--reps", type=int, default=3, help="rounds, interleaved; medians are reported")
    ap.add_argument("--json")
    args = ap.parse_args()
    # shm: the node-sliced weight gradient (DPT_SLICED=1); "summed": each rank's whole gradient
    # summed through shared memory (DPT_SLICED=0), with and without overlap
    sliced, summed = {"DPT_SLICED": "1"}, {"DPT_SLICED": "0"}
    multi = [("mpi", ["--reduce", "mpi"], {}), ("shm (sliced)", ["--reduce", "shm"], sliced),
             ("shm, summed", ["--reduce", "shm", "--no-overlap"], summed),
             ("shm, summed, overlap", ["--reduce", "shm", "--overlap"], summed),
             ("mpi, overlap", ["--reduce", "mpi", "--overlap"], {}),
             ("deterministic (sliced)", ["--deterministic"], sliced), ("deterministic, summed", ["--deterministic"], summed)]
    # one process (its threads work as ranks by default for large nets from 4 threads, else
    # share each product), and each of the two forced (DPT_TEAM=1 / 0)
    single = [("one process", [], {}), ("threads as ranks", [], {"DPT_TEAM": "1"}),
              ("threads sharing products", [], {"DPT_TEAM": "0"}), ("deterministic", ["--deterministic"], {})]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.reps):
            for layout in args.layouts.split(","):
                ranks, threads = (int(v) for v in layout.split("x"))
                for name, extra, env in (multi if ranks > 1 else single):
                    m = run(args.dptrain, args.data, args.layers, args.batch, args.steps, ranks, threads, extra, env,
                            tmp)
                    runs.setdefault((ranks, threads, name), []).append(m)
    rows = []
    for (ranks, threads, name), ms in runs.items():
        sps = median([m["samples_per_s"] for m in ms])
        time = {p: {k: median([m["time"][p][k] for m in ms]) for k in ("mean", "max")} for p in PHASES}
        step_s = args.steps * args.batch / sps
        rows.append({"ranks": ranks, "threads": threads, "variant": name, "samples_per_s": sps, "time": time,
                     "reduce_share": time["allreduce"]["mean"] / step_s, "all": [m["samples_per_s"] for m in ms]})
    print(f"net [{args.layers}], global batch {args.batch}, {args.steps} steps, median of {args.reps} interleaved rounds; "
          "seconds per phase, mean over ranks (max); 'allreduce' is the wait for the reduction (its part not hidden); "
          "'share' is that wait over the run's time; 'vs 1 rank' compares with the one-process layout")
    print("| ranks x threads | variant | samples/s | " + " | ".join(PHASES[:-1]) + " | share | vs 1 rank |")
    print("|---|---|---:|" + "---:|" * (len(PHASES) - 1) + "---:|---:|")
    base = max((r["samples_per_s"] for r in rows if r["ranks"] == 1 and r["variant"] == "one process"), default=None)
    for r in rows:
        cells = [f"{r['time'][p]['mean']:.3f} ({r['time'][p]['max']:.3f})" for p in PHASES[:-1]]
        rel = f"{r['samples_per_s'] / base:.2f}" if base else "-"
        print(f"| {r['ranks']} x {r['threads']} | {r['variant']} | {r['samples_per_s']:.0f} | " + " | ".join(cells)
              + f" | {100 * r['reduce_share']:.1f}% | {rel} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
