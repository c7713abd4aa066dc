"""N-way K-shot classification episodes (Vinyals et al., 2016; Finn et al., 2017, section 5.2).

A task is an episode: `num_ways` classes drawn without replacement from one split's classes
(`split`: "train", "val" or "test", see `l2l_tf.data.fewshot`), relabelled 0..N-1 in the order
drawn, with `num_shots` support and `num_query` query images per class, all distinct. A sampled
task holds `batch_size` episodes (the members, a meta-batch), and every parameter has a leading
member axis as for sinusoids. The loss is softmax cross-entropy averaged over a set's images and
the metric is the accuracy on the query set.

Everything is drawn statelessly from the seeds it is given: `sample(seed)` picks the classes,
`support_query(task, seed)` picks the images (one draw of K + Q distinct images per class, split
into support and query), so a resumed run sees the same episodes. A family only holds the images
of its own split, so meta-training (split "train") cannot draw a meta-test class.

Models (`model`):

- "conv": the 4-block network of Vinyals et al. and Finn et al.: each block is a 3x3
  convolution with `num_filters` filters, batch norm, ReLU and 2x2 max-pooling; then a linear
  layer to N logits. A 28x28 image ends 1x1 after four blocks.
- "mlp": fully connected layers `hidden_sizes`, each followed by batch norm and ReLU, then a
  linear layer to N logits (fast on CPU).

`batch_norm` says how normalization statistics are used, in the inner loop and everywhere else:

- "transductive": each forward pass normalizes with the mean and variance of the batch it is
  given (per member and channel), so the support set is normalized with support statistics and
  the query set with query statistics, as in MAML's released code; no running averages are kept.
  Query predictions therefore depend on the other query images of the episode (Bronskill et al.,
  2020 discuss this); every method evaluated here is scored the same way. The scale and offset
  (gamma, beta) are parameters, adapted in the inner loop like the weights.
- "none": no normalization; each layer has a bias instead.

Weights start Glorot-uniform (MAML's code uses Xavier initialization), biases and beta at 0,
gamma at 1. Convolutions of all members run as batched matrix products (`conv3x3`).
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.data import fewshot as fewshot_data
from l2l_tf.errors import UserError
from l2l_tf.problems.base import TaskFamily, check_positive

MODELS = ("mlp", "conv")
BATCH_NORM_MODES = ("transductive", "none")
BN_EPSILON = 1e-3  # as tf.contrib's batch_norm in MAML's code


def conv3x3(x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    """Each member's 3x3 SAME convolution: x [m, b, h, w, c], w [m, 3, 3, c, f] -> [m, b, h, w, f].

    Written as nine batched matrix products of shifted views rather than one grouped
    `tf.nn.conv2d`: TensorFlow has no CPU gradient of a grouped convolution with respect to its
    input, and slices and matmuls are differentiable to any order (second-order MAML).
    """
    m, height, width = tf.shape(x)[0], x.shape[2], x.shape[3]
    c, f = w.shape[3], w.shape[4]
    padded = tf.pad(x, [[0, 0], [0, 0], [1, 1], [1, 1], [0, 0]])
    out = 0.0
    for di in range(3):
        for dj in range(3):
            view = padded[:, :, di : di + height, dj : dj + width, :]
            out += tf.matmul(tf.reshape(view, [m, -1, c]), w[:, di, dj])
    return tf.reshape(out, [m, -1, height, width, f])


class FewShotTask(NamedTuple):
    classes: tf.Tensor  # [members, num_ways] int32: indices of the split's classes


class FewShot(TaskFamily):
    """`batch_size` N-way K-shot episodes of one class split, each with its own network."""

    name = "fewshot"
    uses_data = True  # make_task_family passes the config's `data` section as `data`
    uses_splits = True  # and the split ("train", "val", "test") the caller asks for
    metric_name = "accuracy"
    higher_is_better = True

    def __init__(
        self,
        num_ways: int = 5,
        num_shots: int = 1,
        num_query: int = 15,
        batch_size: int = 25,
        model: str = "mlp",
        hidden_sizes: tuple = (128, 64),
        num_filters: int = 64,
        num_blocks: int = 4,
        batch_norm: str = "transductive",
        split: str = "train",
        data=None,
        dtype: tf.DType = tf.float32,
    ):
        for field, value in (
            ("num_ways", num_ways),
            ("num_shots", num_shots),
            ("num_query", num_query),
            ("batch_size", batch_size),
            ("num_filters", num_filters),
            ("num_blocks", num_blocks),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserError(f"problem.{field} must be a positive integer, got {value!r}")
            check_positive(**{field: value})
        if model not in MODELS:
            raise UserError(f"problem.model must be one of {list(MODELS)}, got {model!r}")
        if batch_norm not in BATCH_NORM_MODES:
            raise UserError(
                f"problem.batch_norm must be one of {list(BATCH_NORM_MODES)}, got {batch_norm!r}"
            )
        hidden_sizes = tuple(hidden_sizes)
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden_sizes):
            raise UserError(
                f"problem.hidden_sizes must be a tuple of positive integers, got {hidden_sizes!r}"
            )
        if split not in fewshot_data.SPLITS:
            raise ValueError(f"split must be one of {fewshot_data.SPLITS}, got {split!r}")
        self.num_ways, self.num_shots, self.num_query = num_ways, num_shots, num_query
        self.batch_size = batch_size
        self.model, self.batch_norm = model, batch_norm
        self.hidden_sizes, self.num_filters, self.num_blocks = hidden_sizes, num_filters, num_blocks
        self.split = split
        self.dtype = tf.as_dtype(dtype)

        dataset = fewshot_data.load_fewshot(data)
        self.dataset_description = dataset.describe()
        self.source = dataset.source
        classes = dataset.splits[split]
        self.class_names = dataset.names[split]
        per_episode = num_shots + num_query
        if len(classes) < num_ways:
            raise UserError(
                f"problem.num_ways={num_ways} but the {split} split has only {len(classes)} "
                f"classes ({dataset.source}); lower num_ways or add data.rotations"
            )
        fewest = min(range(len(classes)), key=lambda c: len(classes[c]))
        if len(classes[fewest]) < per_episode:
            raise UserError(
                f"class {self.class_names[fewest]!r} of the {split} split has "
                f"{len(classes[fewest])} images, fewer than num_shots + num_query = {per_episode}"
                + ("; lower them or raise data.val_fraction" if split == "val" else "")
            )
        self.image_size = classes[0].shape[1]
        padded = np.zeros(
            (len(classes), max(len(c) for c in classes), *classes[0].shape[1:]), np.uint8
        )
        for c, images in enumerate(classes):
            padded[c, : len(images)] = images
        self.images = tf.constant(padded)  # [classes, most images, size, size] uint8
        self.counts = tf.constant([len(c) for c in classes], tf.int32)
        self.num_classes = len(classes)

    @property
    def num_members(self) -> int:
        return self.batch_size

    def info(self) -> dict:
        return {"data_source": self.source, "split": self.split, "num_classes": self.num_classes}

    def describe(self) -> str:
        return self.dataset_description

    # --- episodes ---------------------------------------------------------------------------

    def sample(self, seed: tf.Tensor) -> FewShotTask:
        """`num_ways` distinct classes per member; way j of member m is classes[m, j]."""
        scores = tf.random.stateless_uniform([self.batch_size, self.num_classes], seed)
        return FewShotTask(classes=tf.math.top_k(scores, self.num_ways).indices)

    def support_query(self, task: FewShotTask, seed: tf.Tensor):
        """((x_support, y_support), (x_query, y_query)): disjoint images of the task's classes.

        x is [members, N * n, size, size] in [0, 1] and y [members, N * n] int32 in 0..N-1, with
        n = num_shots for the support set and num_query for the query set.
        """
        k, q = self.num_shots, self.num_query
        m, n = self.batch_size, self.num_ways
        max_images = self.images.shape[1]
        # K + Q distinct images per class: the smallest of uniform scores, padding excluded.
        scores = tf.random.stateless_uniform([m, n, max_images], seed)
        counts = tf.gather(self.counts, task.classes)[..., None]  # [m, n, 1]
        valid = tf.range(max_images)[None, None, :] < counts
        scores = tf.where(valid, scores, 2.0)
        picks = tf.math.top_k(-scores, k + q).indices  # [m, n, k + q]
        classes = tf.broadcast_to(task.classes[..., None], picks.shape)
        images = tf.gather_nd(self.images, tf.stack([classes, picks], axis=-1))
        images = tf.cast(images, self.dtype) / 255.0  # [m, n, k + q, size, size]
        labels = tf.broadcast_to(tf.range(n)[None, :, None], [m, n, k + q])

        def part(x, y, count):
            size = self.image_size
            return tf.reshape(x, [m, n * count, size, size]), tf.reshape(y, [m, n * count])

        support = part(images[:, :, :k], labels[:, :, :k], k)
        query = part(images[:, :, k:], labels[:, :, k:], q)
        return support, query

    def batch(self, task: FewShotTask, seed: tf.Tensor):
        """A support set of `task` (see `support_query`)."""
        return self.support_query(task, seed)[0]

    # --- the model --------------------------------------------------------------------------

    def layer_shapes(self) -> list[tuple[str, list[int]]]:
        """(kind, shape) of one member's parameters, in order."""
        shapes = []
        bn = self.batch_norm != "none"

        def norm_or_bias(width):
            return [("gamma", [width]), ("beta", [width])] if bn else [("bias", [width])]

        if self.model == "conv":
            size, channels = self.image_size, 1
            for _ in range(self.num_blocks):
                shapes.append(("conv", [3, 3, channels, self.num_filters]))
                shapes += norm_or_bias(self.num_filters)
                channels, size = self.num_filters, size // 2
            if size < 1:
                raise UserError(
                    f"problem.num_blocks={self.num_blocks} pools a {self.image_size}-pixel image "
                    "below one pixel"
                )
            width = size * size * channels
        else:
            width = self.image_size * self.image_size
            for h in self.hidden_sizes:
                shapes.append(("dense", [width, h]))
                shapes += norm_or_bias(h)
                width = h
        return shapes + [("dense", [width, self.num_ways]), ("bias", [self.num_ways])]

    def init_params(self, task, seed: tf.Tensor) -> list[tf.Tensor]:
        """Glorot-uniform weights, zero biases and beta, unit gamma; one draw per member."""
        shapes = self.layer_shapes()
        seeds = seeding.split(seed, len(shapes))
        params = []
        for (kind, shape), s in zip(shapes, seeds):
            full = [self.batch_size, *shape]
            if kind in ("conv", "dense"):
                receptive = int(np.prod(shape[:-2])) if kind == "conv" else 1
                fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                params.append(tf.random.stateless_uniform(full, s, -bound, bound, dtype=self.dtype))
            elif kind == "gamma":
                params.append(tf.ones(full, self.dtype))
            else:
                params.append(tf.zeros(full, self.dtype))
        return params

    def _normalize(self, h, params, axes):
        """Batch norm with batch statistics over `axes` (params = [gamma, beta]) or a bias."""
        if self.batch_norm == "none":
            return h + params[0]
        # Not tf.nn.moments: it stops the gradient through the mean inside the variance, which
        # is exact for first derivatives but wrong for second-order MAML's.
        mean = tf.reduce_mean(h, axis=axes, keepdims=True)
        var = tf.reduce_mean(tf.square(h - mean), axis=axes, keepdims=True)
        return (h - mean) * tf.math.rsqrt(var + BN_EPSILON) * params[0] + params[1]

    def logits(self, params: list[tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        """The members' networks on images x [members, batch, size, size] -> [members, batch, N]."""
        m = self.batch_size
        n_norm = 1 if self.batch_norm == "none" else 2  # parameters of a norm (or bias) layer
        if self.model == "mlp":
            h = tf.reshape(x, [m, -1, self.image_size * self.image_size])
            i = 0
            for _ in self.hidden_sizes:
                h = tf.matmul(h, params[i])
                # Per member and unit: biases and statistics broadcast as [m, 1, units].
                norm = [p[:, None, :] for p in params[i + 1 : i + 1 + n_norm]]
                h = tf.nn.relu(self._normalize(h, norm, axes=[1]))
                i += 1 + n_norm
            return tf.matmul(h, params[i]) + params[i + 1][:, None, :]
        h = x[..., None]  # [m, batch, size, size, channels]
        i = 0
        for _ in range(self.num_blocks):
            h = conv3x3(h, params[i])
            norm = [p[:, None, None, None, :] for p in params[i + 1 : i + 1 + n_norm]]
            h = tf.nn.relu(self._normalize(h, norm, axes=[1, 2, 3]))
            batch, size, f = tf.shape(h)[1], h.shape[2], h.shape[4]
            pooled = tf.nn.max_pool2d(tf.reshape(h, [-1, size, size, f]), 2, 2, "VALID")
            h = tf.reshape(pooled, [m, batch, size // 2, size // 2, f])
            i += 1 + n_norm
        h = tf.reshape(h, [m, tf.shape(h)[1], h.shape[2] * h.shape[3] * h.shape[4]])
        return tf.matmul(h, params[i]) + params[i + 1][:, None, :]

    def member_losses(self, params, task, batch) -> tf.Tensor:
        x, y = batch
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=self.logits(params, x))
        return tf.reduce_mean(ce, axis=1)

    def member_metric(self, params, task, batch) -> tf.Tensor:
        """Accuracy per member; NaN where parameters or logits are not finite (diverged).

        Both are checked: ReLU and max-pooling can turn a NaN into a finite value, and an
        accuracy computed from NaN weights must not pass for a score.
        """
        x, y = batch
        logits = self.logits(params, x)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y), self.dtype)
        finite = tf.reduce_all(tf.math.is_finite(logits), axis=[1, 2])
        for p in params:
            finite &= tf.reduce_all(tf.math.is_finite(p), axis=list(range(1, p.shape.rank)))
        return tf.where(finite, tf.reduce_mean(correct, axis=1), math.nan)
