#!/usr/bin/env python
"""Peer: the same meta-training step in plain PyTorch, eager.

The paper's setting, matched to l2l_tf: a coordinatewise 2-layer LSTM of 20 units (gates
i, f, g, o from one matrix product of [input, h], forget-gate bias 1, linear output times 0.1);
unrolls of 20 steps whose meta-loss is the sum over steps 1..20 of the mean loss (plus the loss
after the last step); optimizee gradients detached (no second derivatives); Adam (lr 1e-3) on
the global-norm-clipped (1.0) meta-gradient; truncation: params and LSTM state are carried to
the next unroll detached.

  --problem=quadratic  128 random quadratics ||W theta - y||^2 of dimension 10, each on the
                       gradient of its own loss, raw gradient input.
  --problem=mnist      configs/mnist.py's step: a 784-20-10 sigmoid MLP, softmax cross-entropy
                       on a fresh minibatch of 128 images at every step, log/sign gradient
                       features (p = 10), 15,910 coordinates.

    python bench/peers/torch_l2l.py [--problem=quadratic|mnist] [--unrolls=N] [--check=REF.npz]
        [--data=REF.npz]
"""

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/common.py, a sibling
from common import peer_args, throughput_line, usage_error  # noqa: E402


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


def log_sign(g, p=10.0):
    """The paper's log/sign features of l2l_tf/optimizers/preprocess.py: [n] -> [n, 2]."""
    threshold = math.exp(-p)
    big = g.abs() >= threshold
    safe = g.abs().clamp_min(threshold)
    first = torch.where(big, safe.log() / p, torch.full_like(g, -1.0))
    second = torch.where(big, g.sign(), math.exp(p) * g)
    return torch.stack([first, second], dim=-1)


FEATURES = {"none": lambda g: g[:, None], "log_sign": log_sign}


def lstm_step(params, g, state, scale, features):
    """One coordinatewise step: g [n] -> update [n]; state is a list of (h, c) per layer."""
    x = features(g)
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


def quadratic_losses(params, task, batch):
    w, y = task
    return ((torch.einsum("bij,bj->bi", w, params[0]) - y) ** 2).sum(-1)


def mnist_losses(params, task, batch):
    x, y = batch  # [members, batch, 784], [members, batch]
    w1, b1, w2, b2 = params
    h = torch.sigmoid(torch.einsum("mni,mio->mno", x, w1) + b1[:, None, :])
    logits = torch.einsum("mni,mio->mno", h, w2) + b2[:, None, :]
    xent = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), y.reshape(-1).long(), reduction="none"
    )
    return xent.reshape(y.shape).mean(-1)


def unroll(params, theta, state, task, batches, length, scale, member_losses, features):
    """theta: the optimizee's parameter list; batches: T+1 minibatches (None: no data)."""
    meta_loss = 0.0
    theta = [p.detach().requires_grad_() for p in theta]  # truncation: a fresh start
    for t in range(length):
        # One forward pass serves both: the gradient (detached, no 2nd derivatives) and the
        # meta-loss term, which keeps its graph.
        losses = member_losses(theta, task, batches[t])
        grads = torch.autograd.grad(losses.sum(), theta, retain_graph=True)
        if t > 0:
            meta_loss = meta_loss + losses.mean()
        g = torch.cat([x.reshape(-1) for x in grads])
        update, state = lstm_step(params, g, state, scale, features)
        theta = [
            p + u.reshape(p.shape) for p, u in zip(theta, update.split([p.numel() for p in theta]))
        ]
    meta_loss = meta_loss + member_losses(theta, task, batches[length]).mean()
    return meta_loss, theta, state


def zero_state(n, hidden=20, layers=2):
    return [(torch.zeros(n, hidden), torch.zeros(n, hidden)) for _ in range(layers)]


PROBLEMS = {"quadratic": quadratic_losses, "mnist": mnist_losses}


def weights_from(ref):
    params = []
    for k in range(int(ref["num_layers"])):
        params += [
            torch.tensor(ref[f"kernel_{k}"]).requires_grad_(),
            torch.tensor(ref[f"bias_{k}"]).requires_grad_(),
        ]
    return params + [
        torch.tensor(ref["out_kernel"]).requires_grad_(),
        torch.tensor(ref["out_bias"]).requires_grad_(),
    ]


def check(path):
    ref = np.load(path)
    problem = str(ref["problem"])
    params = weights_from(ref)
    theta = [torch.tensor(ref[f"theta0_{k}"]) for k in range(int(ref["num_params"]))]
    length = int(ref["unroll_length"])
    if problem == "quadratic":
        task, batches = (torch.tensor(ref["w"]), torch.tensor(ref["y"])), [None] * (length + 1)
    else:
        task = ()
        batches = list(zip(torch.tensor(ref["images"]), torch.tensor(ref["labels"])))
    hidden = params[0].shape[1] // 4
    meta_loss, _, _ = unroll(
        params,
        theta,
        zero_state(sum(p.numel() for p in theta), hidden, int(ref["num_layers"])),
        task,
        batches,
        length,
        float(ref["output_scale"]),
        PROBLEMS[problem],
        FEATURES[str(ref["preprocess"])],
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
    length, num_steps = 20, 100
    gen = torch.Generator().manual_seed(0)
    if args.problem == "quadratic":
        batch, dims = 128, 10
        features, inputs = FEATURES["none"], 1

        def new_episode():
            w = torch.randn(batch, dims, dims, generator=gen)
            y = torch.randn(batch, dims, generator=gen)
            return (w, y), [0.01 * torch.randn(batch, dims, generator=gen)]

        def sample_batches():
            return [None] * (length + 1)

    else:
        batch, sizes = 128, (784, 20, 10)
        if args.data is None:
            usage_error("--problem=mnist needs --data=REF.npz (bench/meta_train.py --dump)")
        features, inputs = FEATURES["log_sign"], 2
        data = np.load(args.data)
        images, labels = torch.tensor(data["x_train"]), torch.tensor(data["y_train"])

        def new_episode():
            theta = []
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                theta.append(0.01 * torch.randn(1, fan_in, fan_out, generator=gen))
                theta.append(0.01 * torch.randn(1, fan_out, generator=gen))
            return (), theta

        def sample_batches():
            idx = torch.randint(0, len(images), (length + 1, 1, batch), generator=gen)
            return list(zip(images[idx].float() / 255.0, labels[idx]))

    params = lstm_params(inputs=inputs, gen=gen)
    opt = torch.optim.Adam(params, lr=1e-3)
    member_losses = PROBLEMS[args.problem]

    def run(count, start):
        for i in range(start, start + count):
            if i % (num_steps // length) == 0 or i == start:
                task, theta = new_episode()
                state = zero_state(sum(p.numel() for p in theta))
            meta_loss, theta, state = unroll(
                params, theta, state, task, sample_batches(), length, 0.1, member_losses, features
            )
            opt.zero_grad()
            meta_loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            theta = [p.detach() for p in theta]  # truncation
            state = [(h.detach(), c.detach()) for h, c in state]
        return theta

    run(args.warmup, 0)
    t0 = time.perf_counter()
    theta = run(args.unrolls, args.warmup)
    elapsed = time.perf_counter() - t0
    throughput_line(
        args.problem,
        "torch",
        "eager",
        sum(p.numel() for p in theta),
        length,
        args.threads,
        args.unrolls,
        elapsed,
        0.0,
    )


if __name__ == "__main__":
    main()
