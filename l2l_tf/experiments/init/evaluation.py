"""Evaluation of initialization learners: the metric after 0, 1, ..., k adaptation steps.

On `num_tasks` fresh test tasks (the TEST seed domain), every method adapts to each task's
support set and is scored on its query set after every step, as in figure 3 of Finn et al.
(2017). The methods are the trained learner (adapting with its own inner rule: SGD at the inner
learning rate, Meta-SGD's learned rates) and two baselines:

- `pretrained`: one network trained on all training tasks jointly (the learner's task stream,
  zero inner steps, `eval.pretrain_iterations` iterations of Adam at 1e-3), then
  fine-tuned on each task with SGD;
- `scratch`: each task's own random initialization, fine-tuned with SGD.

The metric is the task family's (`metric_name`): the query MSE for sinusoids (lower is better),
the query accuracy for few-shot classification (higher is better). The baselines' SGD rates are
picked from `eval.lr_grid` on validation tasks (disjoint from the test tasks; for few-shot
classification, held-out images of the meta-train classes) by the best mean metric over steps
1..k, in the metric's direction. A task whose curve becomes inf or NaN, or whose loss grows past
`BLOWUP_FACTOR` (1000) times its loss before adaptation, is counted in `diverged`; each step's
mean is over the tasks not diverged at that step, and details.json gives the count of diverged
tasks at every step.
"""

import math
import time

import numpy as np

from l2l_tf import evaluation, seeding
from l2l_tf import io as l2l_io
from l2l_tf.experiments.init.training import (
    MetaTrainStep,
    build_family,
    build_learner,
    make_curve_fn,
    meta_train,
    tasks_per_call,
)
from l2l_tf.experiments.init.validation import validate
from l2l_tf.meta import MetaOptimizer
from l2l_tf.optimizers import make_rule
from l2l_tf.problems import TASK_FAMILIES
from l2l_tf.reporting.adaptation import PRETRAINED, SCRATCH, format_table, plot_curves
from l2l_tf.run.workdir import restore_best

#: Adam's rate for the pretrained baseline's joint training (MAML's meta learning rate), fixed
#: so that the baseline does not depend on the evaluated learner's meta-optimizer settings.
PRETRAIN_LEARNING_RATE = 1e-3


def metric_name(config) -> str:
    """The name of the evaluated metric: "mse" for sinusoids, "accuracy" for classification."""
    return getattr(TASK_FAMILIES.get(config.problem.name), "metric_name", "loss")


#: A loss above this multiple of the task's loss before adaptation counts as diverged: it is
#: finite only because it has not overflowed yet (Meta-SGD's rates applied ten times reach
#: 1e23), and one such task would otherwise dominate the mean.
BLOWUP_FACTOR = 1e3


def diverged_mask(values: np.ndarray, higher_is_better: bool = False) -> np.ndarray:
    """Which entries of values [num_steps + 1, num_tasks] have diverged.

    An entry is diverged if it is inf or NaN or, for a loss (lower is better), if it exceeds
    `BLOWUP_FACTOR` times the task's step-0 loss.
    """
    bad = ~np.isfinite(values)
    if not higher_is_better:
        with np.errstate(invalid="ignore"):
            limit = BLOWUP_FACTOR * np.abs(values[:1])
            bad |= np.isfinite(limit) & (limit > 0) & (values > limit)
    return bad


def summarize_curves(losses: np.ndarray, higher_is_better: bool = False) -> dict:
    """Per-step mean and 95% confidence half-width of values [num_steps + 1, num_tasks].

    `diverged` counts the tasks that diverged (see `diverged_mask`) at any step. Each step's
    statistics are over the tasks not diverged at that step, so a task that diverges at step 8
    still counts at step 1 (a rate that is good for one step but unstable over ten, like
    Meta-SGD's learned rates, is not credited with dropping its hard tasks early).
    """
    bad = diverged_mask(losses, higher_is_better)
    means, cis = [], []
    for row, ok in zip(losses, ~bad):
        kept = row[ok]
        means.append(float(np.mean(kept)) if kept.size else math.nan)
        cis.append(
            float(1.96 * np.std(kept, ddof=1) / math.sqrt(kept.size)) if kept.size > 1 else math.nan
        )
    return {
        "per_step_mean": means,
        "per_step_ci95": cis,
        "diverged": int(np.sum(np.any(bad, axis=0))),
    }


def diverged_per_step(losses: np.ndarray, higher_is_better: bool = False) -> list[int]:
    """How many tasks are diverged (see `diverged_mask`) at each step."""
    return [int(v) for v in np.sum(diverged_mask(losses, higher_is_better), axis=1)]


def tuning_score(values: np.ndarray, higher_is_better: bool = False) -> float:
    """Mean metric over steps 1..k; the worst possible score if any task diverged.

    Args:
      values: the metric [num_steps + 1, num_tasks] (a loss, or an accuracy).
      higher_is_better: the metric's direction: a diverged rate scores -inf for an accuracy,
        inf for a loss.
    """
    if np.any(diverged_mask(values, higher_is_better)):
        return -math.inf if higher_is_better else math.inf
    return float(np.mean(values[1:]))


def tune_sgd_rate(
    learner, curve_fn, grid, seed: int, num_tasks: int, higher_is_better: bool = False
) -> tuple[float, dict]:
    """The rate of `grid` (assigned to the learner's SGD inner rule) with the best score.

    The best score is the lowest mean loss, or the highest mean accuracy when
    `higher_is_better`; ties go to the first rate of the grid.
    """
    scores = {}
    family = learner.family
    for lr in grid:
        learner.inner_rule.learning_rate.assign(lr)
        values = evaluation.rule_losses(curve_fn, family, seed, seeding.VALIDATION, num_tasks)
        scores[float(lr)] = tuning_score(values, higher_is_better)
    pick = max if higher_is_better else min
    best = pick(scores, key=lambda lr: scores[lr])
    learner.inner_rule.learning_rate.assign(best)
    return best, scores


def pretrain(config, log=print):
    """The `pretrained` baseline's network: joint training on the training tasks."""
    cfg = config.meta
    family = build_family(config, cfg.meta_batch_size)
    # MAML with zero inner steps is exactly joint training: the loss at theta itself.
    learner = build_learner(config, family, learner="maml", num_inner_steps=0)
    meta_rule = make_rule({"name": "adam", "learning_rate": PRETRAIN_LEARNING_RATE})
    step = MetaTrainStep(learner, MetaOptimizer(meta_rule, learner.meta_params), config.seed)
    start = time.time()
    out = meta_train(step, config.eval.pretrain_iterations, cfg.iterations_per_call)
    log(
        f"  pretrained: {config.eval.pretrain_iterations} joint-training iterations, "
        f"training loss {out['mean_loss']:.4g} ({time.time() - start:.1f}s)"
    )
    return learner


def evaluate_methods(config, *, learner=None, num_tasks: int, num_steps: int, seed: int, log=print):
    """Curves of the trained `learner` (if given) and of the baselines on the same test tasks.

    Returns:
      ({method: summary}, {method: details such as the tuned rate}).
    """
    family = build_family(config, tasks_per_call(config, num_tasks), split="test")
    tuning_family = build_family(
        config, tasks_per_call(config, config.eval.num_tuning_tasks), split="val"
    )
    higher_is_better = family.higher_is_better
    if family.describe():
        log(family.describe())
    methods, details = {}, {}

    def run(name, view, random_init=False, tune=False):
        start = time.time()
        info = {}
        if tune:
            tuner = view.with_family(tuning_family)
            lr, scores = tune_sgd_rate(
                tuner,
                make_curve_fn(tuner, num_steps, random_init, metric=True),
                config.eval.lr_grid,
                seed,
                config.eval.num_tuning_tasks,
                higher_is_better,
            )
            info = {"learning_rate": lr, "lr_search": {f"{k:.6g}": v for k, v in scores.items()}}
            if lr in (min(config.eval.lr_grid), max(config.eval.lr_grid)):
                log(f"  warning: {name}'s best rate {lr:g} is at the edge of eval.lr_grid")
        view = view.with_family(family)
        fn = make_curve_fn(view, num_steps, random_init, metric=True)
        losses = evaluation.rule_losses(fn, family, seed, seeding.TEST, num_tasks)
        methods[name] = summarize_curves(losses, higher_is_better)
        details[name] = {
            **info,
            "diverged_per_step": diverged_per_step(losses, higher_is_better),
            "seconds": time.time() - start,
        }
        means = methods[name]["per_step_mean"]
        log(
            f"  {name:10s} step 0: {means[0]:.4g}  step 1: {means[min(1, num_steps)]:.4g}  "
            f"step {num_steps}: {means[-1]:.4g}  diverged {methods[name]['diverged']} "
            f"({details[name]['seconds']:.1f}s)"
        )

    if learner is not None:
        run(config.meta.learner, learner)
    if PRETRAINED in config.eval.baselines:
        run(PRETRAINED, pretrain(config, log), tune=True)
    if SCRATCH in config.eval.baselines:
        scratch = build_learner(config, family, learner="maml", num_inner_steps=0)
        run(SCRATCH, scratch, random_init=True, tune=True)
    return methods, details


def evaluate(
    config, *, workdir=None, output_dir=None, num_tasks=None, num_steps=None, seed=None, log=print
) -> dict:
    """Everything `evaluate.py` does for an initialization learner's config.

    Args:
      config: the resolved config (WORKDIR/config.json, or a config file for baselines alone).
      workdir: a trained work directory whose best/ meta-parameters are evaluated; None for
        the baselines alone.
      output_dir: where results go (default WORKDIR/eval).
      num_tasks, num_steps, seed: default to config.eval.num_tasks, config.eval.num_steps and
        config.seed.

    Returns:
      The results dictionary written to results.json:
      {"problem", "metric", "num_tasks", "methods": {name: {"per_step_mean", "per_step_ci95",
      "diverged"}}}. details.json beside it holds the tuned rates and timings.
    """
    validate(config)
    num_tasks, num_steps, seed, output_dir = evaluation.resolve_arguments(
        config, workdir, output_dir, num_tasks, num_steps, seed
    )
    learner, info = None, None
    if workdir is not None:
        learner = build_learner(config, build_family(config, config.meta.meta_batch_size))
        info = restore_best(learner, workdir)
        log(
            f"{config.meta.learner}: {workdir}/best (meta-iteration {info['iteration']}, "
            f"validation query loss {info['val_query_loss_mean']:.4g})"
        )
    family_name = config.problem.name
    log(f"evaluating on {num_tasks} {family_name} tasks, 0..{num_steps} steps (seed {seed})")
    methods, details = evaluate_methods(
        config, learner=learner, num_tasks=num_tasks, num_steps=num_steps, seed=seed, log=log
    )
    results = {
        "problem": family_name,
        "metric": metric_name(config),
        "num_tasks": int(num_tasks),
        "methods": methods,
    }
    extra = {"seed": int(seed), "num_steps": int(num_steps), "methods": details}
    if info is not None:
        extra.update(workdir=str(workdir), best_iteration=info["iteration"])
    extra["config"] = config.to_dict()
    l2l_io.write_json(output_dir / "results.json", results)
    l2l_io.write_json(output_dir / "details.json", extra)
    table = format_table(results)
    l2l_io.write_text(output_dir / "summary.md", table + "\n")
    plot_curves(results, output_dir / "adaptation_curves.png")
    log(table)
    log(f"wrote {output_dir}/results.json, details.json, summary.md, adaptation_curves.png")
    return results
