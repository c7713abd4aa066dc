"""The interface of meta-learners that learn where (and how) a task's adaptation starts.

MAML and its relatives (first-order MAML, Reptile, Meta-SGD, iMAML) all meta-learn an
initialization theta of the task family's parameters; they differ in what else is learned (Meta-SGD
also learns per-parameter rates) and in how the outer gradient is estimated. The common shape:

    learner.meta_params                        # the tf.Variables meta-training updates
    params = learner.adapt(task, support)      # inner loop: num_inner_steps of the inner rule
    meta_loss, grads = learner.outer_grad(task, support, query)   # grads match meta_params

The inner loop runs the project's own `UpdateRule`s on explicit parameter lists through
`unroll.optimizee_step`, the same step evaluation uses. A task holds a whole meta-batch of
tasks (the family's members), so one call adapts every task of the meta-batch at once: theta
(one member's shapes) is tiled over the member axis, each member is adapted on its own loss, and
the outer loss is the mean over members.
"""

import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.optimizers.base import UpdateRule
from l2l_tf.problems.base import TaskFamily
from l2l_tf.unroll import optimizee_step


def sample_episode(family: TaskFamily, episode_seed: tf.Tensor):
    """(task, support, query, init_seed) of one meta-batch from its episode seed."""
    task_seed, init_seed, batch_seed = seeding.episode_seeds(episode_seed)
    task = family.sample(task_seed)
    support, query = family.support_query(task, batch_seed)
    return task, support, query, init_seed


def member_dot(a: list[tf.Tensor], b: list[tf.Tensor]) -> tf.Tensor:
    """Per-member inner product of two parameter lists, shape [members]."""
    return tf.add_n([tf.reduce_sum(x * y, axis=list(range(1, x.shape.rank))) for x, y in zip(a, b)])


def per_member(scalars: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Reshapes [members] so it broadcasts against a parameter tensor `like`."""
    return tf.reshape(scalars, [-1] + [1] * (like.shape.rank - 1))


class MetaLearner(tf.Module):
    """Base class: a learned initialization adapted by `num_inner_steps` of `inner_rule`."""

    #: Whether the inner loop is differentiated through (second-order MAML, Meta-SGD).
    second_order: bool = False

    def __init__(
        self,
        family: TaskFamily,
        init_params: list,
        inner_rule: UpdateRule,
        num_inner_steps: int,
        name: str | None = None,
    ):
        """Creates the meta-parameters.

        Args:
          family: the task family; its `num_members` is the meta-batch size.
          init_params: the initial value of theta, one member's shapes (no member axis).
          inner_rule: the update rule of the inner loop (SGD with the inner learning rate in
            the papers).
          num_inner_steps: adaptation steps per task during meta-training.
        """
        super().__init__(name=name)
        self.family = family
        self.inner_rule = inner_rule
        self.num_inner_steps = int(num_inner_steps)
        self.init = [tf.Variable(p, name=f"init_{i}") for i, p in enumerate(init_params)]

    @property
    def meta_params(self) -> list[tf.Variable]:
        """The variables meta-training updates, in the order of `outer_grad`'s gradients."""
        return list(self.init)

    def with_family(self, family: TaskFamily) -> "MetaLearner":
        """A view of this learner (same variables) on another family, e.g. another batch size."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.family = family
        return view

    def initial_params(self) -> list[tf.Tensor]:
        """theta tiled over the family's members: every task starts from the same point."""
        m = self.family.num_members
        return [tf.tile(v[None], [m] + [1] * v.shape.rank) for v in self.init]

    def inner_problem(self, task, params0):
        """The (family, task) the inner loop minimizes, starting from `params0`.

        The task's own loss here; iMAML adds its proximal term.
        """
        del params0
        return self.family, task

    def adaptation(
        self, task, support, params, num_steps: int, second_order: bool, query=None, metric=False
    ):
        """Runs `num_steps` inner steps from `params`.

        Returns:
          (adapted params, query losses [num_steps + 1, members] at every step, or None if no
          `query` was given). With `metric`, the family's `member_metric` (e.g. accuracy)
          instead of its loss.
        """
        family, inner_task = self.inner_problem(task, params)
        state = self.inner_rule.init(params)
        score = self.family.member_metric if metric else self.family.member_losses
        curve = [] if query is None else [score(params, task, query)]
        for _ in range(num_steps):  # a few steps: unrolled in the graph, static shapes for XLA
            _, params, state = optimizee_step(
                family, self.inner_rule, params, state, inner_task, support, second_order
            )
            if query is not None:
                curve.append(score(params, task, query))
        return params, (tf.stack(curve) if query is not None else None)

    def adapt(self, task, support, num_steps: int | None = None) -> list[tf.Tensor]:
        """theta adapted to every member of `task` on its support set: the inner loop."""
        steps = self.num_inner_steps if num_steps is None else num_steps
        return self.adaptation(task, support, self.initial_params(), steps, self.second_order)[0]

    def outer_grad(self, task, support, query):
        """(meta_loss, gradients matching `meta_params`) of one meta-batch."""
        raise NotImplementedError
