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
