#!/usr/bin/python3
"""new/old per round and layout from ab_loop.sh's log(s): ratios, range, median."""
import statistics as st
import sys
by = {}
for path in sys.argv[1:]:
    for line in open(path):
        f = line.split()
        if len(f) < 4 or f[2] not in ("old", "new"):
            continue
        by.setdefault((f[1], path, f[0]), {})[f[2]] = float(f[3])
lays = sorted({k[0] for k in by}, key=lambda s: [k[0] for k in by].index(s))
for lay in lays:
    rs = [d["new"] / d["old"] for k, d in by.items() if k[0] == lay and len(d) == 2]
    olds = [d["old"] for k, d in by.items() if k[0] == lay]
    news = [d["new"] for k, d in by.items() if k[0] == lay and "new" in d]
    print(f"{lay:>9}: new/old {' '.join('%.3f' % r for r in rs)}  median {st.median(rs):.3f} "
          f"(samples/s median old {st.median(olds):.0f}, new {st.median(news):.0f})")
