"""Learning-rate schedules of the meta-optimizers: the multiplier of the base rate per iteration.

One function serves every experiment: the learned-optimizer loop calls it from Python before
each meta-update, the initialization learners inside their compiled block (with tensors). The
factor is a function of the iteration alone, so a resumed run continues the same schedule
without storing it.
"""

import math

import tensorflow as tf

from l2l_tf.errors import UserError

#: "constant": 1. "cosine": half a cosine from 1 down to `final_fraction` (learned optimizers).
#: "linear": 1 - i / total, Reptile's annealing (initialization learners, in the graph).
LR_SCHEDULES = ("constant", "cosine", "linear")


def check_lr_schedule(schedule, final_fraction=1.0, allowed=("constant", "cosine")) -> None:
    """Raises UserError unless `schedule` is one of `allowed` and 0 < final_fraction <= 1."""
    if schedule not in allowed:
        raise UserError(f"meta.lr_schedule must be one of {list(allowed)}, got {schedule!r}")
    if isinstance(final_fraction, bool) or not isinstance(final_fraction, (int, float)):
        raise UserError(f"meta.final_lr_fraction must be a number, got {final_fraction!r}")
    if not 0 < final_fraction <= 1:
        raise UserError(f"meta.final_lr_fraction must be in (0, 1], got {final_fraction!r}")


def learning_rate_factor(schedule: str, iteration, total, final_fraction: float = 1.0):
    """The learning rate's multiplier before meta-update `iteration` (0-based) of `total`.

    "constant": 1. "cosine": f + (1 - f) (1 + cos(pi i / (total - 1))) / 2, from 1 at the first
    update down to f = `final_fraction` at the last (Python numbers). "linear": max(1 - i /
    total, 0), for Python numbers or int tensors (then a float64 tensor).
    """
    if schedule == "linear":
        if tf.is_tensor(iteration):
            frac = 1.0 - tf.cast(iteration, tf.float64) / tf.cast(total, tf.float64)
            return tf.maximum(frac, 0.0)
        return max(1.0 - iteration / total, 0.0)
    if schedule == "constant" or total <= 1:
        return 1.0
    progress = min(max(iteration, 0), total - 1) / (total - 1)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))
