"""Sinusoid regression, the few-shot regression benchmark of Finn et al. (2017), section 5.1.

A task is y = A sin(x - phi) with amplitude A ~ U[0.1, 5] and phase phi ~ U[0, pi]; data points
have x ~ U[-5, 5]. The model is an MLP 1-40-40-1 with ReLU and the loss is the mean squared
error over the K points of a batch. A sampled task holds `batch_size` independent sinusoids (the
members, a meta-batch of tasks), and every parameter has a leading member axis, so a whole
meta-batch is one batched matrix product per layer.

`batch(task, seed)` draws K points of every member's sinusoid: a meta-learner calls it twice with
different seeds for the support and the query set.
"""

import math
from typing import NamedTuple

import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.problems.base import TaskFamily, check_positive


class SinusoidTask(NamedTuple):
    amplitude: tf.Tensor  # [members]
    phase: tf.Tensor  # [members]


class Sinusoid(TaskFamily):
    """`batch_size` sinusoid regression tasks, each fitted by its own MLP."""

    name = "sinusoid"
    metric_name = "mse"  # the evaluation metric is the loss itself

    def __init__(
        self,
        num_shots: int = 10,
        batch_size: int = 25,
        hidden_sizes: tuple = (40, 40),
        amplitude_range: tuple = (0.1, 5.0),
        phase_range: tuple = (0.0, math.pi),
        x_range: tuple = (-5.0, 5.0),
        dtype: tf.DType = tf.float32,
    ):
        check_positive(num_shots=num_shots, batch_size=batch_size)
        hidden_sizes = tuple(hidden_sizes)
        if not hidden_sizes or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden_sizes
        ):
            raise UserError(
                f"problem.hidden_sizes must be a tuple of positive integers, got {hidden_sizes!r}"
            )
        for field, rng in (
            ("amplitude_range", amplitude_range),
            ("phase_range", phase_range),
            ("x_range", x_range),
        ):
            if len(rng) != 2 or not rng[0] <= rng[1]:
                raise UserError(f"problem.{field} must be (low, high) with low <= high, got {rng}")
        self.num_shots = int(num_shots)
        self.batch_size = int(batch_size)
        self.hidden_sizes = hidden_sizes
        self.amplitude_range = tuple(float(v) for v in amplitude_range)
        self.phase_range = tuple(float(v) for v in phase_range)
        self.x_range = tuple(float(v) for v in x_range)
        self.dtype = tf.as_dtype(dtype)
        sizes = (1, *hidden_sizes, 1)
        self.layer_sizes = list(zip(sizes[:-1], sizes[1:]))

    @property
    def num_members(self) -> int:
        return self.batch_size

    def param_shapes(self) -> list[list[int]]:
        """Shapes of one member's parameters: [W1, b1, W2, b2, ...] (no member axis)."""
        shapes = []
        for n_in, n_out in self.layer_sizes:
            shapes += [[n_in, n_out], [n_out]]
        return shapes

    def _uniform(self, shape, seed, bounds):
        low, high = bounds
        return tf.random.stateless_uniform(shape, seed, low, high, dtype=self.dtype)

    def sample(self, seed: tf.Tensor) -> SinusoidTask:
        a_seed, p_seed = seeding.split(seed)
        m = [self.batch_size]
        return SinusoidTask(
            amplitude=self._uniform(m, a_seed, self.amplitude_range),
            phase=self._uniform(m, p_seed, self.phase_range),
        )

    def init_params(self, task, seed: tf.Tensor) -> list[tf.Tensor]:
        """PyTorch's default nn.Linear initialization, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        params = []
        seeds = seeding.split(seed, 2 * len(self.layer_sizes))
        for i, (n_in, n_out) in enumerate(self.layer_sizes):
            bound = 1.0 / math.sqrt(n_in)
            for j, shape in enumerate(([n_in, n_out], [n_out])):
                params.append(
                    self._uniform([self.batch_size, *shape], seeds[2 * i + j], (-bound, bound))
                )
        return params

    def batch(self, task: SinusoidTask, seed: tf.Tensor):
        """K points (x, y) of every member's sinusoid, each of shape [members, K, 1]."""
        x = self._uniform([self.batch_size, self.num_shots, 1], seed, self.x_range)
        y = task.amplitude[:, None, None] * tf.sin(x - task.phase[:, None, None])
        return x, y

    def predict(self, params: list[tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        """The members' MLPs on inputs x [members, n, 1] -> [members, n, 1]."""
        h = x
        num_layers = len(self.layer_sizes)
        for i in range(num_layers):
            w, b = params[2 * i], params[2 * i + 1]
            h = tf.matmul(h, w) + b[:, None, :]
            if i < num_layers - 1:
                h = tf.nn.relu(h)
        return h

    def member_losses(self, params, task, batch) -> tf.Tensor:
        x, y = batch
        return tf.reduce_mean(tf.square(self.predict(params, x) - y), axis=[1, 2])
