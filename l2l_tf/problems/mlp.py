"""MLP classifiers on any offline data set of `data.classification`: the generalist's tasks.

A task is an MLP with hidden layers `hidden_sizes` trained with softmax cross-entropy on
minibatches of one data set. The activation and the batch size can each be a tuple to sample
from: they are part of the sampled *task* (tensors), not of the graph, so one traced function
serves every choice. A task draws its activation uniformly from `activation` and its batch size
uniformly from `batch_size`; minibatches are always `max(batch_size)` indices drawn with
replacement, of which the first `b` are weighted 1/b and the rest 0, so the loss is exactly the
mean over a batch of b examples.

Weights start from N(0, 1/fan_in) ("lecun" scaling, the default; `init_scale` multiplies it)
and biases at zero. As in `problems/mnist.py`, every tensor has a leading members axis and the
members are independent networks, each with its own initialization, minibatches, activation and
batch size.
"""

from typing import NamedTuple

import tensorflow as tf

from l2l_tf.data import classification
from l2l_tf.errors import UserError
from l2l_tf.problems.base import TaskFamily, check_positive
from l2l_tf.problems.signals import DenseLayer

ACTIVATIONS = {
    "sigmoid": tf.sigmoid,
    "tanh": tf.tanh,
    "relu": tf.nn.relu,
    "gelu": tf.nn.gelu,
    "elu": tf.nn.elu,
    "swish": tf.nn.silu,
    "softplus": tf.nn.softplus,
}


def dense_init(sizes, num_members: int, init_scale: float, dtype, seed) -> list[tf.Tensor]:
    """[W1, b1, W2, b2, ...] of a dense net with layer widths `sizes`, for `num_members` members:
    W ~ N(0, init_scale^2 / fan_in) (one stateless seed per layer), b = 0."""
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, len(sizes) - 1))
    params = []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = tf.random.stateless_normal([num_members, fan_in, fan_out], seeds[layer], dtype=dtype)
        params += [w * (init_scale / fan_in**0.5), tf.zeros([num_members, fan_out], dtype)]
    return params


class MLPTask(NamedTuple):
    activation: tf.Tensor  # [members, num_activations] one-hot
    batch_weights: tf.Tensor  # [members, max_batch]: 1/b for the first b examples, then 0


def as_tuple(value, field: str, valid=None) -> tuple:
    """`value` or a tuple of values as a non-empty tuple, each checked against `valid`."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not values:
        raise UserError(f"problem.{field} must not be empty")
    for v in values:
        if valid is not None and v not in valid:
            raise UserError(f"problem.{field} must be among {sorted(valid)}, got {v!r}")
    return values


def check_sizes(field: str, sizes) -> tuple:
    if isinstance(sizes, int) and not isinstance(sizes, bool):
        sizes = (sizes,)
    if not isinstance(sizes, (tuple, list)) or any(
        isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in sizes
    ):
        raise UserError(f"problem.{field} must be a tuple of positive integers, got {sizes!r}")
    return tuple(int(h) for h in sizes)


def sample_task(seed, num_members, activations, batch_sizes, dtype) -> MLPTask:
    """Each member's activation (one-hot) and batch weights, drawn from `seed`."""
    a_seed, b_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    shape = [num_members]
    act = tf.random.stateless_uniform(shape, a_seed, 0, len(activations), dtype=tf.int32)
    which = tf.random.stateless_uniform(shape, b_seed, 0, len(batch_sizes), dtype=tf.int32)
    size = tf.gather(tf.constant(batch_sizes, tf.int32), which)
    position = tf.range(max(batch_sizes))[None, :]
    weights = tf.cast(position < size[:, None], dtype) / tf.cast(size[:, None], dtype)
    return MLPTask(tf.one_hot(act, len(activations), dtype=dtype), weights)


def activate(z: tf.Tensor, onehot: tf.Tensor, activations: tuple) -> tf.Tensor:
    """Each member's activation of z [members, ...]; onehot [members, A]."""
    if len(activations) == 1:
        return ACTIVATIONS[activations[0]](z)
    extra = [1] * (z.shape.rank - 1)
    out = 0.0
    for k, name in enumerate(activations):
        out += tf.reshape(onehot[:, k], [-1, *extra]) * ACTIVATIONS[name](z)
    return out


def mlp_logits(params: list, x: tf.Tensor, activation) -> tf.Tensor:
    """[members, n, out] logits of the MLP [W_1, b_1, ..., W_L, b_L] (leading members axis),
    for inputs [members, n, features] (each member its own) or [n, features] (shared);
    `activation(h)` is applied after every layer but the last."""
    return mlp_layers(params, x, activation)[0]


def mlp_layers(params: list, x: tf.Tensor, activation, output_activation=None):
    """`mlp_logits` and every layer's activities, for the local signals of synaptic rules.

    `output_activation` (None: the identity) gives the last layer's reported outputs (its
    postsynaptic activity); the logits themselves are returned as they are, so that a loss can
    fuse its own output nonlinearity.

    Returns:
      (logits [members, n, out], [DenseLayer(inputs, preactivation, outputs) per layer]).
    """
    h = x
    layers = []
    num_layers = len(params) // 2
    for layer in range(num_layers):
        w, b = params[2 * layer], params[2 * layer + 1]
        equation = "ni,mio->mno" if h.shape.rank == 2 else "mni,mio->mno"
        a = tf.einsum(equation, h, w) + b[:, None, :]
        if layer < num_layers - 1:
            y = activation(a)
        else:
            y = a if output_activation is None else output_activation(a)
        layers.append(DenseLayer(h, a, y))
        h = y
    return a, layers


def loss_and_accuracy(logits: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Each member's mean cross-entropy and accuracy on a split shared by every member:
    logits [members, n, classes], labels [n]."""
    labels = tf.broadcast_to(labels[None], [logits.shape[0], labels.shape[0]])
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), xent.dtype)
    return tf.reduce_mean(xent, axis=-1), tf.reduce_mean(correct, axis=-1)


class ClassifierFamily(TaskFamily):
    """What the MLP and conv families share: data, sampled activation and batch size, metrics."""

    uses_data = False  # the data set is named by problem.dataset, not a data section

    def __init__(self, dataset, activation, batch_size, num_members, init_scale, data_path, dtype):
        self.activations = as_tuple(activation, "activation", ACTIVATIONS)
        self.batch_sizes = tuple(int(b) for b in as_tuple(batch_size, "batch_size"))
        for b in self.batch_sizes:
            check_positive(batch_size=b)
        if isinstance(num_members, bool) or not isinstance(num_members, int) or num_members < 1:
            raise UserError(f"problem.num_members must be a positive integer, got {num_members!r}")
        check_positive(init_scale=init_scale)
        self.dataset = dataset
        self.data = classification.load_classification(dataset, data_path)
        self._num_members = num_members
        self.init_scale = float(init_scale)
        self.dtype = tf.as_dtype(dtype)
        self._x_train = tf.constant(self.data.x_train, self.dtype)
        self._y_train = tf.constant(self.data.y_train)
        self._x_test = tf.constant(self.data.x_test, self.dtype)
        self._y_test = tf.constant(self.data.y_test)

    @property
    def num_members(self) -> int:
        return self._num_members

    def info(self) -> dict:
        return {
            "source": self.data.source,
            "num_train": len(self.data.x_train),
            "num_test": len(self.data.x_test),
        }

    def describe(self) -> str:
        return self.data.describe()

    def sample(self, seed):
        return sample_task(seed, self._num_members, self.activations, self.batch_sizes, self.dtype)

    def batch(self, task, seed):
        shape = [self._num_members, max(self.batch_sizes)]
        idx = tf.random.stateless_uniform(shape, seed, 0, len(self.data.x_train), dtype=tf.int32)
        return tf.gather(self._x_train, idx), tf.gather(self._y_train, idx)

    def logits(self, params, task, x):
        """[members, n, classes] for inputs [members, n, features] or [n, features]."""
        raise NotImplementedError

    def member_losses(self, params, task, batch):
        x, y = batch
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=self.logits(params, task, x)
        )
        return tf.reduce_sum(xent * task.batch_weights, axis=-1)

    def held_out_metrics(self, params, task) -> dict:
        """The final parameters' loss on the whole training split (`train_loss`, the
        noise-free final training loss) and loss and accuracy on the test split."""
        train_loss, _ = loss_and_accuracy(self.logits(params, task, self._x_train), self._y_train)
        test_loss, test_accuracy = loss_and_accuracy(
            self.logits(params, task, self._x_test), self._y_test
        )
        return {"train_loss": train_loss, "test_loss": test_loss, "test_accuracy": test_accuracy}


class MLP(ClassifierFamily):
    """`num_members` MLPs with hidden layers `hidden_sizes` on the data set `dataset`."""

    name = "mlp"

    def __init__(
        self,
        dataset: str = "digits",
        hidden_sizes=(32,),
        activation="relu",
        batch_size=128,
        num_members: int = 1,
        init_scale: float = 1.0,
        data_path: str = "",
        dtype: tf.DType = tf.float32,
    ):
        self.hidden_sizes = check_sizes("hidden_sizes", hidden_sizes)
        super().__init__(dataset, activation, batch_size, num_members, init_scale, data_path, dtype)
        self.sizes = (self.data.num_features, *self.hidden_sizes, self.data.num_classes)

    def init_params(self, task, seed):
        del task
        return dense_init(self.sizes, self._num_members, self.init_scale, self.dtype, seed)

    def logits(self, params, task, x):
        return mlp_logits(params, x, lambda h: activate(h, task.activation, self.activations))


class ConvNet(ClassifierFamily):
    """Small conv nets on an image set: 3x3 convolutions of stride 2, global mean, linear.

    `channels` gives each convolution's output channels; members are run one by one (a loop at
    trace time), each on its own minibatch.
    """

    name = "conv"

    def __init__(
        self,
        dataset: str = "digits",
        channels=(8, 16),
        activation="relu",
        batch_size=128,
        num_members: int = 1,
        init_scale: float = 1.0,
        data_path: str = "",
        dtype: tf.DType = tf.float32,
    ):
        self.channels = check_sizes("channels", channels)
        if dataset not in classification.IMAGE_SHAPES:
            raise UserError(
                f"problem.dataset for a conv net must be an image set "
                f"({', '.join(classification.IMAGE_SHAPES)}), got {dataset!r}"
            )
        super().__init__(dataset, activation, batch_size, num_members, init_scale, data_path, dtype)
        self.image_shape = classification.IMAGE_SHAPES[dataset]

    def init_params(self, task, seed):
        del task
        m = self._num_members
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, len(self.channels) + 1))
        params, cin = [], 1
        for layer, cout in enumerate(self.channels):
            fan_in = 9 * cin
            k = tf.random.stateless_normal([m, 3, 3, cin, cout], seeds[layer], dtype=self.dtype)
            params += [k * (self.init_scale / fan_in**0.5), tf.zeros([m, cout], self.dtype)]
            cin = cout
        classes = self.data.num_classes
        w = tf.random.stateless_normal([m, cin, classes], seeds[-1], dtype=self.dtype)
        params += [w * (self.init_scale / cin**0.5), tf.zeros([m, classes], self.dtype)]
        return params

    def logits(self, params, task, x):
        height, width = self.image_shape
        out = []
        for member in range(self._num_members):
            xm = x if x.shape.rank == 2 else x[member]
            h = tf.reshape(xm, [-1, height, width, 1])
            for layer in range(len(self.channels)):
                k, b = params[2 * layer][member], params[2 * layer + 1][member]
                h = tf.nn.conv2d(h, k, strides=2, padding="SAME") + b
                h = activate(h[None], task.activation[member : member + 1], self.activations)[0]
            h = tf.reduce_mean(h, axis=[1, 2])
            out.append(tf.matmul(h, params[-2][member]) + params[-1][member])
        return tf.stack(out)
