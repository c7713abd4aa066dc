#!/usr/bin/env python
"""Which inputs the trained generalist rule relies on: knock-outs on its validation tasks.

    python scripts/generalist_ablation.py --workdir=runs/generalist [--num_tasks=4]

For each input group of the rule (`l2l_tf/optimizers/mlp_rule.py`: grad, momenta, factored,
param, time, bias), the rows of the first layer's kernel that read that group are set to zero
(the rule then sees the group as 0) and the validation score of configs/generalist.py's
validation specs is measured: the mean over specs of log(mean loss over the last
train.val_last_steps steps), as meta-training's checkpoint selection computes it (lower is
better). "none" is the trained rule itself, "all" zeroes every row (the rule's outputs are then
constant: Adam at the learned rate with a constant step scale). This measures what the
*trained* rule uses, not what a rule trained without the group would reach.
"""

import argparse

import numpy as np
import tensorflow as tf

from l2l_tf import config as config_lib
from l2l_tf.experiments.l2l.training import build_learned_rule, build_tasks, validation_scores
from l2l_tf.optimizers.mlp_rule import INPUT_GROUPS
from l2l_tf.run.workdir import restore_best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--num_tasks", type=int, default=4)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    config = config_lib.load_workdir_config(args.workdir)
    rule = build_learned_rule(config)
    restore_best(rule, args.workdir)
    trained = rule.kernels[0].numpy()
    per_spec = validation_scores(
        build_tasks(config, log=lambda line: None), rule, config.seed, args.num_tasks,
        config.train.val_last_steps,
    )
    print("| knocked out | validation score | per spec |")
    print("|---|---|---|")
    for group in ("none", *[g for g in INPUT_GROUPS if g in rule.inputs], "all"):
        kernel = trained.copy()
        rows = range(len(kernel)) if group == "all" else rule.input_rows(group)
        kernel[list(rows)] = 0.0
        rule.kernels[0].assign(kernel)
        scores = per_spec()
        listed = ", ".join(f"{s:.4g}" for s in scores)
        print(f"| {group} | {np.mean(np.log(scores)):.3f} | {listed} |", flush=True)


if __name__ == "__main__":
    main()
