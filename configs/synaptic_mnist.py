"""A learned synaptic rule (Bengio, Bengio and Cloutier, 1991) on the MNIST MLP.

Usage: --config=configs/synaptic_mnist.py or configs/synaptic_mnist.py:quick (a tiny variant
for smoke runs and tests). The rule of configs/synaptic_boolean.py (a polynomial in each
synapse's presynaptic activity, postsynaptic activity, weight and error signal, one coefficient
set per layer; l2l_tf/optimizers/synaptic.py) on the task of the paper's section 3.2 as
configs/mnist.py sets it: a 784-20-10 sigmoid MLP, minibatches of 128, 100 steps. Evaluation
compares it with SGD, Adam and Hebb/Oja at rates tuned on validation tasks
(docs/results/synaptic.md). The data come as for configs/mnist.py.
"""

import ml_collections

from configs import mnist, synaptic_boolean


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("", "quick"):
        raise ValueError(f"unknown variant {variant!r} of configs/synaptic_mnist.py (valid: quick)")
    # The rule, its meta-training and the threads as for boolean functions; the data and the
    # task as configs/mnist.py has them (offline by default).
    c = synaptic_boolean.get_config(variant)
    task = mnist.get_config()
    c.data, c.problem = task.data, task.problem
    c.rule.init_rate = 1.0  # start as SGD at this rate

    c.train.log_every = 100
    c.train.eval_every = 250
    c.train.num_val_tasks = 32
    c.train.val_last_steps = 10  # minibatch losses: the mean of the last 10 steps

    c.eval.num_tasks = 100
    c.eval.num_tuning_tasks = 32
    c.eval.lr_grid = tuple(
        round(10.0**e, 10) for e in (-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1)
    )
    c.eval.baselines = ("sgd", "adam", "hebbian")

    if variant == "quick":
        c.train.log_every = 20
        c.train.eval_every = 20
        c.train.num_val_tasks = 4
        c.train.val_last_steps = 1
        c.eval.num_tasks = 8
        c.eval.num_tuning_tasks = 4
        c.eval.lr_grid = (1e-3, 1e-2, 1e-1, 1.0)
    return c
