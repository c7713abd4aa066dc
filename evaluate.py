#!/usr/bin/env python
"""Evaluates a trained optimizer against tuned baselines on fresh tasks.

    evaluate.py --workdir=DIR [--num_tasks=N --num_steps=T --seed=S --output_dir=OUT]
    evaluate.py --config=configs/NAME.py [--output_dir=OUT]   (baselines alone)

With --workdir the config is DIR/config.json; its fields can still be overridden, for example
--config.problem.dims=20, to test how the trained optimizer generalizes.
"""

import os
import sys

from l2l_tf.cli import (
    apply_threads,
    define_workdir_config_flag,
    flag_value,
    parse_flags,
    quiet_tensorflow,
    run_main,
)

quiet_tensorflow()

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Trained work directory (uses DIR/config.json and DIR/best/)."
)
_NUM_TASKS = flags.DEFINE_integer(
    "num_tasks", None, "Fresh test tasks (default: config.eval.num_tasks)."
)
_NUM_STEPS = flags.DEFINE_integer(
    "num_steps", None, "Optimizee steps per task (default: config.eval.num_steps)."
)
_SEED = flags.DEFINE_integer("seed", None, "Seed of the test tasks (default: config.seed).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir",
    None,
    "Where results go (default: DIR/eval; without --workdir, runs/baselines/NAME for "
    "--config=configs/NAME.py).",
)


def _define_config_flag(argv):
    """--config is DIR/config.json when --workdir names a trained directory, else a file."""
    workdir = flag_value(argv, "workdir")
    has_file = flag_value(argv, "config") is not None
    if workdir and not has_file:
        return define_workdir_config_flag(
            argv, workdir, "The work directory's config; override fields with --config.FIELD=VALUE."
        )
    return config_flags.DEFINE_config_file(
        "config", None, "Config file for a baselines-only evaluation, e.g. configs/quadratic.py."
    )


_CONFIG = _define_config_flag(sys.argv)


def _default_output_dir():
    """None with --workdir (DIR/eval); runs/baselines/NAME for --config=configs/NAME.py."""
    if _WORKDIR.value:
        return None
    config_file = (flag_value(sys.argv, "config") or "baselines").split(":", 1)[0]
    return os.path.join("runs", "baselines", os.path.splitext(os.path.basename(config_file))[0])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # TensorFlow's saver logs at INFO
    from l2l_tf.errors import UserError
    from l2l_tf.experiments import experiment_for

    def go():
        if _CONFIG.value is None:
            raise UserError("pass --workdir=DIR (a trained run) or --config=FILE (baselines alone)")
        if _WORKDIR.value and flag_value(sys.argv, "config") is not None:
            raise UserError(
                "--workdir uses DIR/config.json: pass either --workdir or --config "
                "(override fields with --config.FIELD=VALUE)"
            )
        apply_threads(_CONFIG.value)
        experiment_for(_CONFIG.value).evaluate(  # by config.meta.learner
            _CONFIG.value,
            workdir=_WORKDIR.value,
            output_dir=_OUTPUT_DIR.value or _default_output_dir(),
            num_tasks=_NUM_TASKS.value,
            num_steps=_NUM_STEPS.value,
            seed=_SEED.value,
        )

    run_main(go)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
