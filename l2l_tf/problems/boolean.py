"""Random boolean functions learned by a small network: the tasks of a learned synaptic rule.

Bengio, Bengio and Cloutier (1991), "Learning a synaptic learning rule", optimized their rule
on small networks learning small boolean problems; this family is in that spirit (its
parameters are ours, not the paper's). Here a task is a random truth table over `num_inputs`
binary inputs: each of the 2^n input patterns gets a label 0 or 1 with probability 1/2,
independently per member. Inputs are coded as -1/+1 (so that no presynaptic activity is
identically zero); the network is an MLP with hidden layers `hidden_sizes` and one sigmoid
output unit, trained on the binary cross-entropy (so the output unit's error, -dl/da, is
target - output exactly; see `problems/signals.py`).

Each step sees the whole truth table (`batch_size = 0`, deterministic full-batch learning) or
`batch_size` patterns drawn uniformly with replacement. Weights start from
N(0, init_scale^2 / fan_in) and biases at zero. `held_out_metrics` gives every member's accuracy
on the whole truth table (the fraction of the 2^n patterns classified right): a random function
has nothing to generalize to, so this measures how well the rule *learns* the table.
"""

import itertools
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l_tf.errors import UserError
from l2l_tf.problems.base import TaskFamily, check_positive
from l2l_tf.problems.mlp import check_sizes, dense_init, mlp_layers

ACTIVATIONS = {"sigmoid": tf.sigmoid, "tanh": tf.tanh, "relu": tf.nn.relu}


class BooleanTask(NamedTuple):
    labels: tf.Tensor  # [members, 2^n] in {0, 1}: each member's truth table


class Boolean(TaskFamily):
    """`num_members` MLPs, each learning its own random boolean function of `num_inputs` bits."""

    name = "boolean"
    metric_name = "accuracy"
    higher_is_better = True

    def __init__(
        self,
        num_inputs: int = 4,
        hidden_sizes=(8,),
        activation: str = "sigmoid",
        batch_size: int = 0,
        num_members: int = 16,
        init_scale: float = 1.0,
        dtype: tf.DType = tf.float32,
    ):
        for field, value, low in (
            ("num_inputs", num_inputs, 1),
            ("batch_size", batch_size, 0),
            ("num_members", num_members, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"problem.{field} must be an integer >= {low}, got {value!r}")
        if num_inputs > 12:
            raise UserError(
                f"problem.num_inputs must be at most 12 (2^n patterns), got {num_inputs}"
            )
        if activation not in ACTIVATIONS:
            raise UserError(
                f"problem.activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        check_positive(init_scale=init_scale)
        self.num_inputs = num_inputs
        self.hidden_sizes = check_sizes("hidden_sizes", hidden_sizes)
        self.activation = activation
        self.batch_size = batch_size
        self._num_members = num_members
        self.init_scale = float(init_scale)
        self.dtype = tf.as_dtype(dtype)
        self.sizes = (num_inputs, *self.hidden_sizes, 1)
        self.num_patterns = 2**num_inputs
        bits = np.array(list(itertools.product((-1.0, 1.0), repeat=num_inputs)))
        self.patterns = tf.constant(bits, self.dtype)  # [2^n, n]

    @property
    def num_members(self) -> int:
        return self._num_members

    def sample(self, seed: tf.Tensor) -> BooleanTask:
        shape = [self._num_members, self.num_patterns]
        coin = tf.random.stateless_uniform(shape, seed, dtype=self.dtype)
        return BooleanTask(labels=tf.cast(coin < 0.5, self.dtype))

    def init_params(self, task, seed: tf.Tensor) -> list[tf.Tensor]:
        del task
        return dense_init(self.sizes, self._num_members, self.init_scale, self.dtype, seed)

    def batch(self, task: BooleanTask, seed: tf.Tensor):
        """Inputs [members, B, n] and labels [members, B]; B = 2^n when batch_size is 0."""
        m = self._num_members
        if self.batch_size == 0:
            x = tf.broadcast_to(self.patterns[None], [m, self.num_patterns, self.num_inputs])
            return x, task.labels
        shape = [m, self.batch_size]
        idx = tf.random.stateless_uniform(shape, seed, 0, self.num_patterns, dtype=tf.int32)
        return tf.gather(self.patterns, idx), tf.gather(task.labels, idx, batch_dims=1)

    def dense_layers(self, params, task, batch):
        """Member losses and each layer's activities (problems/signals.py); the output unit's
        postsynaptic activity is its sigmoid."""
        x, labels = batch
        logits, layers = mlp_layers(params, x, ACTIVATIONS[self.activation], tf.sigmoid)
        xent = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits[..., 0])
        return tf.reduce_mean(xent, axis=-1), layers

    def member_losses(self, params, task, batch) -> tf.Tensor:
        return self.dense_layers(params, task, batch)[0]

    def member_metric(self, params, task, batch) -> tf.Tensor:
        x, labels = batch
        logits, _ = mlp_layers(params, x, ACTIVATIONS[self.activation])
        correct = tf.equal(tf.cast(logits[..., 0] > 0, labels.dtype), labels)
        return tf.reduce_mean(tf.cast(correct, self.dtype), axis=-1)

    def held_out_metrics(self, params, task) -> dict:
        """Each member's accuracy on its whole truth table."""
        m = self._num_members
        x = tf.broadcast_to(self.patterns[None], [m, self.num_patterns, self.num_inputs])
        return {"accuracy": self.member_metric(params, task, (x, task.labels))}
