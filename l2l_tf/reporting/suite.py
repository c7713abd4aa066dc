"""Tables and the ratio figure of the held-out suite (`experiments.l2l.suite`).

results.json:
    {"rule": what was evaluated, "seed": S, "config": the suite config,
     "tasks": [{"name", "out_of", "spec", "learned", "best_baseline", "best", "adam",
                "scores": {optimizer: final training loss}, "learning_rates": {baseline: lr},
                "diverged": learned tasks that diverged}, ...],
     "summary": {"num_tasks", "beats_adam", "beats_best", "diverged",
                 "median_ratio_best", "median_ratio_adam"}}
"""

import math
from pathlib import Path

import numpy as np

from l2l_tf import io as l2l_io


def ratio(learned: float, baseline) -> float:
    """learned / baseline; inf when the learned rule diverged, nan with no baseline."""
    if baseline is None or not math.isfinite(baseline) or baseline <= 0:
        return math.nan
    return learned / baseline if math.isfinite(learned) else math.inf


def summarize(tasks: list, **fields) -> dict:
    ratios_best = [ratio(t["learned"], t["best"]) for t in tasks]
    ratios_adam = [ratio(t["learned"], t["adam"]) for t in tasks if t["adam"] is not None]
    summary = {
        "num_tasks": len(tasks),
        "beats_adam": sum(r < 1 for r in ratios_adam),
        "beats_best": sum(r < 1 for r in ratios_best),
        "diverged": sum(t["diverged"] > 0 for t in tasks),
        "median_ratio_best": float(np.median(ratios_best)) if tasks else math.nan,
        "median_ratio_adam": float(np.median(ratios_adam)) if ratios_adam else math.nan,
    }
    return {**fields, "tasks": tasks, "summary": summary}


def format_table(results: dict) -> str:
    """Markdown: one row per task, the learned rule's loss and its ratios to the baselines."""
    lines = [
        "| task | out of distribution in | learned (untuned) | Adam (tuned) | best tuned | "
        "learned / Adam | learned / best |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in results["tasks"]:
        lines.append(
            f"| {t['name']} | {t['out_of']} | {t['learned']:.4g} | {_fmt(t['adam'])} | "
            f"{t['best']:.4g} ({t['best_baseline']}) | {ratio(t['learned'], t['adam']):.3f} | "
            f"{ratio(t['learned'], t['best']):.3f} |"
        )
    s = results["summary"]
    lines.append("")
    lines.append(
        f"Below tuned Adam on {s['beats_adam']}/{s['num_tasks']} tasks, below the best tuned "
        f"baseline on {s['beats_best']}/{s['num_tasks']}; diverged on {s['diverged']}. Median "
        f"ratio to the best baseline {s['median_ratio_best']:.3f}, to Adam "
        f"{s['median_ratio_adam']:.3f}."
    )
    return "\n".join(lines)


def _fmt(v) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.4g}"


def plot_ratios(results: dict, path) -> None:
    """Bars of learned / best tuned baseline and learned / Adam per task (log scale)."""
    from l2l_tf.reporting.common import plain_log_ticks, plt, save_figure

    tasks = results["tasks"]
    names = [t["name"] for t in tasks]
    best = [ratio(t["learned"], t["best"]) for t in tasks]
    adam = [ratio(t["learned"], t["adam"]) for t in tasks]
    finite = [r for r in best + adam if math.isfinite(r)] or [1.0]
    cap = max(finite) * 1.5
    y = np.arange(len(tasks))
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(tasks) + 1.5))
    ax.barh(y - 0.2, [min(r, cap) for r in best], height=0.4, label="learned / best tuned")
    ax.barh(y + 0.2, [min(r, cap) for r in adam], height=0.4, label="learned / tuned Adam")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    plain_log_ticks(ax, "x")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("final training loss ratio (< 1: the learned rule is better)")
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def write(results: dict, output_dir) -> dict:
    """Writes results.json, summary.md and ratios.png into `output_dir`; returns the paths."""
    output_dir = Path(output_dir)
    paths = {
        "json": output_dir / "results.json",
        "table": output_dir / "summary.md",
        "plot": output_dir / "ratios.png",
    }
    l2l_io.write_json(paths["json"], results)
    l2l_io.write_text(paths["table"], format_table(results) + "\n")
    plot_ratios(results, paths["plot"])
    return paths
