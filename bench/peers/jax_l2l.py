#!/usr/bin/env python
"""Peer: the same quadratic meta-training step in JAX (jit + lax.scan).

Same setting as bench/peers/torch_l2l.py and l2l_tf's configs/quadratic.py: 128 quadratics of
dimension 10, coordinatewise 2-layer LSTM of 20 units (gates i, f, g, o; forget bias 1; output
times 0.1), unroll 20, meta-loss = sum over steps 1..20 of the mean loss, optimizee gradients
stopped, Adam (1e-3) on the meta-gradient clipped to global norm 1. One jitted function per
meta-step; the unroll is a lax.scan.

    python bench/peers/jax_l2l.py [--unrolls=N] [--check=REF.npz]
"""

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/common.py, a sibling
from common import peer_args, throughput_line  # noqa: E402


def main():
    args = peer_args(__doc__.splitlines()[0])
    if args.threads:  # must be set before jax starts its CPU client
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
            f" intra_op_parallelism_threads={args.threads}"
        )
    import jax
    import jax.numpy as jnp

    def member_losses(theta, w, y):
        return jnp.sum((jnp.einsum("bij,bj->bi", w, theta) - y) ** 2, axis=-1)

    def lstm_step(params, g, state, scale):
        x = g[:, None]
        new_state = []
        for (kernel, bias), (h, c) in zip(params["layers"], state):
            z = jnp.concatenate([x, h], axis=1) @ kernel + bias
            i, f, gg, o = jnp.split(z, 4, axis=1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(gg)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            new_state.append((h, c))
            x = h
        out = (x @ params["out_kernel"] + params["out_bias"])[:, 0] * scale
        return out, new_state

    def unroll(params, theta, state, w, y, length, scale):
        grad_fn = jax.grad(lambda th: jnp.sum(member_losses(th, w, y)))

        def body(carry, t):
            theta, state = carry
            loss = jnp.mean(member_losses(theta, w, y)) * (t > 0)
            grad = jax.lax.stop_gradient(grad_fn(theta))  # no second derivatives
            update, state = lstm_step(params, grad.reshape(-1), state, scale)
            return (theta + update.reshape(theta.shape), state), loss

        (theta, state), losses = jax.lax.scan(body, (theta, state), jnp.arange(length))
        return jnp.sum(losses) + jnp.mean(member_losses(theta, w, y)), (theta, state)

    def init_params(key, hidden=20, layers=2, inputs=1):
        out = {"layers": []}
        size = inputs
        for _ in range(layers):
            key, sub = jax.random.split(key)
            limit = math.sqrt(6.0 / (size + 5 * hidden))
            kernel = jax.random.uniform(
                sub, (size + hidden, 4 * hidden), minval=-limit, maxval=limit
            )
            bias = jnp.zeros(4 * hidden).at[hidden : 2 * hidden].set(1.0)
            out["layers"].append((kernel, bias))
            size = hidden
        key, sub = jax.random.split(key)
        limit = math.sqrt(6.0 / (hidden + 1))
        out["out_kernel"] = jax.random.uniform(sub, (hidden, 1), minval=-limit, maxval=limit)
        out["out_bias"] = jnp.zeros(1)
        return out

    def zero_state(n, hidden, layers):
        return [(jnp.zeros((n, hidden)), jnp.zeros((n, hidden))) for _ in range(layers)]

    if args.check:
        ref = np.load(args.check)
        layers = int(ref["num_layers"])
        params = {
            "layers": [
                (jnp.asarray(ref[f"kernel_{k}"]), jnp.asarray(ref[f"bias_{k}"]))
                for k in range(layers)
            ],
            "out_kernel": jnp.asarray(ref["out_kernel"]),
            "out_bias": jnp.asarray(ref["out_bias"]),
        }
        w, y, theta = (jnp.asarray(ref[k]) for k in ("w", "y", "theta0"))
        hidden = params["layers"][0][0].shape[1] // 4
        state = zero_state(theta.size, hidden, layers)
        loss_fn = lambda p: unroll(
            p,
            theta,
            state,
            w,
            y,
            int(ref["unroll_length"]),  # noqa: E731
            float(ref["output_scale"]),
        )[0]
        meta_loss, grads = jax.value_and_grad(loss_fn)(params)
        norm = math.sqrt(sum(float(jnp.sum(g**2)) for g in jax.tree_util.tree_leaves(grads)))
        print(f"CHECK impl=jax meta_loss={float(meta_loss):.8g} grad_norm={norm:.8g}")
        return

    batch, dims, length, num_steps = 128, 10, 20, 100
    lr, b1, b2, eps, clip = 1e-3, 0.9, 0.999, 1e-8, 1.0

    @jax.jit
    def meta_step(params, adam, theta, state, w, y):
        (meta_loss, (theta, state)), grads = jax.value_and_grad(
            lambda p: unroll(p, theta, state, w, y, length, 0.1), has_aux=True
        )(params)
        leaves = jax.tree_util.tree_leaves(grads)
        norm = jnp.sqrt(sum(jnp.sum(g**2) for g in leaves))
        grads = jax.tree_util.tree_map(lambda g: g * jnp.minimum(1.0, clip / norm), grads)
        count, mu, nu = adam
        count = count + 1
        mu = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, mu, grads)
        nu = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, nu, grads)
        params = jax.tree_util.tree_map(
            lambda p, m, v: p - lr * (m / (1 - b1**count)) / (jnp.sqrt(v / (1 - b2**count)) + eps),
            params,
            mu,
            nu,
        )
        return params, (count, mu, nu), theta, state, meta_loss

    key = jax.random.PRNGKey(0)
    params = init_params(key)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    adam = (0, zeros, zeros)

    def run(count, start):
        nonlocal params, adam, key
        meta_loss = None
        for i in range(start, start + count):
            if i % (num_steps // length) == 0 or i == start:
                key, k1, k2, k3 = jax.random.split(key, 4)
                w = jax.random.normal(k1, (batch, dims, dims))
                y = jax.random.normal(k2, (batch, dims))
                theta = 0.01 * jax.random.normal(k3, (batch, dims))
                state = zero_state(batch * dims, 20, 2)
            params, adam, theta, state, meta_loss = meta_step(params, adam, theta, state, w, y)
        if meta_loss is not None:  # JAX dispatches asynchronously: wait before reading a clock
            meta_loss.block_until_ready()

    t0 = time.perf_counter()
    run(1, 0)
    compile_s = time.perf_counter() - t0
    run(max(args.warmup - 1, 0), 1)
    t0 = time.perf_counter()
    run(args.unrolls, args.warmup)
    elapsed = time.perf_counter() - t0
    throughput_line(
        "quadratic",
        "jax",
        "jit",
        batch * dims,
        length,
        args.threads,
        args.unrolls,
        elapsed,
        compile_s,
    )


if __name__ == "__main__":
    main()
