"""Evaluating a trained learned optimizer against the tuned baselines on fresh tasks."""

from l2l_tf.errors import UserError
from l2l_tf.evaluation import evaluate_rules, resolve_arguments
from l2l_tf.experiments.l2l.suite import run_suite
from l2l_tf.experiments.l2l.training import build_learned_rule
from l2l_tf.experiments.l2l.validation import validate
from l2l_tf.problems import make_task_family
from l2l_tf.reporting.rules import format_table, write_results
from l2l_tf.run.workdir import restore_best


def evaluate(
    config,
    *,
    workdir=None,
    output_dir=None,
    num_tasks=None,
    num_steps=None,
    seed=None,
    rule=None,
    rule_name=None,
    suite_config=None,
    log=print,
) -> dict:
    """Everything `evaluate.py` does: run, write results files, print the table.

    Args:
      config: the resolved config (from WORKDIR/config.json, or a config file for baselines
        alone or for `rule`), including any problem overrides.
      workdir: a trained work directory whose best/ rule is evaluated; None for baselines only
        or for `rule`.
      output_dir: where results go (default WORKDIR/eval).
      num_tasks, num_steps, seed: default to config.eval.num_tasks, config.eval.num_steps and
        config.seed.
      rule, rule_name: a learned rule to evaluate instead of a work directory's (a shipped
        optimizer, `l2l_tf.pretrained.load`), and what to call it in the results.

    Returns:
      The results dictionary.
    """
    validate(config)
    if config.problem.get("name") == "distribution":
        if workdir is None or suite_config is None:
            raise UserError(
                "a task-distribution config has no single task family to evaluate on: pass "
                "--workdir=DIR of a trained run and --suite=FILE"
            )
        output_dir = output_dir or f"{workdir}/suite"
        return evaluate_suite(suite_config, workdir=workdir, output_dir=output_dir, log=log)
    num_tasks, num_steps, seed, output_dir = resolve_arguments(
        config, workdir, output_dir, num_tasks, num_steps, seed
    )
    family = make_task_family(config.problem, config.get("data"))
    if family.describe():
        log(family.describe())
    learned = rule
    if workdir is not None:
        learned = build_learned_rule(config)
        info = restore_best(learned, workdir)
        log(
            f"learned rule: {workdir}/best (meta-iteration {info['iteration']}, validation "
            f"final loss {info['val_final_loss_mean']:.4g})"
        )
    elif rule is not None:
        log(f"learned rule: {rule_name}, untuned")
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
    elif rule is not None:
        results["rule"] = rule_name
    results["config"] = config.to_dict()
    paths = write_results(results, output_dir)
    log(format_table(results))
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return results


def evaluate_suite(
    suite_config,
    *,
    rule=None,
    rule_name=None,
    workdir=None,
    output_dir,
    baselines_from=None,
    log=print,
) -> dict:
    """The held-out suite (`experiments.l2l.suite`) for a shipped rule or a work directory's."""
    if workdir is not None:
        from l2l_tf import config as config_lib

        config = config_lib.load_workdir_config(workdir)
        rule = build_learned_rule(config)
        info = restore_best(rule, workdir)
        rule_name = f"{workdir}/best (meta-iteration {info['iteration']})"
    log(f"held-out suite: {len(suite_config.suite.tasks)} tasks, learned rule {rule_name}")
    return run_suite(
        rule,
        suite_config,
        output_dir,
        rule_name=rule_name,
        baselines_from=baselines_from,
        log=log,
    )
