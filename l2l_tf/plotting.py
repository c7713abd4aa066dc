"""Figures like the paper's: mean loss versus optimizee step on a log scale."""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Fixed colours so the learned rule and each baseline look the same in every figure.
COLORS = {
    "learned": "tab:red",
    "sgd": "tab:blue",
    "momentum": "tab:orange",
    "nag": "tab:purple",
    "rmsprop": "tab:green",
    "adam": "tab:brown",
}


def plot_loss_curves(results: dict, path, title: str | None = None, ax=None) -> None:
    """Plots `curve_mean` of every optimizer in `results` (log y axis) into `path`."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, r in results["optimizers"].items():
        curve = r["curve_mean"]
        if not curve:
            continue
        label = name if r["learning_rate"] is None else f"{name} (lr {r['learning_rate']:.2g})"
        ax.plot(
            range(len(curve)),
            curve,
            label=label,
            color=COLORS.get(name),
            linewidth=2.2 if name == "learned" else 1.3,
        )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title or f"{results['problem']} ({results['num_tasks']} tasks)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    if own:
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
        plt.close(fig)
