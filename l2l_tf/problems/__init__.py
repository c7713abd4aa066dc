"""Task families and their registry.

To add a family: write a `TaskFamily` subclass in its own module whose constructor takes the
config fields under `problem.` as keyword arguments, and add one line to `TASK_FAMILIES`. A
family that reads a data set sets `uses_data = True` and receives the config's `data` section
as the keyword argument `data`; one whose tasks come from a class split of it (`uses_splits = True`,
few-shot classification) also receives `split` ("train", "val" or "test").
"""

import ml_collections

from l2l_tf.errors import UserError, lookup
from l2l_tf.problems.base import TaskFamily
from l2l_tf.problems.boolean import Boolean
from l2l_tf.problems.fewshot import FewShot
from l2l_tf.problems.mlp import MLP, ConvNet
from l2l_tf.problems.mnist import MNIST
from l2l_tf.problems.quadratic import Quadratic
from l2l_tf.problems.sinusoid import Sinusoid

TASK_FAMILIES = {
    "quadratic": Quadratic,
    "sinusoid": Sinusoid,
    "mnist": MNIST,
    "fewshot": FewShot,
    "mlp": MLP,
    "conv": ConvNet,
    "boolean": Boolean,
}


def make_task_family(
    problem_config: ml_collections.ConfigDict, data_config=None, split=None, **overrides
) -> TaskFamily:
    """Builds the task family named by `problem_config.name` from the other fields.

    Args:
      problem_config: the config's `problem` section.
      data_config: the config's `data` section (or None), passed as `data` to families that
        read a data set (`uses_data`).
      split: the class split ("train", "val", "test") for families with `uses_splits`; ignored
        by the others, whose tasks are split by seed domain alone.
      **overrides: further keyword arguments of the family's constructor.
    """
    cls = lookup(TASK_FAMILIES, problem_config.get("name"), "task family")
    kwargs = {k: v for k, v in problem_config.items() if k != "name"}
    if getattr(cls, "uses_data", False):
        kwargs["data"] = dict(data_config.items()) if data_config else {}
    elif data_config:
        raise UserError(f"problem {problem_config.get('name')!r} reads no data set; remove data.*")
    if getattr(cls, "uses_splits", False) and split is not None:
        kwargs["split"] = split
    kwargs.update(overrides)
    try:
        return cls(**kwargs)
    except TypeError as e:  # an unexpected keyword: a field this family does not have
        raise UserError(f"problem {problem_config.get('name')!r}: {e}") from None


__all__ = ["TASK_FAMILIES", "TaskFamily", "make_task_family"]
