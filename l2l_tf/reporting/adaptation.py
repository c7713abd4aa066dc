"""Tables and figures of an initialization learner's evaluation: the metric per adaptation step."""

import numpy as np

from l2l_tf.errors import UserError

#: The baselines of an initialization learner's evaluation (see experiments/init/evaluation.py).
PRETRAINED = "pretrained"
SCRATCH = "scratch"


def format_table(results: dict) -> str:
    """A markdown table: mean ± 95% CI of the metric after each adaptation step."""
    steps = len(next(iter(results["methods"].values()))["per_step_mean"])
    head = "| method | " + " | ".join(f"step {t}" for t in range(steps)) + " | diverged |"
    lines = [head, "|---" * (steps + 2) + "|"]
    for name, r in results["methods"].items():
        cells = [f"{m:.3f} ± {c:.3f}" for m, c in zip(r["per_step_mean"], r["per_step_ci95"])]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['diverged']} |")
    return "\n".join(lines)


def plot_curves(results: dict, path) -> None:
    """The metric versus adaptation steps with 95% CI bands, like figure 3 of the MAML paper."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from l2l_tf.reporting.common import integer_ticks, plain_log_ticks, save_figure

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, r in results["methods"].items():
        mean, ci = np.array(r["per_step_mean"]), np.array(r["per_step_ci95"])
        steps = np.arange(len(mean))
        ax.plot(steps, mean, marker="o", markersize=3, label=name, linewidth=1.5)
        ax.fill_between(steps, mean - ci, mean + ci, alpha=0.2)
    finite = [v for r in results["methods"].values() for v in r["per_step_mean"] if v > 0]
    if finite and max(finite) > 100 * min(finite):  # e.g. a learned rate unstable past step 1
        ax.set_yscale("log")
        plain_log_ticks(ax)
    integer_ticks(ax)
    ax.set_xlabel("number of gradient steps")
    ax.set_ylabel(results["metric"])
    ax.set_title(f"{results['problem']}: {results['num_tasks']} test tasks")
    ax.legend(fontsize=7, title="shaded: 95% CI of the mean over the tasks", title_fontsize=7)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def combine_results(named_results: list[tuple[str, dict]]) -> dict:
    """One results dict from several learners' evaluations of the same problem and tasks.

    Each run's own learner curve is kept under its name; the baselines (`pretrained`,
    `scratch`) are taken from the first run that has them (every evaluation with the same seed
    and config computes them on the same tasks).

    Args:
      named_results: [(learner name, results dict of `evaluate`)].
    """
    first = named_results[0][1]
    combined = {k: first[k] for k in ("problem", "metric", "num_tasks")}
    methods = {}
    for name, results in named_results:
        if (results["problem"], results["num_tasks"]) != (first["problem"], first["num_tasks"]):
            raise UserError(f"{name}: results of another problem or task count than the first")
        if name in results["methods"]:
            methods[name] = results["methods"][name]
    for baseline in (PRETRAINED, SCRATCH):
        for _, results in named_results:
            if baseline in results["methods"]:
                methods[baseline] = results["methods"][baseline]
                break
    combined["methods"] = methods
    return combined
