"""The meta-optimizer: an `UpdateRule` applied to `tf.Variable`s, with its state in variables.

Meta-training reuses the project's own update rules for the outer loop (Adam by default), so the
outer and inner optimizers share one implementation. The rule's state lives in non-trainable
variables, which a `tf.train.Checkpoint` saves and restores with everything else.
"""

import math

import tensorflow as tf

from l2l_tf.errors import UserError
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


LR_SCHEDULES = ("constant", "cosine")


def check_lr_schedule(schedule, final_fraction) -> None:
    """Raises UserError unless `schedule` is one of LR_SCHEDULES and 0 < final_fraction <= 1."""
    if schedule not in LR_SCHEDULES:
        raise UserError(f"meta.lr_schedule must be one of {list(LR_SCHEDULES)}, got {schedule!r}")
    if isinstance(final_fraction, bool) or not isinstance(final_fraction, (int, float)):
        raise UserError(f"meta.final_lr_fraction must be a number, got {final_fraction!r}")
    if not 0 < final_fraction <= 1:
        raise UserError(f"meta.final_lr_fraction must be in (0, 1], got {final_fraction!r}")


def learning_rate_factor(schedule: str, iteration: int, total: int, final_fraction: float) -> float:
    """The meta learning rate's multiplier before meta-update `iteration` (0-based) of `total`.

    "constant": 1. "cosine": half a cosine from 1 at the first update down to `final_fraction`
    at the last, f + (1 - f) (1 + cos(pi i / (total - 1))) / 2. The factor is a function of the
    iteration alone, so a resumed run continues the same schedule without storing it.
    """
    if schedule == "constant" or total <= 1:
        return 1.0
    progress = min(max(iteration, 0), total - 1) / (total - 1)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))
