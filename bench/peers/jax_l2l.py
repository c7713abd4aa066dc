#!/usr/bin/env python
"""Peer: the same meta-training step in JAX, written to be fast (jit + lax.scan + remat).

Same setting as bench/peers/torch_l2l.py and l2l_tf's configs: a coordinatewise 2-layer LSTM
of 20 units (gates i, f, g, o from one product of [input, h]; forget bias 1; output times 0.1),
unroll 20, meta-loss = sum over steps 1..20 of the mean loss (plus the loss after the last
step), optimizee gradients stopped, Adam (1e-3) on the meta-gradient clipped to global norm 1.

  --problem=quadratic  128 quadratics ||W theta - y||^2 of dimension 10, raw gradient input.
  --problem=mnist      configs/mnist.py's step: a 784-20-10 sigmoid MLP, softmax cross-entropy
                       on a fresh minibatch of 128 images at every step (drawn inside the
                       compiled step), log/sign gradient features (p = 10), 15,910 coordinates.

What makes it fast (each measured on the 2-core CPU, docs/benchmarks.md):
  - the whole meta-step (unroll, meta-gradient, clipping, Adam) is one `jax.jit` function and
    the unroll one `lax.scan`;
  - `--remat` (default `dots`): the scan body is `jax.checkpoint`ed, so the backward pass
    recomputes each step's intermediates instead of XLA storing them all (without it, the time
    goes to page faults on the stored residuals); `dots` keeps the matrix products' outputs and
    recomputes the elementwise rest, `full` recomputes everything;
  - the carried buffers (LSTM weights, Adam moments, theta, LSTM state) are donated to the
    jitted step, so XLA updates them in place;
  - `--scan_unroll` steps per scan iteration (default 1; larger values are offered for
    measuring).

    python bench/peers/jax_l2l.py [--problem=quadratic|mnist] [--unrolls=N] [--check=REF.npz]
        [--remat=dots|full|none] [--scan_unroll=K] [--data=REF.npz]
"""

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/common.py, a sibling
from common import peer_args, throughput_line, usage_error  # noqa: E402


def extra_flags(parser):
    parser.add_argument("--remat", choices=["dots", "full", "none"], default="dots")
    parser.add_argument("--scan_unroll", type=int, default=1)


def main():
    args = peer_args(__doc__.splitlines()[0], extra_flags)
    if args.threads:  # must be set before jax starts its CPU client
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
            f" intra_op_parallelism_threads={args.threads}"
        )
    import jax
    import jax.numpy as jnp

    length, hidden, num_layers, scale = 20, 20, 2, 0.1
    ref = np.load(args.check) if args.check else None
    data_ref = np.load(args.data) if args.data else ref
    problem = str(ref["problem"]) if ref is not None else args.problem

    # ---- the optimizee: member losses of a list of parameters, and one step's minibatch ----
    if problem == "quadratic":
        batch_size, dims = 128, 10
        num_inputs = 1

        def member_losses(params, task, batch):
            w, y = task
            return jnp.sum((jnp.einsum("bij,bj->bi", w, params[0]) - y) ** 2, axis=-1)

        def features(g):
            return g[:, None]

        def new_episode(key):
            k1, k2, k3 = jax.random.split(key, 3)
            task = (
                jax.random.normal(k1, (batch_size, dims, dims)),
                jax.random.normal(k2, (batch_size, dims)),
            )
            return task, [0.01 * jax.random.normal(k3, (batch_size, dims))]

        def sample_batches(task, key):
            return jnp.zeros(length + 1)  # the quadratics take no data

    elif problem == "mnist":
        if data_ref is None:
            usage_error("--problem=mnist needs --data=REF.npz (bench/meta_train.py --dump)")
        batch_size, sizes, p = 128, (784, 20, 10), 10.0
        num_inputs = 2
        images = jnp.asarray(data_ref["x_train"])  # uint8, scaled on use as l2l_tf does
        labels = jnp.asarray(data_ref["y_train"])

        def member_losses(params, task, batch):
            x, y = batch  # [members, batch, 784], [members, batch]
            w1, b1, w2, b2 = params
            h = jax.nn.sigmoid(jnp.einsum("mni,mio->mno", x, w1) + b1[:, None, :])
            logits = jnp.einsum("mni,mio->mno", h, w2) + b2[:, None, :]
            logp = jax.nn.log_softmax(logits)
            xent = -jnp.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
            return jnp.mean(xent, axis=-1)

        def features(g):
            threshold = math.exp(-p)
            big = jnp.abs(g) >= threshold
            safe = jnp.maximum(jnp.abs(g), threshold)
            first = jnp.where(big, jnp.log(safe) / p, -1.0)
            second = jnp.where(big, jnp.sign(g), math.exp(p) * g)
            return jnp.stack([first, second], axis=-1)

        def new_episode(key):
            keys = jax.random.split(key, 4)
            params = []
            for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                params.append(0.01 * jax.random.normal(keys[2 * k], (1, fan_in, fan_out)))
                params.append(0.01 * jax.random.normal(keys[2 * k + 1], (1, fan_out)))
            return (), params

        def sample_batches(task, key):
            idx = jax.random.randint(key, (length + 1, 1, batch_size), 0, images.shape[0])
            return images[idx].astype(jnp.float32) / 255.0, labels[idx]

    else:
        usage_error(f"--problem must be quadratic or mnist, got {problem!r}")

    # ---- the coordinatewise LSTM ----
    def lstm_step(weights, g, state):
        x = features(g)
        new_state = []
        for (kernel, bias), (h, c) in zip(weights["layers"], state):
            z = jnp.concatenate([x, h], axis=1) @ kernel + bias
            i, f, gg, o = jnp.split(z, 4, axis=1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(gg)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            new_state.append((h, c))
            x = h
        out = (x @ weights["out_kernel"] + weights["out_bias"])[:, 0] * scale
        return out, new_state

    def flatten(tensors):
        return jnp.concatenate([t.reshape(-1) for t in tensors])

    def unflatten(vector, like):
        out, start = [], 0
        for t in like:
            out.append(vector[start : start + t.size].reshape(t.shape))
            start += t.size
        return out

    def unroll(weights, params, state, task, batches):
        """The meta-loss of one unroll and the carried (params, state); batches has T+1 rows."""

        def total(params, batch):
            losses = member_losses(params, task, batch)
            return jnp.sum(losses), losses

        def body(carry, xs):
            params, state = carry
            t, batch = xs
            (_, losses), grads = jax.value_and_grad(total, has_aux=True)(params, batch)
            loss = jnp.mean(losses) * (t > 0)
            g = jax.lax.stop_gradient(flatten(grads))  # no second derivatives
            update, state = lstm_step(weights, g, state)
            params = [a + u for a, u in zip(params, unflatten(update, params))]
            return (params, state), loss

        if args.remat == "full":
            body = jax.checkpoint(body)
        elif args.remat == "dots":
            body = jax.checkpoint(body, policy=jax.checkpoint_policies.dots_saveable)
        steps = jax.tree_util.tree_map(lambda b: b[:length], batches)
        final = jax.tree_util.tree_map(lambda b: b[length], batches)
        (params, state), losses = jax.lax.scan(
            body, (params, state), (jnp.arange(length), steps), unroll=args.scan_unroll
        )
        meta_loss = jnp.sum(losses) + jnp.mean(member_losses(params, task, final))
        return meta_loss, (params, state)

    def init_weights(key, inputs):
        out = {"layers": []}
        size = inputs
        for _ in range(num_layers):
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

    def zero_state(n):
        return [(jnp.zeros((n, hidden)), jnp.zeros((n, hidden))) for _ in range(num_layers)]

    if args.check:
        weights = {
            "layers": [
                (jnp.asarray(ref[f"kernel_{k}"]), jnp.asarray(ref[f"bias_{k}"]))
                for k in range(int(ref["num_layers"]))
            ],
            "out_kernel": jnp.asarray(ref["out_kernel"]),
            "out_bias": jnp.asarray(ref["out_bias"]),
        }
        params = [jnp.asarray(ref[f"theta0_{k}"]) for k in range(int(ref["num_params"]))]
        if problem == "quadratic":
            task, batches = (jnp.asarray(ref["w"]), jnp.asarray(ref["y"])), jnp.zeros(length + 1)
        else:
            task, batches = (), (jnp.asarray(ref["images"]), jnp.asarray(ref["labels"]))
        n = sum(int(t.size) for t in params)
        loss_fn = jax.jit(lambda wts: unroll(wts, params, zero_state(n), task, batches)[0])
        meta_loss, grads = jax.value_and_grad(loss_fn)(weights)
        norm = math.sqrt(sum(float(jnp.sum(g**2)) for g in jax.tree_util.tree_leaves(grads)))
        print(f"CHECK impl=jax meta_loss={float(meta_loss):.8g} grad_norm={norm:.8g}")
        return

    num_steps = 100
    lr, b1, b2, eps, clip = 1e-3, 0.9, 0.999, 1e-8, 1.0

    def meta_step(weights, adam, params, state, task, key):
        batches = sample_batches(task, key)
        (meta_loss, (params, state)), grads = jax.value_and_grad(
            lambda w: unroll(w, params, state, task, batches), has_aux=True
        )(weights)
        leaves = jax.tree_util.tree_leaves(grads)
        norm = jnp.sqrt(sum(jnp.sum(g**2) for g in leaves))
        grads = jax.tree_util.tree_map(lambda g: g * jnp.minimum(1.0, clip / norm), grads)
        count, mu, nu = adam
        count = count + 1
        mu = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, mu, grads)
        nu = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, nu, grads)
        weights = jax.tree_util.tree_map(
            lambda p, m, v: p - lr * (m / (1 - b1**count)) / (jnp.sqrt(v / (1 - b2**count)) + eps),
            weights,
            mu,
            nu,
        )
        return weights, (count, mu, nu), params, state, meta_loss

    meta_step = jax.jit(meta_step, donate_argnums=(0, 1, 2, 3))
    key = jax.random.PRNGKey(0)
    key, sub = jax.random.split(key)
    weights = init_weights(sub, num_inputs)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, weights)
    adam = (jnp.zeros([], jnp.int32), zeros, jax.tree_util.tree_map(jnp.zeros_like, weights))
    task = params = state = None

    def run(count, start):
        nonlocal weights, adam, key, task, params, state
        meta_loss = None
        for i in range(start, start + count):
            key, sub, batch_key = jax.random.split(key, 3)
            if i % (num_steps // length) == 0 or i == start:
                task, params = new_episode(sub)
                state = zero_state(sum(int(t.size) for t in params))
            weights, adam, params, state, meta_loss = meta_step(
                weights, adam, params, state, task, batch_key
            )
        if meta_loss is not None:  # JAX dispatches asynchronously: wait before reading a clock
            meta_loss.block_until_ready()

    t0 = time.perf_counter()
    run(1, 0)
    compile_s = time.perf_counter() - t0
    run(max(args.warmup - 1, 0), 1)
    t0 = time.perf_counter()
    run(args.unrolls, args.warmup)
    elapsed = time.perf_counter() - t0
    mode = "jit+scan" + ("" if args.remat == "none" else f"+remat_{args.remat}")
    if args.scan_unroll > 1:
        mode += f"+unroll{args.scan_unroll}"
    coords = sum(int(t.size) for t in params)
    throughput_line(
        problem, "jax", mode, coords, length, args.threads, args.unrolls, elapsed, compile_s
    )


if __name__ == "__main__":
    main()
