"""Runs the tiny meta-training of the distributed tests in a fresh process.

    python tests/distributed_run.py MODE WORKDIR [NUM_CPU_DEVICES]

MODE is a value of `config.distribute`. Logical CPU devices must be configured before
TensorFlow initializes its devices, which is why the tests run this in a subprocess; the
multi-worker test starts two of these with TF_CONFIG set. The last line printed is JSON.
For `mirrored`, it also compares meta-steps under MirroredStrategy and on one device on a
family with two parameter tensors, where a replica's coordinates are not one contiguous block
of the rule state.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from conftest import tiny_quadratic_config  # noqa: E402


def distributed_config(mode: str):
    """The tiny quadratic config, shortened further: the subprocesses start slowly enough."""
    config = tiny_quadratic_config()
    config.distribute = mode
    config.train.num_meta_iterations = 6
    config.train.log_every = config.train.eval_every = 3
    config.train.checkpoint_every = 2  # iteration 4 is in the middle of an episode (3 unrolls)
    config.train.num_val_tasks = 4
    return config


def two_param_max_diff(strategy) -> float:
    """Max |difference| of meta-params, params and rule state after 3 meta-steps."""
    from l2l_tf import seeding
    from l2l_tf.meta import MetaOptimizer, TruncatedBPTT, distributed
    from l2l_tf.optimizers import Adam, CoordinatewiseLSTM
    from l2l_tf.problems import Quadratic

    class SplitQuadratic(Quadratic):
        """A quadratic whose theta is stored as two tensors, [B, 2] and [B, dims - 2]."""

        def init_params(self, task, seed):
            (theta,) = super().init_params(task, seed)
            return [theta[:, :2], theta[:, 2:]]

        def member_losses(self, params, task, batch):
            return super().member_losses([tf.concat(params, axis=1)], task, batch)

    family = SplitQuadratic(dims=3, batch_size=4, init_scale=0.5)
    runs = []
    for strat in (None, strategy):
        with distributed.scope(strat):
            rule = CoordinatewiseLSTM(hidden_size=3, preprocess="log_sign")
            meta_optimizer = MetaOptimizer(Adam(0.01), rule.trainable_variables)
        learner = TruncatedBPTT(family, rule, meta_optimizer, unroll_length=2)
        if strat is not None:
            learner = distributed.DistributedTBPTT(strat, learner)
        task_seed, init_seed, batch_seed = seeding.episode_seeds(seeding.task_seed(0, 0, 0))
        task = family.sample(task_seed)
        params = family.init_params(task, init_seed)
        state = rule.init(params)
        for k in range(3):
            params, state, _ = learner.meta_step(params, state, task, batch_seed, 2 * k)
        runs.append([*rule.variables, *params, *tf.nest.flatten(state)])
    return max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(*runs))


def main(mode: str, workdir: str, num_cpus: int = 1) -> None:
    if num_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_cpus)]
        )
    from l2l_tf.experiments.l2l import training as l2l_training
    from l2l_tf.meta import distributed

    summary = l2l_training.train(distributed_config(mode), workdir, log=lambda line: None)
    result = {"iterations": summary["iterations"]}
    if mode == "mirrored":  # (a second strategy after a multi-worker one crashes TF 2.21)
        result["two_param_max_diff"] = two_param_max_diff(distributed.make_strategy("mirrored"))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
