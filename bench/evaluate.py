#!/usr/bin/env python
"""Times evaluate.py's work on the quadratic experiment.

    python bench/evaluate.py [--workdir=DIR] [--num_tasks=1000] [--num_steps=100]

Runs everything `evaluate.py --workdir=DIR` runs: every baseline over its learning-rate grid
on the validation tasks, then every baseline and the learned rule on `--num_tasks` test tasks
of `--num_steps` steps (without --workdir the learned rule keeps its initial weights, which
costs the same). Prints `BENCH bench=evaluate ... wall_s=...` with tracing included.
"""

import time

from l2l_tf.cli import apply_threads, quiet_tensorflow  # noqa: E402

quiet_tensorflow()

from absl import app, flags  # noqa: E402
from common import bench_line, peak_rss_mb  # noqa: E402

from configs import quadratic  # noqa: E402
from l2l_tf import evaluation  # noqa: E402
from l2l_tf.experiments.l2l import training as l2l_training  # noqa: E402
from l2l_tf.problems import make_task_family  # noqa: E402
from l2l_tf.run import workdir as workdir_lib  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Trained quadratic work directory (optional).")
_NUM_TASKS = flags.DEFINE_integer("num_tasks", 1000, "Test tasks.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", 100, "Steps per task.")


def main(argv):
    del argv
    config = quadratic.get_config()
    apply_threads(config)  # as evaluate.py does
    start = time.perf_counter()

    family = make_task_family(config.problem, config.get("data"))
    rule = l2l_training.build_learned_rule(config)
    if _WORKDIR.value:
        workdir_lib.restore_best(rule, _WORKDIR.value)
    results = evaluation.evaluate_rules(
        family,
        config,
        learned_rule=rule,
        num_tasks=_NUM_TASKS.value,
        num_steps=_NUM_STEPS.value,
        seed=config.seed,
        log=lambda *a: None,
    )
    wall = time.perf_counter() - start
    runs = len(config.eval.lr_grid) * len(config.eval.baselines) + len(results["optimizers"])
    bench_line(
        bench="evaluate",
        problem="quadratic",
        num_tasks=_NUM_TASKS.value,
        num_steps=_NUM_STEPS.value,
        lr_grid=len(config.eval.lr_grid),
        optimizer_runs=runs,
        wall_s=wall,
        peak_rss_mb=peak_rss_mb(),
    )


if __name__ == "__main__":
    app.run(main)
