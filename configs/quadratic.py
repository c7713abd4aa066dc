"""Random 10-dimensional quadratics (Andrychowicz et al., 2016, section 3.1; figure 2).

Usage: --config=configs/quadratic.py (the paper's setting) or configs/quadratic.py:quick (a
tiny variant for smoke runs and tests).
"""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.distribute = "none"  # or "mirrored" (local devices), "multi_worker" (TF_CONFIG)

    c.problem = ml_collections.ConfigDict()
    c.problem.name = "quadratic"
    c.problem.dims = 10
    c.problem.batch_size = 128  # functions optimized together, each on its own gradient
    c.problem.w_scale = 1.0  # W ~ N(0, w_scale^2)
    c.problem.y_scale = 1.0  # y ~ N(0, y_scale^2)
    c.problem.init_scale = 0.01  # theta_0 ~ N(0, init_scale^2)

    c.rule = ml_collections.ConfigDict()
    c.rule.name = "lstm"
    c.rule.hidden_size = 20
    c.rule.num_layers = 2
    c.rule.preprocess = "none"  # "log_sign" (appendix A of the paper) or "adam_normalized"
    c.rule.preprocess_p = 10.0
    c.rule.output_scale = 0.1
    c.rule.beta1 = 0.95  # decays of rule.preprocess=adam_normalized (RNNprop); unused otherwise
    c.rule.beta2 = 0.95
    c.rule.normalize = "none"  # or "tensor_rms": each gradient tensor divided by its RMS first
    c.rule.rms_output_scale = 0.0  # >0: a second head, times the gradient tensor's RMS
    c.rule.rms_input = False  # True: the gradient over its tensor's RMS as an extra input
    # Coordinates in 2 chunks, run as parallel chains of ops on the 2 cores of the inter-op
    # pool (the same arithmetic per coordinate; docs/benchmarks.md)
    c.rule.parallel_chunks = 2

    c.meta = ml_collections.ConfigDict()
    c.meta.num_steps = 100  # optimizee steps per episode
    c.meta.unroll_length = 20  # steps per truncated unroll (one meta-update)
    c.meta.second_derivatives = False
    c.meta.optimizer = "adam"
    c.meta.learning_rate = 1e-3
    c.meta.lr_schedule = "constant"  # or "cosine": decay to final_lr_fraction * learning_rate
    c.meta.final_lr_fraction = 1.0  # the cosine schedule's last learning rate, as a fraction

    c.meta.clip_grad_norm = 1.0  # 0 disables clipping
    c.meta.jit_compile = False  # XLA; see BENCHMARKS.md for when it pays
    c.meta.static_unroll = True  # the steps unrolled in the graph: faster than a while loop here
    c.meta.recompute = False  # rematerialize segments in the backward pass: sqrt(T) memory
    c.meta.loss_transform = "none"  # the paper's sum of losses; "log": sum of log-losses

    # Threads of TensorFlow's CPU pools (0: TensorFlow's default, all cores).
    c.threads = ml_collections.ConfigDict()
    c.threads.intra_op = 1  # one thread is 2x faster on this small problem (BENCHMARKS.md)
    c.threads.inter_op = 0

    c.train = ml_collections.ConfigDict()
    c.train.num_meta_iterations = 10000
    c.train.log_every = 100
    c.train.eval_every = 500
    c.train.checkpoint_every = 500
    c.train.keep_checkpoints = 3
    c.train.num_val_tasks = 256
    c.train.val_last_steps = 1  # validation score: mean loss over the episode's last k steps

    c.train.max_consecutive_skips = 20

    c.eval = ml_collections.ConfigDict()
    c.eval.num_tasks = 1000
    c.eval.num_steps = 100
    c.eval.num_tuning_tasks = 256
    c.eval.lr_grid = tuple(round(10.0**e, 10) for e in (-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0))
    c.eval.baselines = ("sgd", "momentum", "nag", "rmsprop", "adam")

    if variant == "quick":
        c.problem.batch_size = 16
        c.meta.num_steps = 20
        c.meta.unroll_length = 10
        c.train.num_meta_iterations = 60
        c.train.log_every = 20
        c.train.eval_every = 30
        c.train.checkpoint_every = 30
        c.train.num_val_tasks = 32
        c.eval.num_tasks = 64
        c.eval.num_steps = 20
        c.eval.num_tuning_tasks = 32
    elif variant:
        raise ValueError(f"unknown variant {variant!r} of configs/quadratic.py (valid: quick)")
    return c
