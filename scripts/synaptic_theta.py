#!/usr/bin/env python
"""The coefficients theta of a trained synaptic rule, as a markdown table.

    python scripts/synaptic_theta.py --workdir=DIR [--json=FILE]

Reads DIR/best (the checkpoint chosen on validation tasks) of a run whose config has
rule.name = "synaptic" and prints one row per term of rule.terms and one column per coefficient
set (one per layer with rule.num_layers > 0), next to the rule's starting values. With --json,
also writes {"terms": [...], "theta": [[...] per set], "initial": [[...]]} to FILE.
"""

from l2l_tf.cli import parse_flags, quiet_tensorflow, run_main

quiet_tensorflow()

from absl import app, flags  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained work directory.", required=True)
_JSON = flags.DEFINE_string("json", None, "Also write the table to this JSON file.")


def main(argv):
    del argv
    from l2l_tf import config as config_lib
    from l2l_tf import io as l2l_io
    from l2l_tf.errors import UserError
    from l2l_tf.experiments.l2l.training import build_learned_rule
    from l2l_tf.run.workdir import restore_best

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
        print(f"{_WORKDIR.value}/best, meta-iteration {info['iteration']}")
        print("| term | " + " | ".join(sets) + " | initial |")
        print("|---|" + "---|" * (len(sets) + 1))
        for k, term in enumerate(rule.terms):
            values = " | ".join(f"{theta[s, k]:.4g}" for s in range(len(theta)))
            print(f"| {term} | {values} | {initial[0, k]:.4g} |")
        if _JSON.value:
            l2l_io.write_json(
                _JSON.value,
                {"terms": list(rule.terms), "theta": theta.tolist(), "initial": initial.tolist()},
            )

    run_main(go)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
