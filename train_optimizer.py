#!/usr/bin/env python
"""Meta-trains a learned optimizer: train_optimizer.py --config=configs/NAME.py --workdir=DIR.

Running the same command again resumes from DIR/ckpt/. Every config field can be overridden,
for example --config.meta.unroll_length=10 or --config.train.num_meta_iterations=500.
"""

import sys

from l2l_tf.cli import apply_threads, parse_flags, quiet_tensorflow, run_main

quiet_tensorflow()

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "Experiment config file, e.g. configs/quadratic.py or "
    "configs/quadratic.py:quick; override fields with --config.FIELD=VALUE.",
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory for checkpoints and logs.")
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Start over if WORKDIR holds a run with a different config."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # TensorFlow's saver logs at INFO
    from l2l_tf.experiments import experiment_for

    def go():
        apply_threads(_CONFIG.value)
        train = experiment_for(_CONFIG.value).train  # by config.meta.learner
        summary = train(_CONFIG.value, _WORKDIR.value, overwrite=_OVERWRITE.value)

        if "exit_status" in summary:  # stopped by a signal: tell scripts it did not finish
            sys.exit(summary["exit_status"])

    run_main(go)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
