"""Evaluating a trained learned optimizer against the tuned baselines on fresh tasks."""

from l2l_tf.evaluation import evaluate_rules, resolve_arguments
from l2l_tf.experiments.l2l.training import build_learned_rule
from l2l_tf.experiments.l2l.validation import validate
from l2l_tf.problems import make_task_family
from l2l_tf.reporting.rules import format_table, write_results
from l2l_tf.run.workdir import restore_best


def evaluate(
    config, *, workdir=None, output_dir=None, num_tasks=None, num_steps=None, seed=None, log=print
) -> dict:
    """Everything `evaluate.py` does: run, write results files, print the table.

    Args:
      config: the resolved config (from WORKDIR/config.json, or a config file for baselines
        alone), including any problem overrides.
      workdir: a trained work directory whose best/ rule is evaluated; None for baselines only.
      output_dir: where results go (default WORKDIR/eval).
      num_tasks, num_steps, seed: default to config.eval.num_tasks, config.eval.num_steps and
        config.seed.

    Returns:
      The results dictionary.
    """
    validate(config)
    num_tasks, num_steps, seed, output_dir = resolve_arguments(
        config, workdir, output_dir, num_tasks, num_steps, seed
    )
    family = make_task_family(config.problem, config.get("data"))
    if family.describe():
        log(family.describe())
    learned = None
    if workdir is not None:
        learned = build_learned_rule(config)
        info = restore_best(learned, workdir)
        log(
            f"learned rule: {workdir}/best (meta-iteration {info['iteration']}, validation "
            f"final loss {info['val_final_loss_mean']:.4g})"
        )
    log(f"evaluating on {num_tasks} {family.name} tasks x {num_steps} steps (seed {seed})")
    results = evaluate_rules(
        family,
        config,
        learned_rule=learned,
        num_tasks=num_tasks,
        num_steps=num_steps,
        seed=seed,
        log=log,
    )
    if workdir is not None:
        results["workdir"] = str(workdir)
        results["best_iteration"] = info["iteration"]
    results["config"] = config.to_dict()
    paths = write_results(results, output_dir)
    log(format_table(results))
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return results
