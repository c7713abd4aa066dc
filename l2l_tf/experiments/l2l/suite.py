"""The held-out suite: one learned rule, untuned, against per-task tuned baselines.

`run_suite(rule, suite_config, output_dir)` evaluates `rule` on every task of the suite
(configs/suite.py: a list of task specs, see `problems.distribution.parse_spec`) with
`evaluation.evaluate_rules`: the same test tasks for every optimizer, each baseline's learning
rate tuned on that task's validation tasks (seeds disjoint from the test tasks), the learned
rule run as it is. A task's score is its final training loss: the loss of the final parameters
on the whole training split (`train_loss`) for classifiers, the final loss for quadratics
(whose loss has no minibatch noise). Results go to OUTPUT/results.json, summary.md and
ratios.png, and each task's full evaluation to OUTPUT/tasks/NAME/.
"""

import json
import math
import time
from pathlib import Path

import ml_collections

from l2l_tf.evaluation import LEARNED, evaluate_rules
from l2l_tf.problems.distribution import build_family, parse_spec
from l2l_tf.reporting import suite as suite_report
from l2l_tf.reporting.rules import write_results


def score_of(result: dict) -> float:
    """A task's final training loss for one optimizer (module docstring); inf if diverged."""
    if result.get("diverged"):
        return math.inf
    value = result.get("train_loss_mean", result["final_loss_mean"])
    return value if math.isfinite(value) else math.inf


def suite_task_family(spec: str, num_members: int):
    """(family, horizon) of a suite task, its test tasks run `num_members` at a time."""
    kind, fields, steps = parse_spec(spec)
    fields = dict(fields)
    if kind == "quadratic":
        fields.setdefault("batch_size", num_members)
    else:
        fields.setdefault("num_members", num_members)
    return build_family(kind, fields), steps


def _reusable(path: Path, spec: str, suite_config) -> dict | None:
    """The baselines of an earlier evaluation of the same task and settings at `path`."""
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    settings = json.loads(json.dumps(suite_config.eval.to_dict()))  # tuples as JSON lists
    same = old.get("spec") == spec and old.get("suite_eval") == settings
    same = same and old.get("seed") == suite_config.seed
    return {k: v for k, v in old["optimizers"].items() if k != LEARNED} if same else None


def run_suite(
    rule, suite_config, output_dir, *, rule_name: str, baselines_from=None, log=print
) -> dict:
    """Evaluates `rule` on every task of `suite_config` (module docstring).

    `baselines_from`: an earlier suite output directory whose per-task baseline results are
    reused where the task and the eval settings are the same (the baselines do not depend on
    the learned rule), so evaluating a second rule costs only its own runs.

    Returns:
      The suite's results dictionary (see `reporting.suite`).
    """
    output_dir = Path(output_dir)
    tasks = []
    start = time.time()
    for index, (name, out_of, spec) in enumerate(suite_config.suite.tasks):
        family, steps = suite_task_family(spec, suite_config.suite.num_members)
        log(f"[{index + 1}/{len(suite_config.suite.tasks)}] {name}: {spec}")
        eval_config = ml_collections.ConfigDict({"eval": suite_config.eval.to_dict()})
        reuse = None
        if baselines_from is not None:
            reuse = _reusable(
                Path(baselines_from) / "tasks" / name / "results.json", spec, suite_config
            )
        results = evaluate_rules(
            family,
            eval_config,
            learned_rule=rule,
            num_tasks=suite_config.eval.num_tasks,
            num_steps=steps,
            seed=suite_config.seed,
            reuse=reuse,
            log=lambda line: log("  " + line),
        )
        results["spec"] = spec
        results["suite_eval"] = suite_config.eval.to_dict()
        write_results(results, output_dir / "tasks" / name)
        scores = {k: score_of(r) for k, r in results["optimizers"].items()}
        baselines = {k: v for k, v in scores.items() if k != LEARNED}
        best = min(baselines, key=baselines.get)
        tasks.append(
            {
                "name": name,
                "out_of": out_of,
                "spec": spec,
                "learned": scores[LEARNED],
                "best_baseline": best,
                "best": baselines[best],
                "adam": baselines.get("adam"),
                "scores": scores,
                "learning_rates": {
                    k: r["learning_rate"] for k, r in results["optimizers"].items() if k != LEARNED
                },
                "diverged": results["optimizers"][LEARNED]["diverged"],
            }
        )
        log(
            f"  {name}: learned {scores[LEARNED]:.4g}, best tuned {best} {baselines[best]:.4g} "
            f"(ratio {suite_report.ratio(scores[LEARNED], baselines[best]):.3g})  "
            f"[{time.time() - start:.0f}s]"
        )
    results = suite_report.summarize(
        tasks, rule=rule_name, seed=suite_config.seed, config=suite_config.to_dict()
    )
    paths = suite_report.write(results, output_dir)
    log(suite_report.format_table(results))
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return results
