"""Figures of an MGRL evaluation: return per environment step, and eta over training."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from l2l_tf.reporting.common import save_figure  # noqa: E402


def _save(fig, path) -> None:
    fig.tight_layout()
    save_figure(fig, path)


def _steps_axis(ax) -> None:
    """x axis in thousands of environment steps (full numbers run into each other)."""
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e3:g}k"))
    ax.set_xlabel("environment steps")


def _mean_sem(curves, key):
    values = np.array([c[key] for c in curves], float)
    mean = np.nanmean(values, axis=0)
    n = np.sum(np.isfinite(values), axis=0)
    sem = np.nanstd(values, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1)) if len(values) > 1 else 0
    return mean, sem


def plot_returns(results: dict, path) -> None:
    """Mean return (± sem over seeds) per environment step: meta-learned eta, the best fixed
    setting in bold, the rest of the grid thin."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, run in results["runs"].items():
        steps = run["curves"][0]["env_steps"]
        mean, sem = _mean_sem(run["curves"], "returns")
        if name == "meta-learned":
            style = {"color": "tab:red", "linewidth": 2.2, "zorder": 3}
        elif name == results["best_fixed"]:
            style = {"color": "tab:blue", "linewidth": 1.8, "zorder": 2}
        else:
            style = {"color": "0.6", "linewidth": 0.8, "alpha": 0.7}
        label = name if name in ("meta-learned", results["best_fixed"]) else None
        if name == results["best_fixed"]:
            label = f"best fixed: {name}"
        ax.plot(steps, mean, label=label, **style)
        if label:
            ax.fill_between(steps, mean - sem, mean + sem, color=style["color"], alpha=0.2)
    ax.plot([], [], color="0.6", linewidth=0.8, label="other fixed (gamma, lambda)")
    _steps_axis(ax)
    ax.set_ylabel("episode return")
    ax.set_title(f"{results['env']}: {len(results['seeds'])} seeds")
    ax.legend(fontsize=7, title="shaded: ± 1 standard error over the seeds", title_fontsize=7)
    ax.grid(True, alpha=0.3)
    _save(fig, path)


def plot_eta(results: dict, path) -> None:
    """gamma and lambda over training for every meta-learned seed (and the training run)."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    run = results["runs"]["meta-learned"]
    ref = results["reference_eta"]
    for ax, key, r in zip(axes, ("gamma", "lambda"), ref):
        for i, c in enumerate(run["curves"]):
            ax.plot(
                c["env_steps"],
                c[key],
                color="tab:red",
                alpha=0.6,
                linewidth=1,
                label="evaluation seeds" if i == 0 else None,
            )
        train = results.get("training_eta")
        if train and train.get("env_steps"):
            ax.plot(
                train["env_steps"], train[key], color="black", linewidth=1.4, label="training run"
            )
        ax.axhline(r, color="tab:green", linestyle="--", linewidth=1, label="reference")
        _steps_axis(ax)
        ax.set_title(key)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    _save(fig, path)
