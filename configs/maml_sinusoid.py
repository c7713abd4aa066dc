"""MAML on sinusoid regression (Finn et al., 2017, section 5.1; figures 2 and 3).

Usage: --config=configs/maml_sinusoid.py (the paper's setting: K=10, one inner step of SGD with
rate 0.01, meta-batch 25, Adam 1e-3, 70,000 meta-iterations) or configs/maml_sinusoid.py:quick.
K is --config.problem.num_shots. The other *_sinusoid.py configs start from `sinusoid_config`.
"""

import math

import ml_collections


def sinusoid_config(learner: str, variant: str = "") -> ml_collections.ConfigDict:
    """The shared sinusoid setup for `learner`; its config file sets what differs."""
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.problem = ml_collections.ConfigDict()
    c.problem.name = "sinusoid"
    c.problem.num_shots = 10  # K support points and K query points per task
    c.problem.hidden_sizes = (40, 40)
    c.problem.amplitude_range = (0.1, 5.0)
    c.problem.phase_range = (0.0, math.pi)
    c.problem.x_range = (-5.0, 5.0)

    c.meta = ml_collections.ConfigDict()
    c.meta.learner = learner
    c.meta.meta_batch_size = 25  # tasks per meta-iteration
    c.meta.num_inner_steps = 1  # adaptation steps during meta-training
    c.meta.inner_optimizer = "sgd"
    c.meta.inner_learning_rate = 0.01
    c.meta.optimizer = "adam"  # the meta-optimizer
    c.meta.learning_rate = 1e-3
    c.meta.lr_schedule = "constant"  # or "linear" (annealed to 0 at the last iteration)
    c.meta.clip_grad_norm = 0.0  # 0 disables clipping
    c.meta.iterations_per_call = 500  # meta-iterations per compiled call
    c.meta.jit_compile = False

    c.train = ml_collections.ConfigDict()
    c.train.num_meta_iterations = 70000
    c.train.log_every = 1000
    c.train.eval_every = 5000
    c.train.checkpoint_every = 5000
    c.train.keep_checkpoints = 3
    c.train.num_val_tasks = 200
    c.train.max_consecutive_skips = 20

    c.eval = ml_collections.ConfigDict()
    c.eval.num_tasks = 600
    c.eval.num_steps = 10  # the curve is reported after 0..num_steps adaptation steps
    c.eval.num_tuning_tasks = 200  # validation tasks for the baselines' learning rates
    c.eval.lr_grid = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
    c.eval.baselines = ("pretrained", "scratch")
    c.eval.pretrain_iterations = 10000  # joint training of the pretrained baseline

    # TensorFlow's CPU thread pools (0: TensorFlow's default, one per core). These tensors are
    # tiny, so one intra-op thread is 3-5x faster on the 2-core machine (bench/
    # init_learner_throughput.py --intra_op=1 vs 0), and two runs can share it, one per core.
    c.threads = ml_collections.ConfigDict()
    c.threads.intra_op = 1
    c.threads.inter_op = 0

    if variant == "quick":
        c.meta.iterations_per_call = 100
        c.train.num_meta_iterations = 300
        c.train.log_every = 100
        c.train.eval_every = 300
        c.train.checkpoint_every = 300
        c.train.num_val_tasks = 100
        c.eval.num_tasks = 100
        c.eval.num_tuning_tasks = 50
        c.eval.lr_grid = (0.003, 0.01, 0.03, 0.1)
        c.eval.pretrain_iterations = 200
    elif variant:
        raise ValueError(f"unknown variant {variant!r} of the sinusoid configs (valid: quick)")
    return c


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    return sinusoid_config("maml", variant)
