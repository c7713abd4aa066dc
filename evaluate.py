#!/usr/bin/env python
"""Evaluates a trained optimizer against tuned baselines on fresh tasks.

    evaluate.py --workdir=DIR [--num_tasks=N --num_steps=T --seed=S --output_dir=OUT]
    evaluate.py --config=configs/NAME.py [--output_dir=OUT]   (baselines alone)
    evaluate.py --pretrained=generalist --config=configs/NAME.py  (a shipped optimizer, untuned)
    evaluate.py --pretrained=generalist --suite=configs/suite.py  (the held-out suite)
    evaluate.py --workdir=DIR --suite=configs/suite.py            (a trained rule on the suite)

With --workdir the config is DIR/config.json; its fields can still be overridden, for example
--config.problem.dims=20, to test how the trained optimizer generalizes. --print_config lists
the fields with their values and meanings. A run that is still training is evaluated on its
current DIR/best/, and the output says so.
"""

import json
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from l2l_tf.cli import (
    apply_threads,
    check_output_dir,
    define_workdir_config_flag,
    flag_value,
    parse_flags,
    print_config,
    quiet_tensorflow,
    run_main,
    training_process,
)

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
    "Where results go (default: DIR/eval, DIR/suite with --suite; runs/baselines/NAME for "
    "--config=configs/NAME.py alone; runs/pretrained/PRETRAINED/NAME with --pretrained).",
)
_PRETRAINED = flags.DEFINE_string(
    "pretrained",
    None,
    "Evaluate a shipped optimizer (l2l_tf/pretrained/, e.g. generalist), untuned, on the "
    "tasks of --config or of --suite.",
)
_BASELINES_FROM = flags.DEFINE_string(
    "baselines_from",
    None,
    "With --suite: an earlier suite output directory whose tuned baselines are reused for "
    "the tasks whose spec and eval settings match (the baselines do not depend on the rule).",
)
_SUITE = config_flags.DEFINE_config_file(
    "suite",
    None,
    "A held-out suite (configs/suite.py[:quick]): every task against its tuned baselines; "
    "with --pretrained or --workdir. A task-distribution run's --workdir uses "
    "configs/suite.py by default.",
)

_PRINT_CONFIG = flags.DEFINE_bool(
    "print_config",
    False,
    "Print every field of --config (or of DIR/config.json) with its value and meaning, and exit.",
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
    """None with --workdir (DIR/eval); runs/baselines/NAME for --config=configs/NAME.py;
    runs/pretrained/PRETRAINED/NAME with --pretrained (NAME "suite" for --suite)."""
    if _WORKDIR.value:
        return None
    if _SUITE.value is not None:
        config_file = "suite"
    else:
        config_file = (flag_value(sys.argv, "config") or "baselines").split(":", 1)[0]
    name = os.path.splitext(os.path.basename(config_file))[0]
    if _PRETRAINED.value:
        return os.path.join("runs", "pretrained", _PRETRAINED.value, name)
    return os.path.join("runs", "baselines", name)


def _check_output_dir():
    """A bad output path must not cost a finished evaluation: it is checked first."""
    output_dir = _OUTPUT_DIR.value or _default_output_dir()
    if output_dir or _WORKDIR.value:
        default = "suite" if _SUITE.value is not None else "eval"
        check_output_dir(
            output_dir or os.path.join(_WORKDIR.value, default),
            "--output_dir" if _OUTPUT_DIR.value else "--workdir",
        )


def _note_if_training(workdir):
    """Says so when `workdir` is still being trained: its best/ may still change."""
    pid = training_process(workdir)
    if pid is None:
        return
    info_path = os.path.join(workdir, "best", "info.json")
    best = ""
    try:
        with open(info_path) as f:
            best = f" (best/ from meta-iteration {json.load(f)['iteration']})"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    who = f"process {pid}" if pid > 0 else "another process"
    print(
        f"note: {workdir} is still training ({who}); evaluating its current best/{best}, "
        "which may still improve: run evaluate.py again when training is done"
    )


def _suite_run(output_dir):
    """--suite with --pretrained or --workdir."""
    from l2l_tf import pretrained
    from l2l_tf.errors import UserError
    from l2l_tf.experiments.l2l.evaluation import evaluate_suite

    if bool(_PRETRAINED.value) == bool(_WORKDIR.value):
        raise UserError("--suite needs one of --pretrained=NAME or --workdir=DIR")
    if _PRETRAINED.value:
        name = _PRETRAINED.value
        rule = pretrained.load(name)
        evaluate_suite(
            _SUITE.value,
            rule=rule,
            rule_name=f"pretrained:{name}",
            output_dir=output_dir,
            baselines_from=_BASELINES_FROM.value,
        )
    else:
        evaluate_suite(
            _SUITE.value,
            workdir=_WORKDIR.value,
            output_dir=output_dir or os.path.join(_WORKDIR.value, "suite"),
            baselines_from=_BASELINES_FROM.value,
        )


def main(argv):
    del argv
    if _PRINT_CONFIG.value:  # before TensorFlow is imported: it takes a fraction of a second
        from configs import field_meanings

        if flag_value(sys.argv, "config") is not None:
            source = flags.FLAGS["config"].config_filename
        else:
            source = os.path.join(_WORKDIR.value or "", "config.json")
        meanings = field_meanings(_CONFIG.value or {})
        return run_main(lambda: print_config(_CONFIG.value, source, meanings))
    run_main(_check_output_dir)  # before any work (and before TensorFlow's start-up)
    quiet_tensorflow()  # TensorFlow is imported once the flags are parsed: --help is fast
    logging.set_verbosity(logging.WARNING)  # TensorFlow's saver logs at INFO
    from l2l_tf.errors import UserError
    from l2l_tf.experiments import experiment_for

    def go():
        output_dir = _OUTPUT_DIR.value or _default_output_dir()
        if _WORKDIR.value:
            _note_if_training(_WORKDIR.value)
        if _SUITE.value is not None:
            return _suite_run(output_dir)
        if _PRETRAINED.value:
            return _pretrained_run(output_dir)
        if _CONFIG.value is None:
            raise UserError("pass --workdir=DIR (a trained run) or --config=FILE (baselines alone)")
        if _WORKDIR.value and flag_value(sys.argv, "config") is not None:
            raise UserError(
                "--workdir uses DIR/config.json: pass either --workdir or --config "
                "(override fields with --config.FIELD=VALUE)"
            )
        apply_threads(_CONFIG.value)
        extra = {}
        if _CONFIG.value.get("problem", {}).get("name") == "distribution":
            from configs import suite  # a task-distribution run is judged on the suite

            extra["suite_config"] = suite.get_config()
        experiment_for(_CONFIG.value).evaluate(  # by config.meta.learner
            _CONFIG.value,
            workdir=_WORKDIR.value,
            output_dir=output_dir,
            num_tasks=_NUM_TASKS.value,
            num_steps=_NUM_STEPS.value,
            seed=_SEED.value,
            **extra,
        )

    def _pretrained_run(output_dir):
        from l2l_tf import pretrained
        from l2l_tf.experiments import learner_name
        from l2l_tf.experiments.l2l import evaluate

        if _WORKDIR.value or _CONFIG.value is None:
            raise UserError("--pretrained=NAME needs --config=FILE (the tasks), not --workdir")
        if learner_name(_CONFIG.value) != "l2l":
            raise UserError(
                "--pretrained evaluates a learned optimizer: --config must be a "
                "learned-optimizer config (meta.learner 'l2l')"
            )
        apply_threads(_CONFIG.value)
        rule = pretrained.load(_PRETRAINED.value)
        evaluate(
            _CONFIG.value,
            output_dir=output_dir,
            num_tasks=_NUM_TASKS.value,
            num_steps=_NUM_STEPS.value,
            seed=_SEED.value,
            rule=rule,
            rule_name=f"pretrained:{_PRETRAINED.value}",
        )

    run_main(go)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
