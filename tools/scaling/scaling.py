#!/usr/bin/python3
"""Scaling studies: run or collect a set of dptrain runs over layouts (nodes x
ranks x threads), read their metrics (throughput and the per-phase timing
breakdown, min/mean/max over ranks), and write a table (CSV and text) and PNG
plots of throughput, speedup and parallel efficiency, with the allreduce time
per step against the alpha-beta model

    t(P) = alpha * ceil(log2 P) + 2 (P - 1) / P * n / beta     (n: bytes reduced per step)

fitted to the measurements (least squares) and extrapolated, labelled as a
model, to rank counts that were not measured.

  tools/scaling/scaling.py run DIR --layouts 1x1x1,1x1x2,1x2x1 [--mpirun-args "..."] -- DPTRAIN-TRAIN-OPTIONS
      runs `tools/launch.sh R T dptrain train ...` for each NODESxRANKSxTHREADS layout here
      (--mpirun-args "--mca ..." passes options to mpirun)
      (nodes > 1 only with --hostfile), metrics into DIR/n<N>-r<R>-t<T>.jsonl
  tools/scaling/scaling.py report DIR [--study strong|weak] [--label TEXT]
      reads DIR/*.jsonl (from `run` or from jobs/slurm-scaling.sh) and writes
      DIR/scaling.csv, DIR/scaling.txt, DIR/scaling.png; prints the text table
"""
import argparse
import csv
import glob
import json
import math
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHASES = ["compute", "allreduce", "data", "update", "eval"]
# within compute, the products' own clock (metrics files of dptrain from 2026-11-27 on)
PRODUCTS = ["forward_products", "weight_gradients", "input_gradients"]


def layout_of(path):
    m = re.search(r"n(\d+)-r(\d+)-t(\d+)", os.path.basename(path))
    return tuple(int(v) for v in m.groups()) if m else None


def cmd_run(args, train_args):
    os.makedirs(args.dir, exist_ok=True)
    for lay in args.layouts.split(","):
        nodes, ranks, threads = (int(v) for v in lay.split("x"))
        P = nodes * ranks
        out = os.path.join(args.dir, f"n{nodes}-r{ranks}-t{threads}.jsonl")
        extra = args.mpirun_args.split()
        cmd = [os.path.join(ROOT, "tools", "launch.sh"), str(P), str(threads)] + (extra + ["--"] if extra else []) + \
              [os.path.join(ROOT, "build", "dptrain"), "train"] + train_args + ["--quiet", "--metrics", out]
        print("+ " + " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)


def load(d):
    rows = []
    for f in sorted(glob.glob(os.path.join(d, "*.jsonl"))):
        lay = layout_of(f)
        if not lay:
            continue
        lines = [json.loads(x) for x in open(f) if x.strip()]
        if not lines:
            continue
        last = lines[-1]
        nodes, rpn, threads = lay
        P = nodes * rpn
        steps = last["step"]
        t = last["time"]
        comp = t["compute"]
        rows.append(dict(nodes=nodes, ranks_per_node=rpn, threads=threads, ranks=P, cores=P * threads,
                         samples_per_s=last["samples_per_s"], steps=steps,
                         imbalance=(comp["max"] - comp["min"]) / comp["mean"] if comp["mean"] > 0 else 0.0,
                         allreduce_per_step_s=t["allreduce"]["min"] / steps,
                         **{f"{p}_mean_s": t[p]["mean"] for p in PHASES + PRODUCTS if p in t},
                         **{f"{p}_max_s": t[p]["max"] for p in PHASES if p in t}))
    rows.sort(key=lambda r: (r["ranks"], r["threads"], r["nodes"]))
    return rows


def fit_alpha_beta(rows, nbytes, bench=None, fit_ranks=None):
    """Least squares of t = alpha * ceil(log2 P) + (1/beta) * 2 (P-1)/P n, with
    alpha, 1/beta >= 0, over the runs with P > 1 (their allreduce wait per step,
    min over ranks, for n = nbytes) and the points of an allreduce
    micro-benchmark (bench_allreduce JSON: several n at one P)."""
    pts = [(math.ceil(math.log2(r["ranks"])), 2 * (r["ranks"] - 1) / r["ranks"] * nbytes, r["allreduce_per_step_s"])
           for r in rows if r["ranks"] > 1 and (not fit_ranks or r["ranks"] in fit_ranks)]
    if bench:
        P = bench["ranks"]
        pts += [(math.ceil(math.log2(P)), 2 * (P - 1) / P * b["bytes"], b["ours_us"] * 1e-6) for b in bench["sizes"]]
    if not pts:
        return None, None
    saa = sum(a * a for a, b, t in pts); sab = sum(a * b for a, b, t in pts); sbb = sum(b * b for a, b, t in pts)
    sat = sum(a * t for a, b, t in pts); sbt = sum(b * t for a, b, t in pts)
    det = saa * sbb - sab * sab
    if len({(a, b) for a, b, t in pts}) < 2 or abs(det) < 1e-30:
        # one distinct point: the bandwidth term alone
        a, b, t = pts[0]
        return 0.0, b / t if t > 0 else None
    alpha = (sat * sbb - sbt * sab) / det
    inv_beta = (saa * sbt - sab * sat) / det
    if alpha < 0:  # constrain: latency cannot be negative
        alpha, inv_beta = 0.0, sbt / sbb
    if inv_beta <= 0:  # nor can the time per byte
        alpha, inv_beta = sat / saa, 0.0
    return alpha, (1.0 / inv_beta if inv_beta > 0 else None)


def cmd_report(args):
    rows = load(args.dir)
    if not rows:
        sys.exit(f"no metrics files n<N>-r<R>-t<T>.jsonl in {args.dir}")
    base = next((r for r in rows if r["ranks"] == 1 and r["threads"] == 1), rows[0])
    for r in rows:
        r["speedup"] = r["samples_per_s"] / base["samples_per_s"]
        # strong: the same work, efficiency = speedup / cores; weak: per-core throughput kept
        r["efficiency"] = r["speedup"] / (r["cores"] / base["cores"])
    nbytes = args.bytes
    bench = json.load(open(args.allreduce_bench)) if args.allreduce_bench else None
    fit_ranks = [int(v) for v in args.fit_ranks.split(",")] if args.fit_ranks else None
    alpha, beta = fit_alpha_beta(rows, nbytes, bench, fit_ranks) if nbytes else (None, None)
    cols = ["nodes", "ranks_per_node", "threads", "ranks", "cores", "samples_per_s", "speedup", "efficiency",
            "imbalance", "allreduce_per_step_s", "compute_mean_s", "compute_max_s", "allreduce_mean_s",
            "allreduce_max_s", "data_mean_s", "update_mean_s", "eval_mean_s"] + [f"{p}_mean_s" for p in PRODUCTS]
    with open(os.path.join(args.dir, "scaling.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    # a rank's products per step (mean over ranks): where its compute goes as ranks are added
    prods = all(f"{p}_mean_s" in r for r in rows for p in PRODUCTS)
    lines = [f"scaling study ({args.study}) {args.label}".rstrip(),
             "| nodes x ranks x threads | samples/s | speedup | efficiency | compute (mean/max s) | "
             "allreduce wait (mean/max s) | per step (min, ms) | imbalance |"
             + (" products per step (fwd / wgrad / igrad ms) |" if prods else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if prods else "")]
    for r in rows:
        lines.append(f"| {r['nodes']} x {r['ranks_per_node']} x {r['threads']} | {r['samples_per_s']:.0f} | "
                     f"{r['speedup']:.2f} | {r['efficiency']:.2f} | {r['compute_mean_s']:.2f} / {r['compute_max_s']:.2f} | "
                     f"{r['allreduce_mean_s']:.3f} / {r['allreduce_max_s']:.3f} | "
                     f"{1e3 * r['allreduce_per_step_s']:.3f} | {r['imbalance']:.3f} |"
                     + (" " + " / ".join(f"{1e3 * r[p + '_mean_s'] / r['steps']:.2f}" for p in PRODUCTS) + " |"
                        if prods else ""))
    if alpha is not None and beta:
        used = "runs with P in " + (args.fit_ranks or "all") + (" and the allreduce micro-benchmark" if bench else "")
        lines.append(f"\nalpha-beta fit of the allreduce time ({used}; {nbytes} bytes a step): "
                     f"alpha = {alpha * 1e6:.1f} us, beta = {beta / 1e9:.3f} GB/s")
        lines.append("model (extrapolated, not measured): " + ", ".join(
            f"P={P}: {1e3 * (alpha * math.ceil(math.log2(P)) + 2 * (P - 1) / P * nbytes / beta):.2f} ms"
            for P in (8, 16, 64, 256)))
    text = "\n".join(lines)
    open(os.path.join(args.dir, "scaling.txt"), "w").write(text + "\n")
    print(text)
    plot(rows, alpha, beta, nbytes, os.path.join(args.dir, "scaling.png"), args)


def plot(rows, alpha, beta, nbytes, path, args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.3))
    for threads in sorted({r["threads"] for r in rows}):
        rs = [r for r in rows if r["threads"] == threads]
        P = [r["ranks"] for r in rs]
        ax[0].plot(P, [r["samples_per_s"] for r in rs], "o-", label=f"{threads} thread(s) per rank")
        ax[1].plot(P, [r["speedup"] for r in rs], "o-", label=f"{threads} thread(s) per rank")
        ax[2].plot(P, [r["efficiency"] for r in rs], "o-", label=f"{threads} thread(s) per rank")
    Pm = sorted({r["ranks"] for r in rows})
    ax[1].plot(Pm, [p * min(r["threads"] for r in rows) for p in Pm], "k:", label="ideal")
    ax[0].set_ylabel("samples/s")
    ax[1].set_ylabel("speedup over 1 rank x 1 thread")
    ax[2].set_ylabel("parallel efficiency")
    for a in ax:
        a.set_xlabel("ranks")
        a.set_xscale("log", base=2)
        a.legend(fontsize=8)
    ax[2].set_ylim(0, 1.2)
    if alpha is not None and beta:
        ins = ax[0].inset_axes([0.55, 0.12, 0.42, 0.4])
        meas = [(r["ranks"], r["allreduce_per_step_s"]) for r in rows if r["ranks"] > 1]
        ins.plot([p for p, t in meas], [1e3 * t for p, t in meas], "ko", ms=3, label="measured")
        Ps = [2 ** k for k in range(1, 9)]
        ins.plot(Ps, [1e3 * (alpha * math.ceil(math.log2(p)) + 2 * (p - 1) / p * nbytes / beta) for p in Ps], "r--",
                 lw=1, label="alpha-beta model")
        ins.set_xscale("log", base=2)
        ins.set_title("allreduce ms/step", fontsize=7)
        ins.tick_params(labelsize=6)
        ins.legend(fontsize=6)
    fig.suptitle(f"dptrain scaling study ({args.study}) {args.label}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    argv = sys.argv[1:]
    train_args = []
    if "--" in argv:
        i = argv.index("--")
        argv, train_args = argv[:i], argv[i + 1:]
    # --mpirun-args takes the next word whatever it looks like ("--mca ..."
    # would otherwise be read as an option of its own).
    joined, i = [], 0
    while i < len(argv):
        if argv[i] == "--mpirun-args" and i + 1 < len(argv):
            joined.append("--mpirun-args=" + argv[i + 1])
            i += 2
        else:
            joined.append(argv[i])
            i += 1
    argv = joined
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("--layouts", default="1x1x1,1x1x2,1x2x1")
    r.add_argument("--mpirun-args", default="")
    p = sub.add_parser("report")
    p.add_argument("dir")
    p.add_argument("--study", default="strong")
    p.add_argument("--label", default="")
    p.add_argument("--bytes", type=int, default=0, help="bytes reduced per step (4 x (parameters + 8)) for the fit")
    p.add_argument("--allreduce-bench", help="bench_allreduce JSON to add to the fit (several sizes at one P)")
    p.add_argument("--fit-ranks", help="rank counts whose runs enter the fit (e.g. 2: leave oversubscribed runs out)")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        cmd_run(args, train_args)
    else:
        cmd_report(args)


if __name__ == "__main__":
    main()
