"""Random quadratics, the first experiment of Andrychowicz et al. (2016), section 3.1.

Each member is f(theta) = ||W theta - y||^2 with W (d x d) and y (d) drawn i.i.d. from
N(0, w_scale^2) and N(0, y_scale^2) (the paper's text says N(0, 1)), and theta_0 drawn from
N(0, init_scale^2) (0.01, the value of the paper's released code). The paper optimizes 128 such
functions together; each gets the gradient of its own loss.
"""

from typing import NamedTuple

import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.problems.base import TaskFamily, check_positive


class QuadraticTask(NamedTuple):
    w: tf.Tensor  # [members, dims, dims]
    y: tf.Tensor  # [members, dims]


class Quadratic(TaskFamily):
    """A batch of `batch_size` random quadratics of dimension `dims`."""

    name = "quadratic"

    def __init__(
        self,
        dims: int = 10,
        batch_size: int = 128,
        w_scale: float = 1.0,
        y_scale: float = 1.0,
        init_scale: float = 0.01,
        dtype: tf.DType = tf.float32,
    ):
        check_positive(
            dims=dims,
            batch_size=batch_size,
            w_scale=w_scale,
            y_scale=y_scale,
            init_scale=init_scale,
        )
        self.dims = int(dims)
        self.batch_size = int(batch_size)
        self.w_scale = float(w_scale)
        self.y_scale = float(y_scale)
        self.init_scale = float(init_scale)
        self.dtype = tf.as_dtype(dtype)

    @property
    def num_members(self) -> int:
        return self.batch_size

    def sample(self, seed: tf.Tensor) -> QuadraticTask:
        w_seed, y_seed = seeding.split(seed)
        b, d = self.batch_size, self.dims
        w = self.w_scale * tf.random.stateless_normal([b, d, d], w_seed, dtype=self.dtype)
        y = self.y_scale * tf.random.stateless_normal([b, d], y_seed, dtype=self.dtype)
        return QuadraticTask(w=w, y=y)

    def init_params(self, task: QuadraticTask, seed: tf.Tensor) -> list[tf.Tensor]:
        shape = [self.batch_size, self.dims]
        return [self.init_scale * tf.random.stateless_normal(shape, seed, dtype=self.dtype)]

    def member_losses(self, params, task: QuadraticTask, batch) -> tf.Tensor:
        (theta,) = params
        residual = tf.linalg.matvec(task.w, theta) - task.y
        return tf.reduce_sum(tf.square(residual), axis=-1)
