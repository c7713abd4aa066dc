#!/usr/bin/env python
"""The training loop's validation score of a trained rule, or of a hand-designed one for scale.

    python scripts/val_score.py --workdir=DIR [--rule=learned] [--learning_rate=LR]
        [--num_tasks=N] [--last_steps=K] [--num_steps=T] [--config.problem.FIELD=VALUE ...]

Runs the rule on the validation tasks of DIR's config (the tasks `train_optimizer.py` validates
on) and prints the score it uses to keep `best/`: the mean loss over the last K steps of the
episode, averaged over N tasks (default: the config's `train.num_val_tasks` and
`train.val_last_steps`), with the mean loss curve at a few steps. `--rule=nag --learning_rate=1`
puts a tuned baseline on the same scale, so runs with different validation settings can be
compared with each other and with the baselines (README, MNIST). `--num_steps` and problem
overrides (`--config.problem.hidden_sizes='(20, 20)'`, `--config.problem.activation=relu`) score
the same validation tasks on the generalization tests, to screen runs before `evaluate.py`.
"""

import sys

from l2l_tf.cli import (  # noqa: E402
    apply_threads,
    parse_flags,
    quiet_tensorflow,
    run_main,
    workdir_config_flag_if_given,
)

quiet_tensorflow()

from absl import app, flags  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained work directory.", required=True)
_RULE = flags.DEFINE_string("rule", "learned", "learned (DIR/best), or a baseline name.")
_LR = flags.DEFINE_float("learning_rate", None, "The baseline's learning rate.")
_NUM_TASKS = flags.DEFINE_integer("num_tasks", None, "Validation tasks (default: the config's).")
_LAST_STEPS = flags.DEFINE_integer("last_steps", None, "Steps scored (default: the config's).")
_NUM_STEPS = flags.DEFINE_integer(
    "num_steps", None, "Optimizee steps per task (default: the config's meta.num_steps)."
)
_CONFIG = workdir_config_flag_if_given(sys.argv, "DIR's config; override with --config.FIELD=V.")


def main(argv):
    del argv

    def go():
        from l2l_tf import evaluation
        from l2l_tf.errors import UserError
        from l2l_tf.experiments.l2l import training as l2l_training
        from l2l_tf.optimizers import BASELINES, make_rule
        from l2l_tf.problems import make_task_family
        from l2l_tf.run import workdir as workdir_lib
        from l2l_tf.unroll import make_trajectory_fn

        config = _CONFIG.value
        apply_threads(config)
        family = make_task_family(config.problem, config.get("data"))
        if _RULE.value == "learned":
            rule = l2l_training.build_learned_rule(config)
            info = workdir_lib.restore_best(rule, _WORKDIR.value)
            name = f"learned (best/, meta-iteration {info['iteration']})"
        elif _RULE.value in BASELINES:
            if _LR.value is None or not _LR.value > 0:
                raise UserError("--learning_rate must be given, and positive, for a baseline")
            rule = make_rule({"name": _RULE.value, "learning_rate": _LR.value})
            name = f"{_RULE.value} (learning rate {_LR.value:g})"
        else:
            raise UserError(f"--rule must be learned or one of {list(BASELINES)}")
        num_tasks = _NUM_TASKS.value or config.train.num_val_tasks
        last_steps = _LAST_STEPS.value or config.train.get("val_last_steps", 1)
        steps = _NUM_STEPS.value or config.meta.num_steps
        if not 1 <= last_steps <= steps + 1 or num_tasks < 1:
            raise UserError(f"need 1 <= --last_steps <= {steps + 1} and --num_tasks >= 1")
        trajectory = make_trajectory_fn(family, rule, steps)
        score, losses = evaluation.validation_score(
            trajectory, family, config.seed, num_tasks, last_steps
        )
        curve = losses.mean(axis=1)
        marks = [t for t in (10, 20, 40, 60, 80, 100, 200) if t <= steps]
        print(
            f"{name}: validation score {score:.4f} (mean loss over the last {last_steps} steps, "
            f"{num_tasks} tasks); mean loss at steps {marks}: "
            + ", ".join(f"{curve[t]:.3f}" for t in marks)
        )

    run_main(go)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
