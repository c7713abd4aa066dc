#!/usr/bin/env python
"""Times rewrites of the coordinatewise LSTM's step against the library's, in isolation.

    python bench/lstm_variants.py [--coords=1280] [--reps=5] [--variants=reference,...]

Each variant runs the quadratic meta-step's rule part: a 20-step `tf.while_loop` of the
2-layer, 20-unit LSTM over `--coords` coordinates (input: one feature per coordinate, as with
`rule.preprocess=none`), the sum of squared iterates as the loss, and its gradient with respect
to the LSTM weights (second derivatives dropped, as in meta-training). The variants:

- `reference`: the library's `CoordinatewiseLSTM.step` itself: one product of [x, h] with
  the [k + 20, 80] kernel, a split into the four gates along columns;
- `transposed`: the state laid out as [20, coords], so that the gate split is along rows (no
  copy) and the product is kernel^T [x; h];
- `block_cell`: TensorFlow's fused `LSTMBlockCell` kernel (one op per layer and step) with
  `LSTMBlockCellGrad` in a `tf.custom_gradient`, the kernel's columns permuted to its gate order;
- `split_kernel`: no concatenation: x W_x + h W_h;
- `no_nonlinearity`: sigmoids and tanhs replaced by scalings (not the LSTM, a lower bound: how
  much of the time the nonlinearities take).

All but the last must agree with `reference` on the loss and the gradients to float tolerance
(checked first, printed as CHECK lines; the script stops otherwise). Then the variants run
alternately, `--reps` blocks of 20 unrolls each, one intra-op thread, and print one line each:

    BENCH bench=lstm_variant variant=... coords=... ms_per_unroll=... runs=...
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py

from l2l_tf.cli import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import bench_line, usage_error  # noqa: E402

from l2l_tf.optimizers.lstm import CoordinatewiseLSTM, LSTMState  # noqa: E402

HIDDEN, STEPS = 20, 20


def transposed_cell(x, c, h, w, b):  # x [k, n]; c, h [20, n]
    z = tf.matmul(w, tf.concat([x, h], axis=0), transpose_a=True) + b[:, None]
    i, f, g, o = tf.split(z, 4, axis=0)
    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    return c, tf.sigmoid(o) * tf.tanh(c)


def split_kernel_cell(x, c, h, w, b):
    k = x.shape[1]
    z = tf.matmul(x, w[:k]) + tf.matmul(h, w[k:]) + b
    i, f, g, o = tf.split(z, 4, axis=1)
    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    return c, tf.sigmoid(o) * tf.tanh(c)


def no_nonlinearity_cell(x, c, h, w, b):
    z = tf.matmul(tf.concat([x, h], axis=1), w) + b
    i, f, g, o = tf.split(z, 4, axis=1)
    c = (0.5 * f) * c + (0.5 * i) * (0.3 * g)
    return c, (0.5 * o) * (0.3 * c)


def _to_block_order(t):
    """Gate columns i, f, g, o (the library's) -> i, g, f, o (LSTMBlockCell's i, ci, f, o)."""
    i, f, g, o = tf.split(t, 4, axis=-1)
    return tf.concat([i, g, f, o], axis=-1)


@tf.custom_gradient
def _block_cell(x, c, h, w, b):
    peep = tf.zeros([HIDDEN], x.dtype)  # no peephole connections
    kw = dict(wci=peep, wcf=peep, wco=peep, use_peephole=False)
    i, cs, f, o, ci, co, h_new = tf.raw_ops.LSTMBlockCell(
        x=x, cs_prev=c, h_prev=h, w=w, b=b, forget_bias=0.0, cell_clip=-1.0, **kw
    )

    def grad(d_cs, d_h):
        d_c, d_z, _, _, _ = tf.raw_ops.LSTMBlockCellGrad(
            x=x, cs_prev=c, h_prev=h, w=w, b=b, i=i, cs=cs, f=f, o=o, ci=ci, co=co,
            cs_grad=d_cs, h_grad=d_h, **kw,
        )  # fmt: skip
        d_xh = tf.matmul(d_z, w, transpose_b=True)
        d_w = tf.matmul(tf.concat([x, h], axis=1), d_z, transpose_a=True)
        k = x.shape[1]
        return d_xh[:, :k], d_c, d_xh[:, k:], d_w, tf.reduce_sum(d_z, axis=0)

    return (cs, h_new), grad


def block_cell(x, c, h, w, b):
    return _block_cell(x, c, h, _to_block_order(w), _to_block_order(b))


VARIANTS = {
    "reference": None,  # the library's CoordinatewiseLSTM.step itself
    "transposed": transposed_cell,
    "block_cell": block_cell,
    "split_kernel": split_kernel_cell,
    "no_nonlinearity": no_nonlinearity_cell,
}


def make_meta_step(name, rule):
    """A tf.function: x0 [n] -> (loss, gradients of the loss w.r.t. the rule's weights); every
    variant uses `rule`'s weights (a CoordinatewiseLSTM with the quadratic config's shape)."""
    cell, transposed = VARIANTS[name], name == "transposed"
    kernels, biases = rule.kernels, rule.biases
    variables = list(rule.trainable_variables)

    @tf.function
    def meta_step(x0):
        n = x0.shape[0]
        with tf.GradientTape() as tape:

            def body(t, x, h0, c0, h1, c1, loss):
                grad = tf.stop_gradient(x)
                if cell is None:
                    state = LSTMState(h=(h0, h1), c=(c0, c1))
                    (update,), state = rule.step([grad], state, [grad])
                    (h0, h1), (c0, c1) = state.h, state.c
                else:
                    inputs = grad[None, :] if transposed else grad[:, None]
                    c0, h0 = cell(inputs, c0, h0, kernels[0], biases[0])
                    c1, h1 = cell(h0, c1, h1, kernels[1], biases[1])
                    if transposed:
                        out = tf.matmul(rule.out_kernel, h1, transpose_a=True)[0]
                    else:
                        out = tf.matmul(h1, rule.out_kernel)[:, 0]
                    update = (out + rule.out_bias) * rule.output_scale
                x = 0.9 * tf.stop_gradient(x) + update
                return t + 1, x, h0, c0, h1, c1, loss + tf.reduce_sum(x * x)

            zeros = tf.zeros([HIDDEN, n] if transposed else [n, HIDDEN])
            state = (0, x0, zeros, zeros, zeros, zeros, tf.constant(0.0))
            loss = tf.while_loop(lambda t, *_: t < STEPS, body, state)[-1]
        return loss, tape.gradient(loss, variables)

    return meta_step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--coords", type=int, default=1280, help="Coordinates (LSTM batch).")
    parser.add_argument("--reps", type=int, default=5, help="Alternated blocks per variant.")
    parser.add_argument("--unrolls", type=int, default=20, help="Unrolls per timed block.")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="Comma-separated.")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown or "reference" not in names:
        usage_error(f"--variants must include reference and name only {sorted(VARIANTS)}")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    rule = CoordinatewiseLSTM(hidden_size=HIDDEN, num_layers=2, preprocess="none")
    x0 = tf.constant(np.random.default_rng(1).normal(size=args.coords).astype(np.float32))
    steps = {name: make_meta_step(name, rule) for name in names}
    loss_ref, grads_ref = steps["reference"](x0)
    for name in names:
        loss, grads = steps[name](x0)
        err = max(
            float(tf.reduce_max(tf.abs(a - b)) / tf.reduce_max(tf.abs(b)))
            for a, b in zip(grads + [loss], grads_ref + [loss_ref])
        )
        print(f"CHECK variant={name} loss={float(loss):.8g} max_rel_err={err:.2g}", flush=True)
        if name != "no_nonlinearity" and not err < 1e-5:
            print(f"error: {name} disagrees with reference (relative error {err:.2g})")
            sys.exit(1)
    times = {name: [] for name in names}
    for _ in range(args.reps):
        for name in names:
            start = time.perf_counter()
            for _ in range(args.unrolls):
                steps[name](x0)[0].numpy()
            times[name].append(1e3 * (time.perf_counter() - start) / args.unrolls)
    for name in names:
        runs = "/".join(f"{t:.3g}" for t in times[name])
        bench_line(
            bench="lstm_variant", variant=name, coords=args.coords,
            ms_per_unroll=float(np.median(times[name])), runs=runs,
        )  # fmt: skip


if __name__ == "__main__":
    main()
