#!/usr/bin/env python
"""How meta-training cost and memory grow with the number of coordinates and the unroll length.

    python bench/scaling.py [--out=bench/results] [--quick]

Two sweeps of the quadratic meta-step, each point in a fresh process (bench/meta_train.py) so
that its peak memory is its own:
  - coordinates 10^3 .. 10^6 (dims 10, batch = coords / 10) at unroll length 2 (a longer unroll
    at 10^6 coordinates would not fit in 24 GB without recompute);
  - unroll length 5 .. 100 at --unroll_coords coordinates (default 10^5, where the fixed cost
    of a call no longer hides the per-step cost), without and with recompute.
Writes scaling.csv and scaling.png into --out and prints the fitted log-log exponents (time
from 10^4 coordinates up; memory above the process's baseline). Every point runs with the
quadratic config's thread setting (one intra-op thread), so time measures work done rather
than how well a thread pool fills up.

"""

import argparse
import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def measure(coords, unroll_length, recompute, unrolls):
    cmd = [
        sys.executable,
        "bench/meta_train.py",
        f"--batch_size={coords // 10}",
        "--dims=10",
        f"--unroll_length={unroll_length}",
        f"--unrolls={unrolls}",
        "--warmup=2",
        f"--recompute={'on' if recompute else 'off'}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("BENCH")][-1]
    print(line, flush=True)
    f = dict(re.findall(r"(\w+)=(\S+)", line))
    return {
        "coords": coords,
        "unroll_length": unroll_length,
        "recompute": int(recompute),
        "s_per_unroll": 1.0 / float(f["unrolls_per_s"]),
        "peak_rss_mb": float(f["peak_rss_mb"]),
    }


def slope(x, y):
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--unroll_coords",
        type=int,
        default=100000,
        help="coordinates of the unroll-length sweep (10^5 needs about 14 GB at length 100)",
    )
    args = parser.parse_args()
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        coord_sweep, lengths, base = [1000, 10000], [5, 10], 1000
    else:
        coord_sweep, lengths = [1000, 10000, 100000, 1000000], [5, 10, 20, 50, 100]
        base = args.unroll_coords

    rows = []
    for coords in coord_sweep:
        rows.append(
            {"sweep": "coords", **measure(coords, 2, False, unrolls=max(3, 3_000_000 // coords))}
        )
    for recompute in (False, True):
        for length in lengths:
            unrolls = max(3, 20_000_000 // (base * length))  # about 2e7 coordinate-steps a point
            rows.append(
                {
                    "sweep": "recompute" if recompute else "unroll",
                    **measure(base, length, recompute, unrolls=unrolls),
                }
            )
    with open(out / "scaling.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    # Baseline memory of a process that has loaded TensorFlow: the smallest point of a sweep.
    def sweep(name):
        return [r for r in rows if r["sweep"] == name]

    c = [r for r in sweep("coords") if r["coords"] >= min(10000, coord_sweep[-1])]
    fits = {"time_vs_coords": slope([r["coords"] for r in c], [r["s_per_unroll"] for r in c])}
    for name in ("unroll", "recompute"):
        s = sweep(name)
        base_mem = min(r["peak_rss_mb"] for r in sweep("coords"))
        lengths_ = [r["unroll_length"] for r in s]
        fits[f"time_vs_unroll_{name}"] = slope(lengths_, [r["s_per_unroll"] for r in s])
        extra = [max(r["peak_rss_mb"] - base_mem, 1.0) for r in s]
        fits[f"memory_vs_unroll_{name}"] = slope(lengths_, extra)
    base_mem = min(r["peak_rss_mb"] for r in sweep("coords"))
    fits["memory_vs_coords"] = slope(
        [r["coords"] for r in c], [max(r["peak_rss_mb"] - base_mem, 1.0) for r in c]
    )
    for name, value in fits.items():
        print(f"FIT {name} exponent={value:.2f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    s = sweep("coords")
    axes[0].loglog(
        [r["coords"] for r in s],
        [r["s_per_unroll"] for r in s],
        "o-",
        label=f"time (exp {fits['time_vs_coords']:.2f})",
    )
    axes[0].set_xlabel("coordinates")
    axes[0].set_ylabel("seconds per unroll (length 2)")
    ax2 = axes[0].twinx()
    ax2.loglog(
        [r["coords"] for r in s],
        [r["peak_rss_mb"] for r in s],
        "s--",
        color="tab:red",
        label="peak RSS",
    )
    ax2.set_ylabel("peak RSS (MB)")
    axes[0].legend(loc="upper left", fontsize=7)
    for name, style in (("unroll", "o-"), ("recompute", "s--")):
        s = sweep(name)
        axes[1].loglog(
            [r["unroll_length"] for r in s],
            [r["peak_rss_mb"] for r in s],
            style,
            label=f"{name}: memory exp {fits[f'memory_vs_unroll_{name}']:.2f}",
        )
    axes[1].set_xlabel(f"unroll length ({base} coordinates)")
    axes[1].set_ylabel("peak RSS (MB)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=110)
    print(f"wrote {out / 'scaling.csv'} and {out / 'scaling.png'}")


if __name__ == "__main__":
    main()
