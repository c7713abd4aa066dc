#!/usr/bin/env python
"""The generalist optimizer's costs: its Keras step against Adam's, its meta-step per estimator
and per rule size.

    python bench/generalist.py keras  [--steps=200 --hidden=128 --threads=1]
    python bench/generalist.py meta   [--iterations=5 --threads=1]

`keras` times `model.train_on_batch` of a 784-HIDDEN-10 Keras MLP on batches of 128 (random
data of MNIST's shape) with `LearnedOptimizer.pretrained("generalist")` (an untrained MLPRule of
the same size when nothing is shipped) and with `keras.optimizers.Adam`, alternating blocks, and
prints the median ms per step and the ratio (target <= 3x). `meta` times one meta-step (a
50-step truncation, 4 members) of truncated BPTT, antithetic ES and PES (4 pairs) on an MLP
task of the training distribution, and truncated BPTT with rule hidden sizes 16, 32 and 64:
the figures the choice of estimator and of rule network rested on. Every line is a `BENCH`
line (bench/common.py).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py

from common import bench_line  # noqa: E402


def keras_bench(args) -> None:
    import keras
    import numpy as np

    from l2l_tf import pretrained
    from l2l_tf.keras import LearnedOptimizer
    from l2l_tf.optimizers import make_rule

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(128, 784)).astype("float32")
    y = rng.integers(0, 10, size=128).astype("int32")
    if "generalist" in pretrained.names() and not args.rule_hidden:
        learned, source = LearnedOptimizer.pretrained("generalist"), "shipped"
    else:
        hidden = args.rule_hidden or 32
        config = {"name": "mlp_rule", "hidden_size": hidden, "num_layers": args.rule_layers}
        learned = LearnedOptimizer(make_rule(config))
        source = f"untrained_{args.rule_layers}x{hidden}"
    times = {}
    models = {}
    for name, optimizer in (("learned", learned), ("adam", keras.optimizers.Adam(1e-3))):
        model = keras.Sequential(
            [
                keras.Input((784,)),
                keras.layers.Dense(args.hidden, activation="relu"),
                keras.layers.Dense(10),
            ]
        )
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.train_on_batch(x, y)  # builds and compiles
        models[name], times[name] = model, []
    for _ in range(args.blocks):
        for name, model in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)
    learned_ms, adam_ms = (statistics.median(times[k]) for k in ("learned", "adam"))
    params = sum(int(np.prod(v.shape)) for v in models["adam"].trainable_variables)
    bench_line(
        bench="keras_step",
        rule=source,
        params=params,
        threads=args.threads or "all",
        learned_ms=learned_ms,
        adam_ms=adam_ms,
        ratio=learned_ms / adam_ms,
    )


def meta_bench(args) -> None:
    import tensorflow as tf

    from configs import generalist
    from l2l_tf import seeding
    from l2l_tf.experiments.l2l.training import build_learned_rule, make_estimator
    from l2l_tf.meta import MetaOptimizer
    from l2l_tf.optimizers import make_rule
    from l2l_tf.problems.distribution import build_family

    family = build_family(
        "mlp",
        {
            "dataset": "mnist14",
            "hidden_sizes": (64, 64),
            "activation": ("relu",),
            "batch_size": (128,),
            "num_members": 4,
        },
    )
    variants = [("tbptt", 32), ("es", 32), ("pes", 32), ("tbptt", 16), ("tbptt", 64)]
    for estimator, hidden in variants:
        config = generalist.get_config()
        config.meta.estimator, config.rule.hidden_size = estimator, hidden
        rule = build_learned_rule(config)
        meta_rule = make_rule({"name": "adam", "learning_rate": 1e-4})
        learner = make_estimator(
            config, family, rule, MetaOptimizer(meta_rule, rule.trainable_variables)
        )
        task_seed, init_seed, batch_seed = seeding.episode_seeds(tf.constant([0, 1]))
        task = family.sample(task_seed)
        params = family.init_params(task, init_seed)
        carry = learner.start(params, rule.init(params))
        start = time.perf_counter()
        carry, m = learner.advance(carry, task, batch_seed, tf.constant(0))
        float(m["meta_loss"])
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(args.iterations):
            carry, m = learner.advance(carry, task, batch_seed, tf.constant(50 * (i + 1)))
            float(m["meta_loss"])
        elapsed = (time.perf_counter() - start) / args.iterations
        coords = sum(int(p.shape.num_elements()) for p in params)
        bench_line(
            bench="generalist_meta_step",
            estimator=estimator,
            rule_hidden=hidden,
            coords=coords,
            unroll_length=config.meta.unroll_length,
            threads=args.threads or "all",
            seconds_per_meta_step=elapsed,
            compile_s=compile_s,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["keras", "meta"])
    parser.add_argument("--steps", type=int, default=100, help="Keras steps per timed block.")
    parser.add_argument("--blocks", type=int, default=5, help="Alternated blocks per optimizer.")
    parser.add_argument("--hidden", type=int, default=128, help="Hidden units of the Keras MLP.")
    parser.add_argument(
        "--rule_hidden", type=int, default=0,
        help="keras: time an untrained MLPRule of this hidden size instead of the shipped one.",
    )
    parser.add_argument("--rule_layers", type=int, default=2, help="... and this many layers.")
    parser.add_argument("--iterations", type=int, default=5, help="Timed meta-steps per variant.")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (0: all).")
    args = parser.parse_args()
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    (keras_bench if args.what == "keras" else meta_bench)(args)


if __name__ == "__main__":
    main()
