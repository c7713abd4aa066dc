#!/usr/bin/env python
"""Tunes the MGRL CartPole agent on seeds other than the evaluation seeds.

    python scripts/mgrl_tune.py '[{"tag": "lr 1e-2", "o": {"meta.learning_rate": 0.01}},
                                {"tag": "fixed", "eta": [0.98, 0.8], "seed": 2005}]'

Each item runs one setting of configs/mgrl_cartpole.py (fields overridden by "o"; a fixed eta
with "eta", else eta is meta-learned) on seeds seed .. seed + n - 1 (default 2000, 5: disjoint
from evaluate.py's 1000 .. 1009) for "iters" iterations (default 600), and prints the score
evaluate.py reports (mean return of the episodes completed in the last 20% of steps). It calls
the library functions evaluate.py calls, so a meta-learned row equals
`evaluate.py --config=configs/mgrl_cartpole.py --seed=SEED --config.eval.fixed_grid=False
--config.threads.intra_op=1 --config.threads.inter_op=1` with the same overrides; it exists so
that one process can run several settings and fixed etas without the whole grid.
"""

import json
import sys
import time

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs.mgrl_cartpole import get_config  # noqa: E402
from l2l_tf.experiments.mgrl.training import build_learner, final_return, run_curve  # noqa: E402


def run_setting(overrides, eta=None, seeds=range(2000, 2005), iterations=600, tag=""):
    """Runs one setting on `seeds`; prints and returns the per-seed scores."""
    c = get_config()
    for key, value in overrides.items():
        section, field = key.split(".")
        c[section][field] = value
    learn = tuple(c.meta.learn) if eta is None else ()
    start = time.time()
    learner = build_learner(c, learn=learn, seed=seeds[0])
    finals, gammas, lambdas = [], [], []
    for s in seeds:
        learner.reset(s, eta or (c.meta.init_gamma, c.meta.init_lambda))
        curve = run_curve(learner, iterations, c.eval.log_every)
        finals.append(final_return(curve, c.eval.final_fraction))
        gammas.append(curve["gamma"][-1])
        lambdas.append(curve["lambda"][-1])
    f = np.array(finals)
    sem = f.std(ddof=1) / np.sqrt(len(f)) if len(f) > 1 else float("nan")
    print(
        f"{tag:40s} {f.mean():6.1f} ± {sem:5.1f}  per seed {np.round(f, 1).tolist()}  "
        f"gamma {np.mean(gammas):.3f} lambda {np.mean(lambdas):.3f}  ({time.time() - start:.0f}s)",
        flush=True,
    )
    return f


def main(argv):
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    for item in json.loads(argv[1]):
        first = item.get("seed", 2000)
        run_setting(
            item.get("o", {}),
            tuple(item["eta"]) if "eta" in item else None,
            seeds=list(range(first, first + item.get("n", 5))),
            iterations=item.get("iters", 600),
            tag=item.get("tag", json.dumps(item)),
        )


if __name__ == "__main__":
    main(sys.argv)
