#!/usr/bin/env python
"""One markdown table of several evaluations of a synaptic-rule run (docs/results/synaptic.md).

    python scripts/synaptic_table.py DIR/eval DIR/eval_6inputs ... [--metric=accuracy]

Each argument is an output directory of evaluate.py (a results.json). One row per directory,
one column per optimizer: the final loss (mean ± standard error over the test tasks), the
tuned learning rate in brackets, and, with --metric=NAME, that held-out metric's mean after a
slash (`accuracy` for the boolean family, `test_accuracy` for MNIST). The lowest final loss of
a row is in bold.
"""

import json
import math
import sys
from pathlib import Path

from absl import app, flags

from l2l_tf.cli import parse_flags, run_main

_METRIC = flags.DEFINE_string("metric", "", "A held-out metric to show after the final loss.")


def cell(r: dict, metric: str) -> str:
    text = f"{r['final_loss_mean']:.3g} ± {r['final_loss_sem']:.2g}"
    if r.get("learning_rate") is not None:
        text += f" [{r['learning_rate']:.3g}]"
    if metric and f"{metric}_mean" in r:
        text += f" / {r[f'{metric}_mean']:.3f}"
    if r.get("diverged"):
        text += f" ({r['diverged']} diverged)"
    return text


def main(argv):
    from l2l_tf.errors import UserError

    def go():
        dirs = argv[1:]
        if not dirs:
            raise UserError("name at least one evaluate.py output directory")
        rows = []
        for d in dirs:
            path = Path(d) / "results.json"
            if not path.is_file():
                raise UserError(f"no results.json in {d!r}")
            rows.append((d, json.loads(path.read_text())))
        names = list(dict.fromkeys(n for _, r in rows for n in r["optimizers"]))
        print("| evaluation | tasks × steps | " + " | ".join(names) + " |")
        print("|---|---|" + "---|" * len(names))
        for d, results in rows:
            opts = results["optimizers"]
            finite = {n: opts[n]["final_loss_mean"] for n in names if n in opts}
            best = min(finite, key=lambda n: finite[n] if math.isfinite(finite[n]) else math.inf)
            cells = []
            for n in names:
                if n not in opts:
                    cells.append("n/a")
                    continue
                text = cell(opts[n], _METRIC.value)
                cells.append(f"**{text}**" if n == best else text)
            shape = f"{results['num_tasks']} × {results['num_steps']}"
            print(f"| {'/'.join(Path(d).parts[-2:])} | {shape} | " + " | ".join(cells) + " |")

    run_main(go)


if __name__ == "__main__":
    app.run(main, argv=sys.argv, flags_parser=parse_flags)
