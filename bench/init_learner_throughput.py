#!/usr/bin/env python
"""Meta-iterations per second of the initialization learners on sinusoids (K=10, meta-batch 25).

    python bench/init_learner_throughput.py [--learners=maml,fomaml] [--iterations=2000]
                                            [--jit=both|on|off] [--intra_op=N]

Each learner's compiled block (`MetaTrainStep`) is traced and warmed up on 10 meta-iterations,
then timed on `--iterations` more in one call. Prints one line per (learner, jit) pair.
`--intra_op` sets TensorFlow's intra-op thread pool (0: TensorFlow's default, one per core).
"""

import time

from l2l_tf.cli import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

from absl import app, flags  # noqa: E402

_LEARNERS = flags.DEFINE_list("learners", "maml,fomaml,metasgd,reptile,imaml", "Learners.")
_ITERATIONS = flags.DEFINE_integer("iterations", 2000, "Timed meta-iterations per learner.")
_JIT = flags.DEFINE_enum("jit", "both", ["both", "on", "off"], "XLA settings to measure.")
_INTRA_OP = flags.DEFINE_integer(
    "intra_op", 0, "TensorFlow intra-op threads (0: the default, one per core).", lower_bound=0
)


def measure(learner_name: str, jit: bool, iterations: int) -> float:
    import importlib

    from l2l_tf.experiments.init import training as init_training
    from l2l_tf.meta import MetaOptimizer
    from l2l_tf.optimizers import make_rule

    config = importlib.import_module(f"configs.{learner_name}_sinusoid").get_config()
    family = init_training.build_family(config, config.meta.meta_batch_size)
    learner = init_training.build_learner(config, family)
    rule = make_rule({"name": config.meta.optimizer, "learning_rate": config.meta.learning_rate})
    step = init_training.MetaTrainStep(
        learner,
        MetaOptimizer(rule, learner.meta_params),
        config.seed,
        lr_schedule=config.meta.lr_schedule,
        jit_compile=jit,
    )
    total = 10 + iterations
    step(0, 10, total)  # trace, compile and warm up
    start = time.time()
    step(10, iterations, total)
    return iterations / (time.time() - start)


def main(argv):
    del argv
    if _INTRA_OP.value:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(_INTRA_OP.value)
    jits = {"both": (False, True), "on": (True,), "off": (False,)}[_JIT.value]
    for name in _LEARNERS.value:
        for jit in jits:
            rate = measure(name, jit, _ITERATIONS.value)
            print(
                f"{name:8s} jit_compile={str(jit):5s} intra_op={_INTRA_OP.value} "
                f"{rate:8.1f} meta-iterations/s",
                flush=True,
            )


if __name__ == "__main__":
    app.run(main)
