#!/usr/bin/env python
"""Meta-training throughput of l2l_tf in the paper's setting.

    python bench/meta_train.py --problem=quadratic [--unrolls=N] [--jit=on|off] [--eager]
        [--static=on|off|config] [--recompute=on|off] [--threads=-1|0|N] [--chunks=N]

Builds the task family, the LSTM rule and the truncated-BPTT learner from configs/PROBLEM.py
(quadratic: 128 functions x 10 dims, 2-layer 20-unit LSTM, unroll 20, Adam), runs `--warmup`
meta-steps (the first one traces and compiles: that time is `compile_s`), then times
`--unrolls` meta-steps over successive episodes and prints one line:

    BENCH problem=... mode=... unrolls_per_s=... optimizee_steps_per_s=... compile_s=...
        peak_rss_mb=...

`--eager` runs the same code with tf.config.run_functions_eagerly(True), the naive baseline.
`--dump=FILE.npz` instead writes one task, the initial LSTM weights and the resulting
meta-loss and meta-gradient norm of one unroll, for checking the peers (bench/compare.sh).
"""

import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from l2l_tf.cli import apply_threads, quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import importlib  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402
from common import throughput_line  # noqa: E402

from l2l_tf import seeding  # noqa: E402
from l2l_tf.data.mnist import load_mnist  # noqa: E402
from l2l_tf.meta import MetaOptimizer, TruncatedBPTT  # noqa: E402
from l2l_tf.optimizers import make_rule  # noqa: E402
from l2l_tf.problems import make_task_family  # noqa: E402

_PROBLEM = flags.DEFINE_string("problem", "quadratic", "Config name: configs/PROBLEM.py.")
_UNROLLS = flags.DEFINE_integer("unrolls", 100, "Timed meta-steps (unrolls).")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed meta-steps first (the first compiles).")
_JIT = flags.DEFINE_enum("jit", "off", ["on", "off"], "XLA-compile the meta-step.")
_STATIC = flags.DEFINE_enum(
    "static", "config", ["on", "off", "config"],
    "Unroll the steps in the graph (config: the config's meta.static_unroll).",
)  # fmt: skip
_RECOMPUTE = flags.DEFINE_enum("recompute", "off", ["on", "off"], "Rematerialize segments.")
_EAGER = flags.DEFINE_bool("eager", False, "Run eagerly (tf.config.run_functions_eagerly).")
_THREADS = flags.DEFINE_integer(
    "threads",
    -1,
    "Intra-op threads: -1 takes the config's threads section, 0 TensorFlow's default (all cores).",
)
_UNROLL_LENGTH = flags.DEFINE_integer("unroll_length", None, "Override meta.unroll_length.")
_DIMS = flags.DEFINE_integer("dims", None, "Override problem.dims (quadratic).")
_BATCH = flags.DEFINE_integer("batch_size", None, "Override problem.batch_size.")
_CHUNKS = flags.DEFINE_integer(
    "chunks",
    None,
    "Override rule.parallel_chunks (coordinate chunks run as parallel op chains).",
    lower_bound=1,
)
_DUMP = flags.DEFINE_string("dump", None, "Write reference inputs and outputs to this .npz.")

# MNIST training images written with --dump for the peers to draw their minibatches from (the
# cost of a step does not depend on how many images there are to draw from).
PEER_IMAGES = 10000


def build(config, jit, static, recompute):
    family = make_task_family(config.problem, config.get("data"))
    rule = make_rule(config.rule, seed=config.seed)
    meta_rule = make_rule(
        {"name": config.meta.optimizer, "learning_rate": config.meta.learning_rate}
    )
    learner = TruncatedBPTT(
        family,
        rule,
        MetaOptimizer(meta_rule, rule.trainable_variables),
        config.meta.unroll_length,
        clip_grad_norm=config.meta.clip_grad_norm,
        jit_compile=jit,
        static_unroll=static,
        recompute=recompute,
    )
    return family, rule, learner


def episode(family, rule, config, index):
    seeds = seeding.episode_seeds(seeding.task_seed(config.seed, seeding.TRAIN, index))
    task = family.sample(seeds[0])
    params = family.init_params(task, seeds[1])
    return task, seeds[2], params, rule.init(params)


def dump(path, config):
    family, rule, learner = build(config, False, False, False)
    task, batch_seed, params, state = episode(family, rule, config, 0)
    meta_loss, grads, _, _ = learner.meta_gradient(params, state, task, batch_seed, tf.constant(0))
    arrays = {
        "problem": config.problem.name,
        "meta_loss": float(meta_loss),
        "grad_norm": float(tf.linalg.global_norm(grads)),
        "unroll_length": config.meta.unroll_length,
        "output_scale": config.rule.output_scale,
        "num_layers": config.rule.num_layers,
        "preprocess": config.rule.preprocess,
        "num_params": len(params),
    }
    for k, p in enumerate(params):
        arrays[f"theta0_{k}"] = p.numpy()
    if config.problem.name == "quadratic":
        arrays["w"], arrays["y"] = task.w.numpy(), task.y.numpy()
    else:  # mnist: the unroll's minibatches, and training images for the peers' own batches
        batches = [
            family.batch(task, seeding.fold_in(batch_seed, t))
            for t in range(config.meta.unroll_length + 1)
        ]
        arrays["images"] = np.stack([b[0].numpy() for b in batches])
        arrays["labels"] = np.stack([b[1].numpy() for b in batches])
        data = load_mnist(config.data.path, download=config.data.download, log=lambda *a: None)
        arrays["x_train"] = data.x_train.reshape(len(data.x_train), -1)[:PEER_IMAGES]
        arrays["y_train"] = data.y_train.astype(np.int32)[:PEER_IMAGES]
    for k, (kernel, bias) in enumerate(zip(rule.kernels, rule.biases)):
        arrays[f"kernel_{k}"] = kernel.numpy()
        arrays[f"bias_{k}"] = bias.numpy()
    arrays["out_kernel"] = rule.out_kernel.numpy()
    arrays["out_bias"] = rule.out_bias.numpy()
    np.savez(path, **arrays)
    print(f"CHECK impl=l2l_tf meta_loss={float(meta_loss):.8g} grad_norm={arrays['grad_norm']:.8g}")


def main(argv):
    del argv
    config = importlib.import_module(f"configs.{_PROBLEM.value}").get_config()
    if _THREADS.value >= 0:
        config.threads.intra_op = _THREADS.value
    apply_threads(config)
    if _UNROLL_LENGTH.value:
        config.meta.unroll_length = config.meta.num_steps = _UNROLL_LENGTH.value
    if _DIMS.value:
        config.problem.dims = _DIMS.value
    if _BATCH.value:
        config.problem.batch_size = _BATCH.value
    if _CHUNKS.value is not None:
        config.rule.parallel_chunks = _CHUNKS.value
    if _DUMP.value:
        return dump(_DUMP.value, config)
    tf.config.run_functions_eagerly(_EAGER.value)
    jit, recompute = _JIT.value == "on", _RECOMPUTE.value == "on"
    static = config.meta.static_unroll if _STATIC.value == "config" else _STATIC.value == "on"
    family, rule, learner = build(config, jit, static, recompute)
    num_unrolls = config.meta.num_steps // config.meta.unroll_length

    def run(count, start):
        if count <= 0:
            return None
        for i in range(start, start + count):
            index, unroll = divmod(i, num_unrolls)
            if unroll == 0 or i == start:
                task, batch_seed, params, state = episode(family, rule, config, index)
            step0 = tf.constant(unroll * config.meta.unroll_length)
            params, state, metrics = learner.meta_step(params, state, task, batch_seed, step0)
        return float(metrics["meta_loss"])  # waits for the last step

    t0 = time.perf_counter()
    run(1, 0)
    compile_s = time.perf_counter() - t0
    run(max(_WARMUP.value - 1, 0), 1)
    t0 = time.perf_counter()
    run(_UNROLLS.value, _WARMUP.value)
    elapsed = time.perf_counter() - t0
    mode = "eager" if _EAGER.value else ("xla" if jit else "graph")
    if static:
        mode += "+static"
    if recompute:
        mode += "+recompute"
    coords = sum(int(np.prod(p.shape)) for p in episode(family, rule, config, 0)[2])
    throughput_line(
        _PROBLEM.value,
        "l2l_tf",
        mode,
        coords,
        config.meta.unroll_length,
        config.threads.intra_op,
        _UNROLLS.value,
        elapsed,
        compile_s,
    )


if __name__ == "__main__":
    os.chdir(ROOT)
    app.run(main)
