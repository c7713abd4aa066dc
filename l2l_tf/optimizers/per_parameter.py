"""Gradient descent with a learned learning rate for every coordinate (Meta-SGD's inner rule).

Li et al. (2017), "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning", equation (1):

    theta' = theta - alpha o grad L(theta),

where alpha has the shape of theta and o is the elementwise product. The rates are trainable
variables of the rule, so meta-training learns them together with the initialization. They have
one member's parameter shapes and broadcast over the leading member axis: every task of a
meta-batch adapts with the same learned rates.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l_tf.optimizers.base import UpdateRule


class EmptyState(NamedTuple):
    pass


class PerParameterSGD(UpdateRule):
    """u = -alpha o g with trainable alpha, one rate per coordinate of one member's params."""

    learned = True

    def __init__(
        self,
        shapes: list,
        init_range: tuple = (0.005, 0.1),
        seed: int = 0,
        dtype: tf.DType = tf.float32,
        name: str = "per_parameter_sgd",
    ):
        """Creates the rates.

        Args:
          shapes: one member's parameter shapes (no member axis).
          init_range: alpha is initialized uniformly in [low, high] (the Meta-SGD paper draws
            its initial rates from [0.005, 0.1]); low == high gives a constant rate.
          seed: seeds the initial rates.
          dtype: the rates' dtype.
        """
        super().__init__(name=name)
        rng = np.random.default_rng(seed)
        low, high = init_range
        np_dtype = tf.as_dtype(dtype).as_numpy_dtype
        self.rates = [
            tf.Variable(rng.uniform(low, high, size=shape).astype(np_dtype), name=f"rate_{i}")
            for i, shape in enumerate(shapes)
        ]

    def init(self, params):
        return EmptyState()

    def step(self, grads, state, params):
        return [-tf.cast(a, g.dtype) * g for a, g in zip(self.rates, grads)], state
