#!/usr/bin/env python
"""Figures of the paper's sections 3.1 and 3.2 and the one results page, from results files.

    make_figures.py [--runs_dir=runs] [--output_dir=results]
    make_figures.py --runs_dir=results --output_dir=results   (from the committed files)

Reads RUNS/quadratic/eval, RUNS/mnist/eval and the MNIST generalization folders
RUNS/mnist/eval_{longer,40hidden,2layers,relu} (each a results.json of evaluate.py) and writes
OUT/quadratic.png, OUT/mnist.png and OUT/mnist_generalization.png, and from
RUNS/{maml,fomaml,reptile,metasgd,imaml}_fewshot/eval OUT/fewshot.png and OUT/fewshot.md (query
accuracy of every learner and the baselines). OUT/results.md is the one page of every family
(l2l_tf/reporting/page.py): the paper's table, the generalist's suite, the MAML family on
sinusoids and few-shot episodes, and meta-gradient RL, each from its results files under RUNS
or, where they are missing, quoted from its docs page. Missing results are left out with a note.
It imports no TensorFlow.
"""

import os

from absl import app, flags

from l2l_tf.cli import check_output_dir, parse_flags, run_main

_RUNS_DIR = flags.DEFINE_string("runs_dir", "runs", "Where runall.sh put the runs.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "results", "Where the figures and table go.")


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # should anything import TensorFlow
    from l2l_tf.errors import UserError
    from l2l_tf.reporting import figures as plotting

    def go():
        check_output_dir(_OUTPUT_DIR.value, "--output_dir")
        written = plotting.make_figures(_RUNS_DIR.value, _OUTPUT_DIR.value)
        if not written:
            raise UserError(f"no results under {_RUNS_DIR.value!r}: run runall.sh first")
        print(f"wrote {', '.join(str(p) for p in written.values())}")

    run_main(go)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
