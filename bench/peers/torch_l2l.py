#!/usr/bin/env python
"""Peer: the same quadratic meta-training step in plain PyTorch, eager.

The paper's setting, matched to l2l_tf: 128 random quadratics ||W theta - y||^2 of dimension
10, each on the gradient of its own loss; a coordinatewise 2-layer LSTM of 20 units (gates
i, f, g, o from one matrix product of [input, h], forget-gate bias 1, linear output times 0.1);
unrolls of 20 steps whose meta-loss is the sum over steps 1..20 of the mean loss; optimizee
gradients detached (no second derivatives); Adam (lr 1e-3) on the global-norm-clipped (1.0)
meta-gradient; truncation: params and LSTM state are carried to the next unroll detached.

    python bench/peers/torch_l2l.py [--unrolls=N] [--check=REF.npz]
"""

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/common.py, a sibling
from common import peer_args, throughput_line  # noqa: E402


def lstm_params(hidden=20, layers=2, inputs=1, gen=None):
    params = []
    size = inputs
    for _ in range(layers):
        limit = math.sqrt(6.0 / (size + 5 * hidden))
        kernel = (torch.rand(size + hidden, 4 * hidden, generator=gen) * 2 - 1) * limit
        bias = torch.zeros(4 * hidden)
        bias[hidden : 2 * hidden] = 1.0
        params += [kernel.requires_grad_(), bias.requires_grad_()]
        size = hidden
    limit = math.sqrt(6.0 / (hidden + 1))
    params += [
        ((torch.rand(hidden, 1, generator=gen) * 2 - 1) * limit).requires_grad_(),
        torch.zeros(1).requires_grad_(),
    ]
    return params


def lstm_step(params, g, state, scale):
    """One coordinatewise step: g [n] -> update [n]; state is a list of (h, c) per layer."""
    x = g[:, None]
    new_state = []
    layers = (len(params) - 2) // 2
    for k in range(layers):
        kernel, bias = params[2 * k], params[2 * k + 1]
        h, c = state[k]
        z = torch.cat([x, h], dim=1) @ kernel + bias
        i, f, gg, o = z.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
        h = torch.sigmoid(o) * torch.tanh(c)
        new_state.append((h, c))
        x = h
    out = (x @ params[-2] + params[-1])[:, 0] * scale
    return out, new_state


def member_losses(theta, w, y):
    return ((torch.einsum("bij,bj->bi", w, theta) - y) ** 2).sum(-1)


def unroll(params, theta, state, w, y, length, scale):
    meta_loss = 0.0
    for t in range(length):
        theta_leaf = theta.detach().requires_grad_()
        loss = member_losses(theta_leaf, w, y)
        (grad,) = torch.autograd.grad(loss.sum(), theta_leaf)  # detached: no 2nd derivatives
        if t > 0:
            meta_loss = meta_loss + member_losses(theta, w, y).mean()
        update, state = lstm_step(params, grad.reshape(-1), state, scale)
        theta = theta + update.reshape(theta.shape)
    meta_loss = meta_loss + member_losses(theta, w, y).mean()
    return meta_loss, theta, state


def zero_state(n, hidden=20, layers=2):
    return [(torch.zeros(n, hidden), torch.zeros(n, hidden)) for _ in range(layers)]


def check(path):
    ref = np.load(path)
    layers = int(ref["num_layers"])
    params = []
    for k in range(layers):
        params += [
            torch.tensor(ref[f"kernel_{k}"]).requires_grad_(),
            torch.tensor(ref[f"bias_{k}"]).requires_grad_(),
        ]
    params += [
        torch.tensor(ref["out_kernel"]).requires_grad_(),
        torch.tensor(ref["out_bias"]).requires_grad_(),
    ]
    w, y, theta = (torch.tensor(ref[k]) for k in ("w", "y", "theta0"))
    hidden = params[0].shape[1] // 4
    meta_loss, _, _ = unroll(
        params,
        theta,
        zero_state(theta.numel(), hidden, layers),
        w,
        y,
        int(ref["unroll_length"]),
        float(ref["output_scale"]),
    )
    grads = torch.autograd.grad(meta_loss, params)
    norm = math.sqrt(sum(float((g**2).sum()) for g in grads))
    print(f"CHECK impl=torch meta_loss={float(meta_loss.detach()):.8g} grad_norm={norm:.8g}")


def main():
    args = peer_args(__doc__.splitlines()[0])
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.check:
        return check(args.check)
    batch, dims, length, num_steps = 128, 10, 20, 100
    gen = torch.Generator().manual_seed(0)
    params = lstm_params(gen=gen)
    opt = torch.optim.Adam(params, lr=1e-3)

    def run(count, start):
        for i in range(start, start + count):
            if i % (num_steps // length) == 0 or i == start:
                w = torch.randn(batch, dims, dims, generator=gen)
                y = torch.randn(batch, dims, generator=gen)
                theta = 0.01 * torch.randn(batch, dims, generator=gen)
                state = zero_state(batch * dims)
            meta_loss, theta, state = unroll(params, theta, state, w, y, length, 0.1)
            opt.zero_grad()
            meta_loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            theta = theta.detach()  # truncation
            state = [(h.detach(), c.detach()) for h, c in state]

    run(args.warmup, 0)
    t0 = time.perf_counter()
    run(args.unrolls, args.warmup)
    elapsed = time.perf_counter() - t0
    throughput_line(
        "quadratic",
        "torch",
        "eager",
        batch * dims,
        length,
        args.threads,
        args.unrolls,
        elapsed,
        0.0,
    )


if __name__ == "__main__":
    main()
