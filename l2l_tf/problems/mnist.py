"""MNIST classification with a small MLP, the second experiment of Andrychowicz et al. (2016).

Section 3.2 of the paper: an MLP on 28x28 images with one hidden layer of 20 sigmoid units,
trained on minibatches of 128 with softmax cross-entropy for 100 steps. Weights and biases start
from N(0, 0.01^2) (the initializers of the paper's released code) and pixels are scaled to
[0, 1].

The MLP is written on an explicit parameter list [W_1, b_1, ..., W_L, b_L] in which every tensor
has a leading *member* axis: `num_members` independently initialized networks are optimized at
once with batched matrix products, each on its own minibatches and its own gradient (their
losses are summed, as for quadratics). A task is a fresh initialization and a minibatch order:
both come from the episode's seeds, and the data set itself is fixed. Minibatches are drawn per
step, uniformly with replacement, from the step's stateless seed.

`held_out_metrics` gives the loss and accuracy of each member's final parameters on the held-out
test split.
"""

import tensorflow as tf

from l2l_tf.data import mnist as data_lib
from l2l_tf.errors import UserError
from l2l_tf.problems.base import TaskFamily, check_positive
from l2l_tf.problems.mlp import loss_and_accuracy, mlp_layers, mlp_logits

ACTIVATIONS = {"sigmoid": tf.sigmoid, "relu": tf.nn.relu, "tanh": tf.tanh}
NUM_PIXELS = 28 * 28


class MNIST(TaskFamily):
    """`num_members` MLPs with hidden layers `hidden_sizes` trained on MNIST minibatches."""

    name = "mnist"
    uses_data = True  # make_task_family passes the config's `data` section as `data`

    def __init__(
        self,
        hidden_sizes=(20,),
        activation: str = "sigmoid",
        batch_size: int = 128,
        num_members: int = 1,
        init_scale: float = 0.01,
        data=None,
        dtype: tf.DType = tf.float32,
        log=print,
    ):
        if isinstance(hidden_sizes, int) and not isinstance(hidden_sizes, bool):
            hidden_sizes = (hidden_sizes,)
        if not isinstance(hidden_sizes, (tuple, list)) or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden_sizes
        ):
            raise UserError(
                "problem.hidden_sizes must be a tuple of positive integers such as (20,) or "
                f"(20, 20), got {hidden_sizes!r}"
            )
        if activation not in ACTIVATIONS:
            raise UserError(
                f"problem.activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        for field, value in (("batch_size", batch_size), ("num_members", num_members)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"problem.{field} must be a positive integer, got {value!r}")
        check_positive(init_scale=init_scale)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.activation = activation
        self.batch_size = batch_size
        self._num_members = num_members
        self.init_scale = float(init_scale)
        self.dtype = tf.as_dtype(dtype)
        self.sizes = (NUM_PIXELS, *self.hidden_sizes, data_lib.NUM_CLASSES)

        data = dict(data or {})
        name = data.get("name", "mnist")
        if name != "mnist":
            raise UserError(f"data.name must be 'mnist' for problem 'mnist', got {name!r}")
        path = data.get("path", "") or ""
        download = data.get("download", True)
        if not isinstance(path, str):
            raise UserError(f"data.path must be a string, got {path!r}")
        if not isinstance(download, bool):
            raise UserError(f"data.download must be True or False, got {download!r}")
        dataset = data_lib.load_mnist(path, download=download, log=log)
        self.dataset_description = dataset.describe()
        self.data_info = {
            "source": dataset.source,
            "num_train": int(len(dataset.x_train)),
            "num_test": int(len(dataset.x_test)),
        }
        # Training images stay uint8 (a quarter of the memory); minibatches are scaled on use.
        self._x_train = tf.constant(dataset.x_train.reshape(-1, NUM_PIXELS))
        self._y_train = tf.constant(dataset.y_train.astype("int32"))
        self._x_test = tf.constant(dataset.x_test.reshape(-1, NUM_PIXELS))
        self._y_test = tf.constant(dataset.y_test.astype("int32"))
        self.num_train = int(len(dataset.x_train))

    @property
    def num_members(self) -> int:
        return self._num_members

    def info(self) -> dict:
        return dict(self.data_info)

    def describe(self) -> str:
        return self.dataset_description

    def sample(self, seed: tf.Tensor):
        del seed  # the data set is fixed: a task is its initialization and minibatch order
        return ()

    def init_params(self, task, seed: tf.Tensor) -> list[tf.Tensor]:
        del task
        m = self._num_members
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 2 * len(self.sizes) - 2))
        params = []
        for layer, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            w = tf.random.stateless_normal([m, fan_in, fan_out], seeds[2 * layer], dtype=self.dtype)
            b = tf.random.stateless_normal([m, fan_out], seeds[2 * layer + 1], dtype=self.dtype)
            params += [self.init_scale * w, self.init_scale * b]
        return params

    def _images(self, pixels: tf.Tensor) -> tf.Tensor:
        return tf.cast(pixels, self.dtype) / 255.0

    def batch(self, task, seed: tf.Tensor):
        """Each member's minibatch: images [members, batch, 784] and labels [members, batch]."""
        del task
        shape = [self._num_members, self.batch_size]
        idx = tf.random.stateless_uniform(shape, seed, 0, self.num_train, dtype=tf.int32)
        return self._images(tf.gather(self._x_train, idx)), tf.gather(self._y_train, idx)

    def logits(self, params: list[tf.Tensor], images: tf.Tensor) -> tf.Tensor:
        """[members, n, 10] for images [members, n, 784] (each member on its own images) or
        [n, 784] (the same images for every member)."""
        return mlp_logits(params, images, ACTIVATIONS[self.activation])

    def member_losses(self, params, task, batch) -> tf.Tensor:
        images, labels = batch
        logits = self.logits(params, images)
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return tf.reduce_mean(xent, axis=-1)

    def dense_layers(self, params, task, batch):
        """`member_losses` and each layer's activities, for synaptic rules (problems/signals.py);
        the output layer's postsynaptic activity is the softmax."""
        images, labels = batch
        logits, layers = mlp_layers(params, images, ACTIVATIONS[self.activation], tf.nn.softmax)
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return tf.reduce_mean(xent, axis=-1), layers

    def held_out_metrics(self, params, task) -> dict:
        """Loss and accuracy of every member on the whole held-out test split."""
        del task
        loss, accuracy = loss_and_accuracy(
            self.logits(params, self._images(self._x_test)), self._y_test
        )
        return {"test_loss": loss, "test_accuracy": accuracy}
