#!/usr/bin/env python
"""Prints evaluate.py's MGRL table for a subset of its seeds, with the per-seed scores.

    python scripts/mgrl_seed_table.py runs/mgrl_cartpole/eval/results.json            # all seeds
    python scripts/mgrl_seed_table.py runs/mgrl_cartpole/eval/results.json 1000 1004  # a range

Reads results.json (every curve of every seed) and scores each run as evaluate.py does (the
mean return of the episodes completed in the last `final_fraction` of it), so the table for all
seeds equals summary.md's and a subset is what evaluate.py would report on those seeds alone
(settings are run independently per seed, so a subset is the same runs).
"""

import json
import sys
from pathlib import Path

import numpy as np  # noqa: E402

from l2l_tf.experiments.mgrl.training import final_return  # noqa: E402


def _sem(values):
    return values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")


def seed_table(results: dict, first=None, last=None) -> str:
    """A markdown table over the seeds in [first, last] (inclusive; None: all), best first."""
    seeds = results["seeds"]
    keep = [
        i
        for i, s in enumerate(seeds)
        if (first is None or s >= first) and (last is None or s <= last)
    ]
    if not keep:
        raise SystemExit(f"no seed of {seeds} lies in [{first}, {last}]")
    rows = []
    for name, run in results["runs"].items():
        curves = [run["curves"][i] for i in keep]
        finals = np.array([final_return(c, results["final_fraction"]) for c in curves])
        overall = np.array([final_return(c, 1.0) for c in curves])
        gammas = [c["gamma"][-1] for c in curves]
        lambdas = [c["lambda"][-1] for c in curves]
        rows.append(
            (
                finals.mean(),
                f"| {name} | {finals.mean():.1f} ± {_sem(finals):.1f} "
                f"| {', '.join(f'{v:.1f}' for v in finals)} "
                f"| {overall.mean():.1f} ± {_sem(overall):.1f} "
                f"| {np.mean(gammas):.4f} | {np.mean(lambdas):.4f} |",
            )
        )
    chosen = [seeds[i] for i in keep]
    pct = round(100 * results["final_fraction"])
    head = [
        f"seeds {chosen[0]} … {chosen[-1]} ({len(chosen)})",
        "",
        f"| setting | final return (last {pct}% of steps) | per seed | return over the whole run "
        "| final gamma | final lambda |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(head + [r for _, r in sorted(rows, key=lambda r: -r[0])])


def main(argv):
    if len(argv) not in (2, 4):
        raise SystemExit(__doc__)
    results = json.loads(Path(argv[1]).read_text())
    bounds = (int(argv[2]), int(argv[3])) if len(argv) == 4 else (None, None)
    print(seed_table(results, *bounds))


if __name__ == "__main__":
    main(sys.argv)
