#!/usr/bin/env python
"""Exports a work directory's best rule as a shipped optimizer (l2l_tf/pretrained/NAME.*).

    python scripts/export_pretrained.py --workdir=runs/generalist --name=generalist

Writes NAME.json (the rule's config, the training config and where the weights came from) and
NAME.npz (the weights of WORKDIR/best, the checkpoint chosen on validation tasks), optionally
without some input groups (--drop_inputs). The card,
NAME.md, is written by hand from the run's log and the held-out suite's results.
"""

import argparse
import sys
from pathlib import Path

from l2l_tf import config as config_lib
from l2l_tf import pretrained
from l2l_tf.errors import UserError
from l2l_tf.experiments.l2l.training import build_learned_rule
from l2l_tf.run.workdir import restore_best


def export_workdir(workdir, name: str, directory=pretrained.DIRECTORY, drop_inputs=()) -> list:
    workdir = Path(workdir)
    config = config_lib.load_workdir_config(workdir)
    rule = build_learned_rule(config)
    best = restore_best(rule, workdir)
    if drop_inputs:
        rule = rule.without_inputs(drop_inputs)
    provenance = {
        "source": f"{workdir}/best (meta-iteration {best['iteration']})",
        "dropped_inputs": list(drop_inputs),
        "validation_score": best.get("val_final_loss_mean"),
        "training_config": config.to_dict(),
    }
    return pretrained.export(rule, name, provenance, directory)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="A trained work directory.")
    parser.add_argument("--name", default="generalist", help="The shipped optimizer's name.")
    parser.add_argument(
        "--drop_inputs",
        default="",
        help="Comma-separated input groups the exported rule leaves out (their first-layer "
        "rows dropped), e.g. grad,factored; chosen by scripts/generalist_ablation.py.",
    )
    parser.add_argument("--directory", default=str(pretrained.DIRECTORY), help="Output folder.")
    args = parser.parse_args(argv)
    try:
        drop = tuple(g for g in args.drop_inputs.split(",") if g)
        paths = export_workdir(args.workdir, args.name, Path(args.directory), drop)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
