#!/usr/bin/env python
"""Meta-trains a learned optimizer: train_optimizer.py --config=configs/NAME.py --workdir=DIR.

Running the same command again resumes from DIR/ckpt/. Every config field can be overridden,
for example --config.meta.unroll_length=10 or --config.train.num_meta_iterations=500;
--config=configs/NAME.py[:VARIANT] --print_config lists them with their defaults and meanings.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from l2l_tf.cli import (
    apply_threads,
    check_output_dir,
    parse_flags,
    print_config,
    quiet_tensorflow,
    run_main,
)

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
_PRINT_CONFIG = flags.DEFINE_bool(
    "print_config", False, "Print every field of --config with its default and meaning, and exit."
)
flags.mark_flags_as_required(["config"])


def _check_workdir():
    from l2l_tf.errors import UserError

    if not _WORKDIR.value:
        raise UserError("--workdir=DIR is required (where checkpoints and logs go); see --help")
    check_output_dir(_WORKDIR.value, "--workdir")


def main(argv):
    del argv
    if _PRINT_CONFIG.value:  # before TensorFlow is imported: it takes a fraction of a second
        from configs import field_meanings

        source = flags.FLAGS["config"].config_filename
        return run_main(lambda: print_config(_CONFIG.value, source, field_meanings(_CONFIG.value)))
    run_main(_check_workdir)  # a bad --workdir costs no TensorFlow start-up
    quiet_tensorflow()  # TensorFlow is imported once the flags are parsed: --help is fast
    logging.set_verbosity(logging.WARNING)  # TensorFlow's saver logs at INFO

    def go():
        from l2l_tf.experiments import experiment_for

        apply_threads(_CONFIG.value)
        train = experiment_for(_CONFIG.value).train  # by config.meta.learner
        summary = train(_CONFIG.value, _WORKDIR.value, overwrite=_OVERWRITE.value)

        if "exit_status" in summary:  # stopped by a signal: tell scripts it did not finish
            sys.exit(summary["exit_status"])

    run_main(go)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
