"""Stateless, seeded randomness with disjoint seed domains.

Every random draw in l2l_tf comes from `tf.random.stateless_*` with a seed derived here, so a
run is reproducible from its config and a resumed run draws the same tasks as an uninterrupted
one. Training, validation (best-checkpoint selection and baseline learning-rate tuning) and test
(final evaluation) tasks live in separate *domains*: the domain tag is folded into the seed
before the task index, so the three sets of tasks never share a seed.
"""

import tensorflow as tf

TRAIN = 0
VALIDATION = 1
TEST = 2
INIT = 3  # meta-parameter initialization
_DOMAINS = (TRAIN, VALIDATION, TEST, INIT)


def root_seed(seed: int, domain: int) -> tf.Tensor:
    """The root seed (shape [2], int32) of one domain for a config's integer seed."""
    if domain not in _DOMAINS:
        raise ValueError(f"unknown seed domain {domain}")
    return tf.constant([seed, 1000 + domain], dtype=tf.int32)


def fold_in(seed: tf.Tensor, index) -> tf.Tensor:
    """A new seed derived from `seed` and an integer (or int tensor) index."""
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(index, tf.int32))


def task_seed(seed: int, domain: int, index) -> tf.Tensor:
    """The seed of the `index`-th task of a domain."""
    return fold_in(root_seed(seed, domain), index)


def split(seed: tf.Tensor, num: int = 2) -> list[tf.Tensor]:
    """Splits a seed into `num` independent seeds."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, num=num))


def episode_seeds(seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(task, init, batch) seeds of one episode: what to sample, where to start, which data.

    Every optimizer evaluated on an episode gets the same three seeds, so learned and
    hand-designed rules see identical tasks, initial parameters and minibatches.
    """
    task, init, batch = split(seed, 3)
    return task, init, batch
