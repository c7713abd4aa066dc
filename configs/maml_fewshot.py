"""MAML on N-way K-shot classification (Finn et al., 2017, section 5.2), offline by default.

Usage: --config=configs/maml_fewshot.py or configs/maml_fewshot.py:quick. The default data are
Fashion-MNIST from Debian's dataset-fashion-mnist package (classes 0-4 meta-train, 5-9
meta-test, each in 4 rotations: 20 + 20 classes), 5-way 1-shot with 15 query images per class,
and an MLP with batch norm so that a run takes minutes on two CPU cores. Omniglot, the paper's
setting (20 images per character, so fewer query images):

    --config.data.path=/path/to/omniglot --config.problem.model=conv
    --config.problem.num_filters=64 --config.problem.num_query=1 --config.data.val_fraction=0.25

The other *_fewshot.py configs start from `fewshot_config`.
"""

import ml_collections


def fewshot_config(learner: str, variant: str = "") -> ml_collections.ConfigDict:
    """The shared few-shot setup for `learner`; its config file sets what differs."""
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.problem = ml_collections.ConfigDict()
    c.problem.name = "fewshot"
    c.problem.num_ways = 5  # N classes per episode, relabelled 0..N-1
    c.problem.num_shots = 1  # K support images per class
    c.problem.num_query = 15  # query images per class
    c.problem.model = "mlp"  # or "conv" (4 blocks: 3x3 conv, batch norm, ReLU, 2x2 max-pool)
    c.problem.hidden_sizes = (128, 64)  # the MLP's hidden layers
    c.problem.num_filters = 32  # the conv net's filters per block (64 in the papers)
    c.problem.num_blocks = 4  # the conv net's blocks
    c.problem.batch_norm = "transductive"  # batch statistics of each set, or "none"

    c.data = ml_collections.ConfigDict()
    c.data.path = ""  # Omniglot folder or IDX files; empty: Fashion-MNIST, then MNIST 5k
    c.data.train_classes = (0, 1, 2, 3, 4)  # labelled sets: meta-train labels, the rest test
    c.data.val_fraction = 0.2  # of each meta-train class's images, held out for validation
    # Each listed rotation (degrees) of a class is a class of its own: 20 meta-train and 20
    # meta-test classes from Fashion-MNIST's 5 + 5. With 5 meta-train classes alone every
    # episode holds the same 5 classes and MAML overfit them (0.42 query accuracy after 5 steps
    # on meta-test classes, below the pretrained baseline's 0.45; docs/results/fewshot.md).
    c.data.rotations = (0, 90, 180, 270)
    c.data.image_size = 28  # Omniglot images are resized to this
    c.data.download = False  # True: Omniglot, downloaded once to ~/.keras/datasets/omniglot

    c.meta = ml_collections.ConfigDict()
    c.meta.learner = learner
    c.meta.meta_batch_size = 16  # episodes per meta-iteration
    c.meta.num_inner_steps = 1  # adaptation steps during meta-training
    c.meta.inner_optimizer = "sgd"
    c.meta.inner_learning_rate = 0.4  # MAML's Omniglot rate
    c.meta.optimizer = "adam"  # the meta-optimizer
    c.meta.learning_rate = 1e-3
    c.meta.lr_schedule = "constant"
    c.meta.clip_grad_norm = 0.0
    c.meta.iterations_per_call = 250
    c.meta.jit_compile = False

    c.train = ml_collections.ConfigDict()
    c.train.num_meta_iterations = 3000
    c.train.log_every = 250
    c.train.eval_every = 500
    c.train.checkpoint_every = 500
    c.train.keep_checkpoints = 3
    c.train.num_val_tasks = 200
    c.train.max_consecutive_skips = 20

    c.eval = ml_collections.ConfigDict()
    c.eval.num_tasks = 600
    c.eval.num_steps = 5  # accuracy after 0..num_steps adaptation steps
    c.eval.num_tuning_tasks = 200
    c.eval.lr_grid = (0.01, 0.03, 0.1, 0.3, 1.0)
    c.eval.baselines = ("pretrained", "scratch")
    c.eval.pretrain_iterations = 2000
    c.eval.tasks_per_call = 200  # episodes per compiled evaluation call (memory)

    if variant == "quick":
        c.meta.iterations_per_call = 50
        c.train.num_meta_iterations = 200
        c.train.log_every = 50
        c.train.eval_every = 200
        c.train.checkpoint_every = 200
        c.train.num_val_tasks = 50
        c.eval.num_tasks = 100
        c.eval.num_tuning_tasks = 50
        c.eval.lr_grid = (0.03, 0.1, 0.3)
        c.eval.pretrain_iterations = 100
    elif variant:
        raise ValueError(f"unknown variant {variant!r} of the few-shot configs (valid: quick)")
    return c


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    return fewshot_config("maml", variant)
