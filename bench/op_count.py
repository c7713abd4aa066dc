#!/usr/bin/env python
"""Counts the ops of l2l_tf's meta-step per optimizee step: the nodes of the traced graph's
`tf.while_loop` bodies, forward and backward.

    python bench/op_count.py [--problem=quadratic|mnist] [--top=12]

Traces `TruncatedBPTT.meta_step` (bench/meta_train.py's setting) without running it and, for the
forward while body and its gradient body, prints one BENCH line: all nodes, the "real" ones
(not Const, Identity or NoOp, which cost next to nothing once Grappler has run) and the stack
pushes and pops with which the forward loop hands the backward one what it needs. `--top` also
lists the commonest op types. Op counts are per optimizee step: each body runs once per step.

    python bench/op_count.py --op_costs [--coords=1280] [--threads=1]

instead times, one by one, the op kinds of one LSTM layer's step on [coords, 20] tensors
(200 of each in a `tf.while_loop`, CPU time per op), to show what a step's time is made of.
"""

import argparse
import collections
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py, bench/meta_train.py

from l2l_tf.cli import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import tensorflow as tf  # noqa: E402
from common import bench_line  # noqa: E402
from meta_train import build, episode  # noqa: E402

FREE = ("Const", "Identity", "NoOp")


def while_bodies(graph_def):
    """(forward body, its gradient body) FunctionDefs of the meta-step's unroll loop."""
    forward = backward = None
    for f in graph_def.library.function:
        name = f.signature.name
        if name.startswith("while_body") and "_grad" in name:
            backward = f
        elif name.startswith("while_body") and name.endswith("_rewritten"):
            forward = f  # the body with the stack pushes that autodiff added
    return forward, backward


def op_costs(coords: int, threads: int) -> None:
    """One BENCH line per op kind of an LSTM layer step: its CPU microseconds per call."""
    import time

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    rand = tf.random.stateless_normal
    xh0, xh1 = rand([coords, 21], [0, 1]), rand([coords, 40], [0, 2])
    k0, k1 = rand([21, 80], [0, 3]), rand([40, 80], [0, 4])
    z, z80 = rand([coords, 20], [0, 5]), rand([coords, 80], [0, 6])
    cases = {  # name: (one op applied to the loop variable x, x's initial value)
        "empty_loop_iteration": (lambda x: x, tf.zeros([])),
        "matmul_21x80": (lambda x: x + tf.matmul(xh0, k0)[:1, :1], tf.zeros([1, 1])),
        "matmul_40x80": (lambda x: x + tf.matmul(xh1, k1)[:1, :1], tf.zeros([1, 1])),
        "matmul_grad_40x80": (
            lambda x: x + tf.matmul(xh1, z80, transpose_a=True)[:1, :1],
            tf.zeros([1, 1]),
        ),
        "sigmoid_20": (tf.sigmoid, z),
        "tanh_20": (tf.tanh, z),
        "mul_20": (lambda x: x * z, z),
        "split4_concat_80": (lambda x: tf.concat(tf.split(x, 4, axis=1), 1), z80),
        # The gate split of a [coords, 80] tensor (columns, as the LSTM lays its gates out)
        # and of its transpose (rows, which TensorFlow splits without copying), each on top
        # of the same add.
        "add_80": (lambda x: x + x[:, :1], z80),
        "split4_columns_add_80": (lambda x: x + tf.add_n(tf.split(x, 4, axis=1))[:, :1], z80),
        "add_80_transposed": (lambda x: x + x[:1, :], tf.transpose(z80)),
        "split4_rows_add_80_transposed": (
            lambda x: x + tf.add_n(tf.split(x, 4, axis=0))[:1, :],
            tf.transpose(z80),
        ),
    }
    for name, (fn, x0) in cases.items():

        @tf.function
        def loop(x, fn=fn):
            for _ in tf.range(200):
                x = fn(x)
            return x

        loop(x0)
        start = time.process_time()
        for _ in range(3):
            loop(x0).numpy()
        us = (time.process_time() - start) / 600 * 1e6
        bench_line(bench="op_cost", op=name, coords=coords, threads=threads or "all", cpu_us=us)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="quadratic")
    parser.add_argument("--top", type=int, default=0, help="Also list the N commonest ops.")
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--dims", type=int, default=None)
    parser.add_argument("--op_costs", action="store_true", help="Time op kinds instead.")
    parser.add_argument("--coords", type=int, default=1280)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.op_costs:
        return op_costs(args.coords, args.threads)
    config = importlib.import_module(f"configs.{args.problem}").get_config()
    if args.batch_size:
        config.problem.batch_size = args.batch_size
    if args.dims:
        config.problem.dims = args.dims
    family, rule, learner = build(config, False, False, False)
    task, batch_seed, params, state = episode(family, rule, config, 0)
    concrete = learner.meta_step.get_concrete_function(
        params, state, task, batch_seed, tf.constant(0)
    )
    forward, backward = while_bodies(concrete.graph.as_graph_def())
    if forward is None or backward is None:
        sys.exit("error: no while loop body and gradient body found in the meta-step's graph")
    for which, body in (("forward", forward), ("backward", backward)):
        ops = collections.Counter(node.op for node in body.node_def)
        bench_line(
            bench="op_count",
            problem=args.problem,
            body=which,
            nodes=sum(ops.values()),
            real_ops=sum(n for op, n in ops.items() if op not in FREE),
            stack_pushes=ops["TensorListPushBack"],
            stack_pops=ops["TensorListPopBack"],
        )
        for op, n in [(op, n) for op, n in ops.most_common() if op not in FREE][: args.top]:
            print(f"    {op} {n}")


if __name__ == "__main__":
    main()
