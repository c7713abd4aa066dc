"""Figures like the paper's: mean loss versus optimizee step on a log scale.

`make_figures(runs_dir, output_dir)` (run by `make_figures.py` and `runall.sh`) assembles the
figures of the paper's sections 3.1 and 3.2 and a markdown table from the results folders that
`runall.sh` writes.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from l2l_tf.reporting.common import (  # noqa: E402
    integer_ticks,
    plain_log_ticks,
    save_figure,
    spike_limit,
)

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
    """Plots `curve_mean` of every optimizer in `results` (log y axis) into `path`.

    A curve that spikes far above every curve's starting loss (e.g. a baseline's first step at
    its tuned rate on a deeper network) is cut at `spike_limit` and marked "off scale" in the
    legend, so that it does not squash the other curves into the bottom of the panel.
    """
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5, 3.6))
    curves = [r["curve_mean"] for r in results["optimizers"].values() if r["curve_mean"]]
    top = spike_limit(curves)
    for name, r in results["optimizers"].items():
        curve = r["curve_mean"]
        if not curve:
            continue
        label = name if r["learning_rate"] is None else f"{name} (lr {r['learning_rate']:.2g})"
        if top is not None and max((v for v in curve if v == v), default=0) > top:
            label += ", off scale"
        ax.plot(
            range(len(curve)),
            curve,
            label=label,
            color=COLORS.get(name),
            linewidth=2.2 if name == "learned" else 1.3,
        )
    ax.set_yscale("log")
    if top is not None:
        ax.set_ylim(top=top)
    plain_log_ticks(ax)
    integer_ticks(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title or f"{results['problem']} ({results['num_tasks']} tasks)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    if own:
        fig.tight_layout()
        save_figure(fig, path)


#: The figures of the paper's sections 3.1 and 3.2: (file, [(title, results folder)]), where a
#: results folder is relative to the runs directory of `runall.sh` and a title may name fields
#: of its results (`{num_steps}`).
FIGURES = (
    ("quadratic.png", [("Quadratics (fig. 2)", "quadratic/eval")]),
    ("mnist.png", [("MNIST, {num_steps} steps (fig. 4)", "mnist/eval")]),
    (
        "mnist_generalization.png",
        [
            ("MNIST, {num_steps} steps (fig. 5)", "mnist/eval_longer"),
            ("MNIST, 40 hidden units (fig. 5)", "mnist/eval_40hidden"),
            ("MNIST, 2 hidden layers (fig. 5)", "mnist/eval_2layers"),
            ("MNIST, ReLU (fig. 5)", "mnist/eval_relu"),
        ],
    ),
)
OPTIMIZERS = ("learned", "sgd", "momentum", "nag", "rmsprop", "adam")


def plot_panels(panels, path, ncols: int = 2) -> None:
    """Several results side by side: panels is [(title, results dict)], one axis each."""
    n = len(panels)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (title, results) in zip(axes.flat, panels):
        plot_loss_curves(results, None, title=title, ax=ax)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    save_figure(fig, path)


def _cell(r: dict | None, key: str, spec: str = ".3g") -> str:
    if r is None or r.get(f"{key}_mean") is None:
        return ""
    return f"{format(r[f'{key}_mean'], spec)} ± {format(r[f'{key}_sem'], '.1g')}"


def results_markdown(experiments) -> str:
    """Markdown tables of final training loss (and MNIST test metrics) per experiment.

    experiments: [(title, results dict)]. The best optimizer of each row is in bold.
    """
    head = "| experiment | tasks × steps | " + " | ".join(OPTIMIZERS) + " |"
    rule = "|---|---|" + "---|" * len(OPTIMIZERS)
    lines = [
        "Final training loss at the last step (mean ± standard error over the test tasks; "
        "baselines with the learning rate tuned on validation tasks, in brackets):",
        "",
        head,
        rule,
    ]
    for title, res in experiments:
        opts = res["optimizers"]
        finite = {k: v["final_loss_mean"] for k, v in opts.items() if _finite(v["final_loss_mean"])}
        best = min(finite, key=finite.get) if finite else None
        cells = []
        for name in OPTIMIZERS:
            r = opts.get(name)
            text = _cell(r, "final_loss")
            if text and r["learning_rate"] is not None:
                text += f" [{r['learning_rate']:.2g}]"
            cells.append(f"**{text}**" if name == best and text else text)
        lines.append(
            f"| {title} | {res['num_tasks']} × {res['num_steps']} | " + " | ".join(cells) + " |"
        )
    held_out = [(t, r) for t, r in experiments if _has_test_metrics(r)]
    if held_out:
        lines += [
            "",
            "Held-out test loss / test accuracy of the final parameters (means over the test "
            "tasks):",
            "",
            head,
            rule,
        ]
        for title, res in held_out:
            cells = []
            for name in OPTIMIZERS:
                r = res["optimizers"].get(name)
                if r is None or r.get("test_loss_mean") is None:
                    cells.append("")
                else:
                    cells.append(f"{r['test_loss_mean']:.3g} / {r['test_accuracy_mean']:.3f}")
            lines.append(
                f"| {title} | {res['num_tasks']} × {res['num_steps']} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines) + "\n"


def _finite(v) -> bool:
    return v is not None and v == v and abs(v) != float("inf")


def _has_test_metrics(res) -> bool:
    return any("test_loss_mean" in r for r in res["optimizers"].values())


def results_path(runs_dir, folder: str) -> Path:
    """RUNS/FOLDER/results.json; for a FOLDER ending in /eval, also the committed layout
    without it (results/quadratic/results.json for runs/quadratic/eval/results.json)."""
    path = Path(runs_dir) / folder / "results.json"
    if not path.is_file() and folder.endswith("/eval"):
        committed = Path(runs_dir) / folder[: -len("/eval")] / "results.json"
        if committed.is_file():
            return committed
    return path


def make_figures(runs_dir, output_dir, log=print) -> dict:
    """Writes the paper's figures and the one results page `results.md` (every family, see
    `reporting.page`) from the results under `runs_dir`.

    Panels whose results.json is missing are left out (with a note); a figure with no panel
    at all is not written. `runs_dir` may be runall.sh's runs folder or the committed results
    folder (whose quadratic results are in quadratic/, not quadratic/eval/).

    Returns:
      {file name: path} of the files written.
    """
    import json

    from l2l_tf import io as l2l_io
    from l2l_tf.reporting import page

    runs_dir, output_dir = Path(runs_dir), Path(output_dir)
    written, experiments, sources = {}, [], []
    for filename, panels in FIGURES:
        found = []
        for title, folder in panels:
            path = results_path(runs_dir, folder)
            if path.is_file():
                results = json.loads(path.read_text())
                found.append((title.format(**results), results))
                sources.append(path)
            else:
                log(f"note: {path} not found; its panel of {filename} is left out")
        if found:
            plot_panels(found, output_dir / filename, ncols=2 if len(found) > 1 else 1)
            written[filename] = output_dir / filename
            experiments += found
    written.update(fewshot_figure(runs_dir, output_dir, log))
    paper_table = results_markdown(experiments) if experiments else None
    if written or page.has_results(runs_dir):
        text = page.results_page(runs_dir, paper_table, sources, link_from=output_dir)
        l2l_io.write_text(output_dir / "results.md", text)
        written["results.md"] = output_dir / "results.md"
    return written


#: The few-shot runs of runall.sh, compared in one figure and table.
FEWSHOT_RUNS = ("maml", "fomaml", "reptile", "metasgd", "imaml")


def fewshot_figure(runs_dir, output_dir, log=print) -> dict:
    """OUT/fewshot.png and OUT/fewshot.md: every RUNS/NAME_fewshot/eval run and the baselines."""
    import json

    from l2l_tf import io as l2l_io
    from l2l_tf.reporting import adaptation

    found = []
    for name in FEWSHOT_RUNS:
        path = results_path(runs_dir, f"{name}_fewshot/eval")
        if path.is_file():
            found.append((name, json.loads(path.read_text())))
    if not found:
        return {}
    results = adaptation.combine_results(found)
    out = Path(output_dir)
    adaptation.plot_curves(results, out / "fewshot.png")
    l2l_io.write_text(out / "fewshot.md", adaptation.format_table(results) + "\n")
    log(f"few-shot: {', '.join(n for n, _ in found)} and the baselines of {found[0][0]}")
    return {"fewshot.png": out / "fewshot.png", "fewshot.md": out / "fewshot.md"}
