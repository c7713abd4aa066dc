"""Tables and files of an update-rule evaluation (`evaluation.evaluate_rules`' results dict)."""

import csv
import io
import math
from pathlib import Path


def format_table(results: dict) -> str:
    """A markdown table of the final losses, best first."""
    rows = sorted(results["optimizers"].items(), key=lambda kv: _sort_key(kv[1]))
    held_out = [m for m in ("test_loss", "test_accuracy") if any(f"{m}_mean" in r for _, r in rows)]
    header = "| optimizer | learning rate | final loss (mean ± sem) | median | diverged |"
    header += "".join(f" {m.replace('_', ' ')} (mean ± sem) |" for m in held_out)
    lines = [header, "|---|---|---|---|---|" + "---|" * len(held_out)]
    for name, r in rows:
        lr = "learned" if r["learning_rate"] is None else f"{r['learning_rate']:.3g}"
        line = (
            f"| {name} | {lr} | {_pm(r['final_loss_mean'], r['final_loss_sem'])} "
            f"| {_fmt(r['final_loss_median'])} | {r['diverged']} |"
        )
        for m in held_out:
            line += f" {_pm(r.get(f'{m}_mean'), r.get(f'{m}_sem'))} |"
        lines.append(line)
    return "\n".join(lines)


def _fmt(v, spec=".4g") -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, spec)


def _pm(mean, sem) -> str:
    return f"{_fmt(mean)} ± {_fmt(sem, '.2g')}"


def _sort_key(r):
    v = r["final_loss_mean"]
    return math.inf if v is None or not math.isfinite(v) else v


def curves_csv(results: dict) -> str:
    names = list(results["optimizers"])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["step", *names])
    for t in range(results["num_steps"] + 1):
        row = [t]
        for name in names:
            curve = results["optimizers"][name]["curve_mean"]
            row.append(f"{curve[t]:.8g}" if t < len(curve) else "")
        writer.writerow(row)
    return out.getvalue()


def write_results(results: dict, output_dir) -> dict:
    """Writes results.json, curves.csv, summary.md and loss_curves.png into `output_dir`.

    Returns:
      {kind: path} of the files written.
    """
    # matplotlib is imported only when files are written
    from l2l_tf.reporting import figures
    from l2l_tf.reporting.common import write_tables

    paths = write_tables(output_dir, results, curves_csv(results), format_table(results))
    paths["plot"] = Path(output_dir) / "loss_curves.png"
    figures.plot_loss_curves(results, paths["plot"])
    return paths
