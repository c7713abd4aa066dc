"""What every figure shares: how it is written."""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

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
