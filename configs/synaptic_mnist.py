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


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.name = "mnist"
    c.data.path = ""  # mnist.npz, a directory of IDX files or a CSV; "" = automatic
    c.data.download = True

    c.problem = ml_collections.ConfigDict()
    c.problem.name = "mnist"
    c.problem.hidden_sizes = (20,)
    c.problem.activation = "sigmoid"
    c.problem.batch_size = 128
    c.problem.num_members = 1
    c.problem.init_scale = 0.01

    c.rule = ml_collections.ConfigDict()
    c.rule.name = "synaptic"
    c.rule.terms = ("pre_mod", "pre_post", "post_mod", "pre_post_mod", "mod", "w", "w_post2")
    c.rule.num_layers = 2  # one coefficient set per layer (0: one set for every synapse)
    c.rule.init = "sgd"  # start as SGD at init_rate
    c.rule.init_rate = 1.0
    c.rule.init_noise = 0.0

    c.meta = ml_collections.ConfigDict()
    c.meta.num_steps = 100
    # One truncation per episode: with 20-step truncations the rule learned to speed up
    # early steps at the cost of late ones (docs/results/synaptic.md, lab notebook).
    c.meta.unroll_length = 100
    c.meta.second_derivatives = False
    c.meta.optimizer = "adam"
    c.meta.learning_rate = 1e-2
    c.meta.lr_schedule = "cosine"
    c.meta.final_lr_fraction = 0.05
    c.meta.clip_grad_norm = 1.0
    c.meta.jit_compile = False
    c.meta.static_unroll = False
    c.meta.recompute = False
    c.meta.loss_transform = "none"

    c.threads = ml_collections.ConfigDict()
    c.threads.intra_op = 1
    c.threads.inter_op = 0

    c.train = ml_collections.ConfigDict()
    c.train.num_meta_iterations = 1000
    c.train.log_every = 100
    c.train.eval_every = 250
    c.train.checkpoint_every = 250
    c.train.keep_checkpoints = 3
    c.train.num_val_tasks = 32
    c.train.val_last_steps = 10  # minibatch losses: the mean of the last 10 steps
    c.train.max_consecutive_skips = 20

    c.eval = ml_collections.ConfigDict()
    c.eval.num_tasks = 100
    c.eval.num_steps = 100
    c.eval.num_tuning_tasks = 32
    c.eval.lr_grid = tuple(
        round(10.0**e, 10) for e in (-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1)
    )
    c.eval.baselines = ("sgd", "adam", "hebbian")

    if variant == "quick":
        c.meta.num_steps = 20
        c.meta.unroll_length = 20
        c.train.num_meta_iterations = 40
        c.train.log_every = 20
        c.train.eval_every = 20
        c.train.checkpoint_every = 20
        c.train.num_val_tasks = 4
        c.train.val_last_steps = 1
        c.eval.num_tasks = 8
        c.eval.num_steps = 20
        c.eval.num_tuning_tasks = 4
        c.eval.lr_grid = (1e-3, 1e-2, 1e-1, 1.0)
    elif variant:
        raise ValueError(f"unknown variant {variant!r} of configs/synaptic_mnist.py (valid: quick)")
    return c
