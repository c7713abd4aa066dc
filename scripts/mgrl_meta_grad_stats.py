#!/usr/bin/env python
"""Statistics of the raw MGRL meta-gradient d J' / d logit(eta) during CartPole runs.

    python scripts/mgrl_meta_grad_stats.py 2000 2001

Runs configs/mgrl_cartpole.py (meta-learned, 600 iterations) on each tuning seed given and
prints, per phase of the run, the mean, standard deviation, mean/std and fraction of positive
values of each component (gamma, lambda) of the meta-gradient. The gradient is recovered from
the meta-Adam's first moment, g_t = (m_t - beta1 m_{t-1}) / (1 - beta1), so the run is exactly
the one scripts/mgrl_tune.py scores. A negative mean means the meta-gradient raises that component.
"""

import sys

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs.mgrl_cartpole import get_config  # noqa: E402
from l2l_tf.experiments.mgrl.training import build_learner  # noqa: E402


def main(seeds):
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    c = get_config()
    learner = build_learner(c, seed=seeds[0])
    beta1 = c.meta.beta1
    for seed in seeds:
        learner.reset(seed, (c.meta.init_gamma, c.meta.init_lambda))
        grads, previous = [], np.zeros(2)
        for _ in range(c.eval.num_meta_iterations):
            learner.step()
            m = learner.meta_optimizer.slots[1].numpy().copy()  # Adam's first moment
            grads.append((m - beta1 * previous) / (1 - beta1))
            previous = m
        grads = np.array(grads)
        for a, b in ((0, 100), (100, 300), (300, len(grads))):
            g = grads[a:b]
            print(
                f"seed {seed} iterations {a:3d}-{b:3d}  (gamma, lambda): "
                f"mean {np.array2string(g.mean(0), precision=5)}  "
                f"std {np.array2string(g.std(0), precision=5)}  "
                f"mean/std {np.array2string(g.mean(0) / g.std(0), precision=3)}  "
                f"fraction > 0 {np.array2string((g > 0).mean(0), precision=2)}",
                flush=True,
            )
        print(f"seed {seed} final eta {np.array2string(learner.eta().numpy(), precision=4)}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [2000, 2001])
