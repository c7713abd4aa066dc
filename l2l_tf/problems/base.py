"""The `TaskFamily` interface: a distribution over optimization problems.

A task family samples *tasks*, nests of fixed-shape tensors (for quadratics the matrices W and
targets y), and defines the optimizee's loss as a pure function of a list of parameter tensors.
Because a task is made of tensors rather than Python objects, one traced `tf.function` serves
every task.

Every family optimizes `num_members` independent problems at once: each parameter tensor has a
leading axis of that size, and `member_losses` returns one loss per member. The optimizee's
objective is the *sum* of the member losses, so each member receives exactly its own gradient
(the gradient of a mean would shrink each member's gradient by the batch size).
"""

import math
from typing import Any

import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError


class TaskFamily:
    """Base class of task families. Subclasses implement the four methods below."""

    name: str = "base"
    #: The evaluation metric of initialization learners (`member_metric`) and its direction.
    metric_name: str = "loss"
    higher_is_better: bool = False

    @property
    def num_members(self) -> int:
        """How many independent problems one task holds (the leading axis of every param)."""
        raise NotImplementedError

    def sample(self, seed: tf.Tensor) -> Any:
        """Samples one task (a nest of tensors) from a stateless seed of shape [2]."""
        raise NotImplementedError

    def init_params(self, task: Any, seed: tf.Tensor) -> list[tf.Tensor]:
        """The optimizee's initial parameters for `task`."""
        raise NotImplementedError

    def batch(self, task: Any, seed: tf.Tensor) -> Any:
        """A minibatch for one optimizee step; `()` for problems without data."""
        return ()

    def member_losses(self, params: list[tf.Tensor], task: Any, batch: Any) -> tf.Tensor:
        """The loss of each member, shape [num_members]."""
        raise NotImplementedError

    def support_query(self, task: Any, seed: tf.Tensor) -> tuple[Any, Any]:
        """(support, query) sets of `task` for few-shot learners.

        By default two independent batches from the two halves of `seed`; a family whose query
        set must be disjoint from its support set (few-shot classification) draws both at once.
        """
        support_seed, query_seed = seeding.split(seed)
        return self.batch(task, support_seed), self.batch(task, query_seed)

    def member_metric(self, params: list[tf.Tensor], task: Any, batch: Any) -> tf.Tensor:
        """The metric (`metric_name`) of each member on `batch`, shape [num_members].

        The loss by default (sinusoids: the MSE); query accuracy for classification. A diverged
        member's metric is NaN.
        """
        return self.member_losses(params, task, batch)

    def held_out_metrics(self, params: list[tf.Tensor], task: Any) -> dict:
        """Optional metrics of the final parameters on held-out data, {name: [num_members]}.

        Evaluation reports the mean and standard error of each over the test tasks (for MNIST:
        `test_loss` and `test_accuracy` on the test split). Families without held-out data
        return {}.
        """
        return {}

    def info(self) -> dict:
        """Facts worth recording with results (for example where the data came from)."""
        return {}

    def describe(self) -> str:
        """A line for the logs about what `info` records; empty when there is nothing to say."""
        return ""

    def loss(self, params: list[tf.Tensor], task: Any, batch: Any) -> tf.Tensor:
        """The scalar objective: the sum over members, so each gets its own gradient."""
        return tf.reduce_sum(self.member_losses(params, task, batch))


def check_positive(**fields) -> None:
    """Raises a `UserError` naming the first field that is not a finite positive number."""
    for name, value in fields.items():
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or not math.isfinite(value) or not value > 0:
            raise UserError(f"problem.{name} must be a positive number, got {value!r}")
