"""Task families and their registry.

To add a family: write a `TaskFamily` subclass in its own module whose constructor takes the
config fields under `problem.` as keyword arguments, and add one line to `TASK_FAMILIES`.
"""

import ml_collections

from l2l_tf.errors import UserError, lookup
from l2l_tf.problems.base import TaskFamily
from l2l_tf.problems.quadratic import Quadratic
from l2l_tf.problems.sinusoid import Sinusoid

TASK_FAMILIES = {
    "quadratic": Quadratic,
    "sinusoid": Sinusoid,
}


def make_task_family(problem_config: ml_collections.ConfigDict, **overrides) -> TaskFamily:
    """Builds the task family named by `problem_config.name` from the other fields."""
    cls = lookup(TASK_FAMILIES, problem_config.get("name"), "task family")
    kwargs = {k: v for k, v in problem_config.items() if k != "name"}
    kwargs.update(overrides)
    try:
        return cls(**kwargs)
    except TypeError as e:  # an unexpected keyword: a field this family does not have
        raise UserError(f"problem {problem_config.get('name')!r}: {e}") from None


__all__ = ["TASK_FAMILIES", "TaskFamily", "make_task_family"]
