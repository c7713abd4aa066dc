"""The `UpdateRule` interface shared by hand-designed and learned optimizers.

An update rule is a pair of pure functions over explicit state (the optax shape):

    state = rule.init(params)
    updates, state = rule.step(grads, state, params)
    params = [p + u for p, u in zip(params, updates)]

`state` is a NamedTuple of tensors whose structure never changes between steps, so it can be a
loop variable of a compiled `tf.while_loop`. Rules are `tf.Module`s: a learned rule owns its
trainable variables (so `tf.GradientTape` and `tf.train.Checkpoint` find them with no plumbing),
and a hand-designed rule keeps its hyperparameters in non-trainable variables, so changing a
learning rate does not retrace the functions that use the rule.
"""

from typing import Any

import tensorflow as tf


class UpdateRule(tf.Module):
    """Base class of update rules."""

    #: True for rules whose variables are meta-learned.
    learned: bool = False

    def init(self, params: list[tf.Tensor]) -> Any:
        """The initial per-task state for `params`."""
        raise NotImplementedError

    def step(self, grads: list[tf.Tensor], state: Any, params: list[tf.Tensor]):
        """Returns `(updates, new_state)`; updates have the structure of `params`."""
        raise NotImplementedError


def apply_updates(params: list[tf.Tensor], updates: list[tf.Tensor]) -> list[tf.Tensor]:
    """params + updates, elementwise over the list."""
    return [p + u for p, u in zip(params, updates)]
