"""The meta-optimizer: an `UpdateRule` applied to `tf.Variable`s, with its state in variables.

Meta-training reuses the project's own update rules for the outer loop (Adam by default), so the
outer and inner optimizers share one implementation. The rule's state lives in non-trainable
variables, which a `tf.train.Checkpoint` saves and restores with everything else.
"""

import tensorflow as tf

from l2l_tf.optimizers.base import UpdateRule


class MetaOptimizer(tf.Module):
    """Applies `rule` to `variables` in place: v <- v + rule(grad)."""

    def __init__(self, rule: UpdateRule, variables, name: str = "meta_optimizer"):
        super().__init__(name=name)
        self.rule = rule
        self.targets = list(variables)
        initial = rule.init([v.read_value() for v in self.targets])
        self._structure = initial
        self.slots = [
            tf.Variable(t, trainable=False, name=f"slot_{i}")
            for i, t in enumerate(tf.nest.flatten(initial))
        ]

    def state(self):
        return tf.nest.pack_sequence_as(self._structure, [s.read_value() for s in self.slots])

    def apply(self, grads) -> None:
        """One update of the variables from their gradients (inside or outside tf.function)."""
        values = [v.read_value() for v in self.targets]
        updates, state = self.rule.step(list(grads), self.state(), values)
        for v, u in zip(self.targets, updates):
            v.assign_add(u)
        for slot, value in zip(self.slots, tf.nest.flatten(state)):
            slot.assign(value)

    def apply_if_finite(self, loss, grads, clip_grad_norm=None, grad_norm=None):
        """The one clip/skip/apply of every meta-learner: clips `grads` to `clip_grad_norm`
        (global norm; None or 0: no clipping) and applies them unless `loss` or their norm is
        inf or NaN, in which case the meta-parameters and the optimizer state stay as they are.

        Args:
          loss: the meta-loss (or meta-objective) the gradients are of.
          grads: the meta-gradients, one per variable.
          clip_grad_norm: the global norm to clip to.
          grad_norm: the gradients' norm where the caller has it (else their global norm).

        Returns:
          (grad_norm before clipping, whether the update was applied).
        """
        if grad_norm is None:
            grad_norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(loss) & tf.math.is_finite(grad_norm)
        if clip_grad_norm:
            grads, _ = tf.clip_by_global_norm(grads, clip_grad_norm, use_norm=grad_norm)
        if finite:
            self.apply(grads)
        return grad_norm, finite
