"""Evaluation: run any update rule on fixed task seeds, tune baselines, summarize, write results.

Every optimizer is run on the *same* tasks, initial parameters and minibatches (they all derive
from the same episode seeds), and the hand-designed baselines get their learning rate tuned on a
grid using validation tasks that are disjoint from the test tasks, so the comparison with a
learned rule (whose best checkpoint was also chosen on validation tasks) is fair by construction.
"""

import math
import time
from pathlib import Path

import numpy as np

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.optimizers import make_rule
from l2l_tf.problems.base import TaskFamily
from l2l_tf.unroll import make_trajectory_fn

LEARNED = "learned"


def rule_results(
    trajectory_fn, family: TaskFamily, seed: int, domain: int, num_tasks: int
) -> tuple[np.ndarray, dict]:
    """Losses and held-out metrics of `num_tasks` tasks of a seed domain.

    Tasks are run `family.num_members` at a time; chunk c uses episode seed c of the domain, so
    the first N tasks are the same whatever N is. `trajectory_fn` maps an episode seed to
    `(losses, metrics)` (see `unroll.make_trajectory_fn`) or to the losses alone.

    Returns:
      (member losses [num_steps + 1, num_tasks], {metric: [num_tasks]} of the final parameters;
      empty for families without held-out data).
    """
    chunks, metric_chunks = [], []
    count = 0
    index = 0
    while count < num_tasks:
        out = trajectory_fn(seeding.task_seed(seed, domain, index))
        losses, metrics = out if isinstance(out, tuple) else (out, {})

        chunks.append(losses.numpy())
        metric_chunks.append({k: v.numpy() for k, v in metrics.items()})
        count += family.num_members
        index += 1
    metrics = {
        k: np.concatenate([c[k] for c in metric_chunks])[:num_tasks] for k in metric_chunks[0]
    }
    return np.concatenate(chunks, axis=1)[:, :num_tasks], metrics


def rule_losses(
    trajectory_fn, family: TaskFamily, seed: int, domain: int, num_tasks: int
) -> np.ndarray:
    """The losses of `rule_results`, shape [num_steps + 1, num_tasks]."""
    return rule_results(trajectory_fn, family, seed, domain, num_tasks)[0]


def tuning_score(losses: np.ndarray, last_steps: int = 1) -> float:
    """Mean final loss; inf if any task's trajectory became non-finite.

    With `last_steps` = k > 1, the mean over tasks of the losses at the last k steps: with
    minibatch losses the final step alone scores each task on a single batch, a noisy choice
    between checkpoints.
    """
    if not np.all(np.isfinite(losses)):
        return math.inf
    return float(np.mean(losses[-last_steps:]))


def validation_score(
    trajectory_fn, family: TaskFamily, seed: int, num_tasks: int, last_steps: int = 1
) -> tuple[float, np.ndarray]:
    """The score the training loops keep `best/` by, and the losses it comes from.

    Returns:
      (`tuning_score` of `num_tasks` validation tasks (the seed domain `seeding.VALIDATION`)
      over their last `last_steps` steps, the losses [num_steps + 1, num_tasks]).
    """
    losses = rule_losses(trajectory_fn, family, seed, seeding.VALIDATION, num_tasks)
    return tuning_score(losses, last_steps), losses


def _sem(values: np.ndarray) -> float:

    n = len(values)
    return float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else math.nan


def summarize(losses: np.ndarray, metrics: dict | None = None) -> dict:
    """Statistics of one optimizer's losses [num_steps + 1, num_tasks] and held-out metrics.

    A task whose trajectory reaches inf or NaN is counted as diverged and left out of the means
    (which are then over the remaining tasks); `diverged` says how many there were. Each
    held-out metric M ({M: [num_tasks]}, e.g. `test_loss`) adds `M_mean` and `M_sem` over the
    same tasks.
    """
    finite = np.all(np.isfinite(losses), axis=0)
    kept = losses[:, finite]
    n = kept.shape[1]
    final = kept[-1]
    out = {
        "final_loss_mean": float(np.mean(final)) if n else math.nan,
        "final_loss_sem": _sem(final),
        "final_loss_median": float(np.median(final)) if n else math.nan,
        "curve_mean": [float(v) for v in np.mean(kept, axis=1)] if n else [],
        "diverged": int(np.sum(~finite)),
    }
    for name, values in (metrics or {}).items():
        values = np.asarray(values)[finite]
        out[f"{name}_mean"] = float(np.mean(values)) if n else math.nan
        out[f"{name}_sem"] = _sem(values)
    return out


def tune_learning_rate(
    rule, family: TaskFamily, trajectory_fn, grid, seed: int, num_tasks: int
) -> tuple[float, dict]:
    """Picks the rate of `grid` with the lowest mean final loss on validation tasks.

    Returns:
      (best rate, {rate: score}) with inf scores for rates that diverged.
    """
    scores = {}
    for lr in grid:
        rule.learning_rate.assign(lr)
        losses = rule_losses(trajectory_fn, family, seed, seeding.VALIDATION, num_tasks)
        scores[float(lr)] = tuning_score(losses)
    best = min(scores, key=lambda lr: scores[lr])
    return best, scores


def evaluate_rules(
    family: TaskFamily,
    config,
    *,
    learned_rule=None,
    num_tasks: int,
    num_steps: int,
    seed: int,
    reuse: dict | None = None,
    log=print,
) -> dict:
    """Runs the learned rule (if given) and every tuned baseline on the same test tasks.

    `reuse` maps baseline names to their entries of an earlier results dict for the same
    family, tasks, steps, seed and eval settings (the caller checks that); those baselines are
    not run again.

    Returns:
      The results dictionary written to results.json (see `write_results`).
    """
    optimizers = {}
    if learned_rule is not None:
        start = time.time()
        fn = make_trajectory_fn(family, learned_rule, num_steps)
        losses, metrics = rule_results(fn, family, seed, seeding.TEST, num_tasks)
        optimizers[LEARNED] = {"learning_rate": None, **summarize(losses, metrics)}
        log(f"  {LEARNED:9s}              {_log_line(optimizers[LEARNED], start)}")
    for name in config.eval.baselines:
        if reuse and name in reuse:
            optimizers[name] = reuse[name]
            log(f"  {name:9s} lr={reuse[name]['learning_rate']:<8.3g} (reused)")
            continue
        start = time.time()
        rule = make_rule({"name": name})
        fn = make_trajectory_fn(family, rule, num_steps)
        lr, scores = tune_learning_rate(
            rule, family, fn, config.eval.lr_grid, seed, config.eval.num_tuning_tasks
        )
        rule.learning_rate.assign(lr)
        losses, metrics = rule_results(fn, family, seed, seeding.TEST, num_tasks)
        optimizers[name] = {
            "learning_rate": lr,
            **summarize(losses, metrics),
            "lr_search": {f"{k:.6g}": v for k, v in scores.items()},
        }
        if lr in (min(config.eval.lr_grid), max(config.eval.lr_grid)):
            log(f"  warning: {name}'s best rate {lr:g} is at the edge of eval.lr_grid")
        log(f"  {name:9s} lr={lr:<8.3g} {_log_line(optimizers[name], start)}")
    results = {
        "problem": family.name,
        "num_tasks": int(num_tasks),
        "num_steps": int(num_steps),
        "seed": int(seed),
    }
    if family.info():
        results["data"] = family.info()
    results["optimizers"] = optimizers
    return results


def _log_line(r: dict, start: float) -> str:
    line = f"final loss {r['final_loss_mean']:.4g}"
    if "test_loss_mean" in r:
        line += f"  test loss {r['test_loss_mean']:.4g}"
    if "test_accuracy_mean" in r:
        line += f"  test accuracy {r['test_accuracy_mean']:.4f}"
    return f"{line} ({time.time() - start:.1f}s)"


def resolve_arguments(config, workdir, output_dir, num_tasks, num_steps, seed) -> tuple:
    """The optional arguments of an `evaluate` function, defaulted from the config and checked.

    Returns:
      (num_tasks, num_steps, seed, output_dir): config.eval.num_tasks, config.eval.num_steps,
      config.seed and WORKDIR/eval where the argument is None.

    Raises:
      UserError: a count below 1, or neither output_dir nor workdir.
    """

    num_tasks = config.eval.num_tasks if num_tasks is None else num_tasks
    num_steps = config.eval.num_steps if num_steps is None else num_steps
    seed = config.seed if seed is None else seed
    for name, value in (("num_tasks", num_tasks), ("num_steps", num_steps)):
        if value < 1:
            raise UserError(f"--{name} must be a positive integer, got {value}")
    if output_dir is None:
        if workdir is None:
            raise UserError("--output_dir is required when no --workdir is given")
        output_dir = Path(workdir) / "eval"
    return num_tasks, num_steps, seed, Path(output_dir)
