"""The held-out suite: tasks outside the generalist's meta-training distribution.

Usage: python evaluate.py --pretrained=generalist --suite=configs/suite.py
       python evaluate.py --workdir=DIR --suite=configs/suite.py    (any trained rule)
       configs/suite.py:quick   three short tasks, for smoke runs and tests

Every task differs from configs/generalist.py's training distribution in at least one
dimension (the `out_of` column says which): wider or deeper nets, longer horizons, a data set
or an activation never trained on, conv nets of another shape, quadratics of other dimensions,
a larger batch. The list was fixed before the shipped optimizer was evaluated on it. Each
baseline's learning rate is tuned per task on validation tasks (seeds disjoint from the test
tasks); the learned rule is not tuned at all.
"""

import ml_collections

VARIANTS = ("", "quick")

#: (name, what it is out of the training distribution in, task spec).
TASKS = (
    ("digits_wide", "width 256 > 128",
     "mlp dataset=digits hidden_sizes=256, activation=relu batch_size=128 steps=500"),
    ("digits_deep", "depth 5 > 3",
     "mlp dataset=digits hidden_sizes=32,32,32,32,32 activation=tanh batch_size=128 steps=500"),
    ("mnist28", "28x28 inputs (trained: 14x14)",
     "mlp dataset=mnist hidden_sizes=32, activation=relu batch_size=128 steps=500"),
    ("breast_cancer", "data set (tabular, 2 classes)",
     "mlp dataset=breast_cancer hidden_sizes=16, activation=relu batch_size=64 steps=500"),
    ("wine", "data set (tabular, 3 classes)",
     "mlp dataset=wine hidden_sizes=32, activation=tanh batch_size=32 steps=300"),
    ("digits_elu", "activation elu",
     "mlp dataset=digits hidden_sizes=64,64 activation=elu batch_size=128 steps=500"),
    ("mnist14_swish", "activation swish",
     "mlp dataset=mnist14 hidden_sizes=64, activation=swish batch_size=128 steps=500"),
    ("digits_long", "horizon 3000 > 1000",
     "mlp dataset=digits hidden_sizes=32,32 activation=relu batch_size=128 steps=3000"),
    ("mnist14_long", "horizon 2000 > 1000",
     "mlp dataset=mnist14 hidden_sizes=128, activation=sigmoid batch_size=128 steps=2000"),
    ("conv_digits_wide", "conv channels 16,32 (trained: 8,16)",
     "conv dataset=digits channels=16,32 activation=relu batch_size=128 steps=500"),
    ("conv_mnist14_deep", "3 conv layers (trained: 2)",
     "conv dataset=mnist14 channels=8,16,32 activation=gelu batch_size=64 steps=300"),
    ("quadratic_50", "quadratic dimension 50 (trained: 10)", "quadratic dims=50 steps=500"),
    ("quadratic_3", "quadratic dimension 3 (trained: 10)", "quadratic dims=3 steps=200"),
    ("digits_batch512", "batch 512 > 256",
     "mlp dataset=digits hidden_sizes=128, activation=relu batch_size=512 steps=500"),
)

QUICK_TASKS = (
    ("digits_wide", "width 256 > 128",
     "mlp dataset=digits hidden_sizes=256, activation=relu batch_size=32 steps=30"),
    ("wine", "data set (tabular, 3 classes)",
     "mlp dataset=wine hidden_sizes=8, activation=tanh batch_size=16 steps=30"),
    ("quadratic_3", "quadratic dimension 3 (trained: 10)", "quadratic dims=3 steps=30"),
)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of configs/suite.py (valid: quick)")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.suite = ml_collections.ConfigDict()
    c.suite.tasks = TASKS if variant == "" else QUICK_TASKS
    c.suite.num_members = 4  # test tasks run 4 at a time
    c.eval = ml_collections.ConfigDict()
    c.eval.num_tasks = 8  # test tasks per suite task
    c.eval.num_tuning_tasks = 4  # validation tasks per learning rate of each baseline
    c.eval.lr_grid = tuple(round(10.0**e, 10) for e in (-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0))
    c.eval.baselines = ("sgd", "momentum", "nag", "rmsprop", "adam")
    if variant == "quick":
        c.suite.num_members = 2
        c.eval.num_tasks = 2
        c.eval.num_tuning_tasks = 2
        c.eval.lr_grid = (1e-3, 1e-2, 1e-1)
        c.eval.baselines = ("sgd", "adam")
    return c
