#!/usr/bin/env python
"""The coefficients theta of a trained synaptic rule, as a markdown table.

    python scripts/synaptic_theta.py --workdir=DIR [--json=FILE]

Reads DIR/best (the checkpoint chosen on validation tasks) of a run whose config has
rule.name = "synaptic" and prints one row per term of rule.terms and one column per coefficient
set (one per layer with rule.num_layers > 0), next to the rule's starting values. With
--knockouts, also the validation score (the training loop's: mean final loss over
train.num_val_tasks validation tasks, never test tasks) of the rule with that term's
coefficients set to 0 in every layer, and of the whole rule. With --json, also writes
{"terms": [...], "theta": [[...] per set], "initial": [[...]], "knockouts": {...}} to FILE.
"""

from l2l_tf.cli import parse_flags, quiet_tensorflow, run_main

quiet_tensorflow()

from absl import app, flags  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained work directory.", required=True)
_JSON = flags.DEFINE_string("json", None, "Also write the table to this JSON file.")
_KNOCKOUTS = flags.DEFINE_bool("knockouts", False, "Score each term's knock-out on validation.")


def main(argv):
    del argv
    from l2l_tf import config as config_lib
    from l2l_tf import evaluation
    from l2l_tf import io as l2l_io
    from l2l_tf.errors import UserError
    from l2l_tf.experiments.l2l.training import build_learned_rule
    from l2l_tf.problems import make_task_family
    from l2l_tf.run.workdir import restore_best
    from l2l_tf.unroll import make_trajectory_fn

    def go():
        config = config_lib.load_workdir_config(_WORKDIR.value)
        if config.rule.get("name") != "synaptic":
            raise UserError(
                f"{_WORKDIR.value} trained rule {config.rule.get('name')!r}, not synaptic"
            )
        initial = build_learned_rule(config).theta.numpy()
        rule = build_learned_rule(config)
        info = restore_best(rule, _WORKDIR.value)
        theta = rule.theta.numpy()
        sets = [f"layer {i + 1}" for i in range(len(theta))] if rule.num_layers else ["shared"]
        knockouts = {}
        if _KNOCKOUTS.value:
            family = make_task_family(config.problem, config.get("data"))
            fn = make_trajectory_fn(family, rule, config.meta.num_steps)

            def score():
                return evaluation.validation_score(
                    fn, family, config.seed, config.train.num_val_tasks, config.train.val_last_steps
                )[0]

            knockouts["none"] = score()
            for k, term in enumerate(rule.terms):
                zeroed = theta.copy()
                zeroed[:, k] = 0.0
                rule.theta.assign(zeroed)
                knockouts[term] = score()
            rule.theta.assign(theta)
        print(f"{_WORKDIR.value}/best, meta-iteration {info['iteration']}")
        extra = " validation score without it |" if knockouts else ""
        print("| term | " + " | ".join(sets) + " | initial |" + extra)
        print("|---|" + "---|" * (len(sets) + 1 + bool(knockouts)))
        for k, term in enumerate(rule.terms):
            values = " | ".join(f"{theta[s, k]:.4g}" for s in range(len(theta)))
            ko = f" {knockouts[term]:.4g} |" if knockouts else ""
            print(f"| {term} | {values} | {initial[0, k]:.4g} |{ko}")
        if knockouts:
            print(f"validation score of the whole rule: {knockouts['none']:.4g}")
        if _JSON.value:
            l2l_io.write_json(
                _JSON.value,
                {
                    "terms": list(rule.terms),
                    "theta": theta.tolist(),
                    "initial": initial.tolist(),
                    "knockouts": knockouts,
                },
            )

    run_main(go)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
