#!/usr/bin/env python
"""Figures of the paper's sections 3.1 and 3.2 and a markdown table, from runall.sh's results.

    make_figures.py [--runs_dir=runs] [--output_dir=results]

Reads RUNS/quadratic/eval, RUNS/mnist/eval and the MNIST generalization folders
RUNS/mnist/eval_{longer,40hidden,2layers,relu} (each a results.json of evaluate.py) and writes
OUT/quadratic.png, OUT/mnist.png, OUT/mnist_generalization.png and OUT/results.md, and from
RUNS/{maml,fomaml,reptile,metasgd,imaml}_fewshot/eval OUT/fewshot.png and OUT/fewshot.md (query
accuracy of every learner and the baselines). Missing results are left out with a note.
"""

from absl import app, flags

from l2l_tf.cli import parse_flags, run_main

_RUNS_DIR = flags.DEFINE_string("runs_dir", "runs", "Where runall.sh put the runs.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "results", "Where the figures and table go.")


def main(argv):
    del argv
    from l2l_tf.errors import UserError
    from l2l_tf.reporting import figures as plotting

    def go():
        written = plotting.make_figures(_RUNS_DIR.value, _OUTPUT_DIR.value)
        if not written:
            raise UserError(f"no results under {_RUNS_DIR.value!r}: run runall.sh first")
        print(f"wrote {', '.join(str(p) for p in written.values())}")

    run_main(go)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
