"""What every figure shares: how it is written, and its axes' ticks and limits."""

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from l2l_tf import io as l2l_io  # noqa: E402


def save_figure(fig, path) -> None:
    """Writes `fig` as a PNG at `path` atomically (a reader never sees half a file), closes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    plt.close(fig)


def write_tables(output_dir, results: dict, csv_text: str, table: str) -> dict:
    """Writes an evaluation's results.json, curves.csv and summary.md into `output_dir`.

    Returns:
      {"json", "csv", "table"}: their paths, in that order; callers add their figures.
    """
    output_dir = Path(output_dir)
    paths = {
        "json": output_dir / "results.json",
        "csv": output_dir / "curves.csv",
        "table": output_dir / "summary.md",
    }
    l2l_io.write_json(paths["json"], results)
    l2l_io.write_text(paths["csv"], csv_text)
    l2l_io.write_text(paths["table"], table + "\n")
    return paths


def tick_label(value: float, _position=None) -> str:
    """A log axis's tick as a plain number ("4", "0.02", "1e-05"), not matplotlib's "4×10⁰"."""
    return f"{value:g}"


def plain_log_ticks(ax, axis: str = "y") -> None:
    """Ticks of a log `axis` labelled as plain numbers: "1", "0.1", and "4" for a minor tick.

    Major ticks use `tick_label`; minor ticks keep matplotlib's choice of which get a label
    (only where the axis spans few decades), also written by `tick_label`.
    """
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(matplotlib.ticker.FuncFormatter(tick_label))
    target.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.6)))


class _PlainLogFormatter(matplotlib.ticker.LogFormatter):
    """LogFormatter's choice of which minor ticks get a label, each written by `tick_label`
    (LogFormatter itself writes 0.6 as "6e-01")."""

    def _num_to_string(self, x, vmin, vmax):
        return tick_label(x)


def integer_ticks(ax, axis: str = "x") -> None:
    """Whole-number ticks only, for an axis of step counts (no "0.5 steps")."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def spike_limit(curves, factor: float = 3.0) -> float | None:
    """An upper y limit that keeps a one-step spike from squashing the rest of a panel.

    Every curve starts from about the same loss (the same initial parameters), so values far
    above the highest starting value are spikes: the limit is `factor` times that value, or
    None when no finite value exceeds it (the automatic limits are fine then).

    Args:
      curves: sequences of values per step, each starting at step 0.
      factor: how far above the highest start a value may go before it counts as a spike.
    """
    starts = [c[0] for c in curves if len(c) and _finite(c[0])]
    if not starts:
        return None
    limit = factor * max(starts)
    highest = max((v for c in curves for v in c if _finite(v)), default=-math.inf)
    return limit if highest > limit else None


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)
