"""The coordinatewise LSTM optimizer of Andrychowicz et al. (2016), section 2.1.

One small LSTM (two layers of 20 units in the paper) is applied to every coordinate of the
optimizee independently: all coordinates share its weights but each keeps its own hidden and
cell state. Its input is the coordinate's gradient (optionally log/sign preprocessed, or
RNNprop's Adam-normalized features, see `preprocess.py`) and a linear layer maps the top hidden
state to the coordinate's update, times `output_scale`:

    h_t, c_t = LSTM(preprocess(g_t), h_{t-1}, c_{t-1});   u_t = output_scale * (W h_t + b).

With `rms_output_scale` > 0 (not the paper's) a second linear head is added whose output is
multiplied by the root mean square of the coordinate's gradient tensor (per task):

    u_t = output_scale * (W h_t + b) + rms_output_scale * rms(G_t) * (W' h_t + b'),

so the rule can take steps proportional to the gradient's scale, as SGD and momentum do, beside
the scale-free steps that the log/sign features favour. The head starts at zero (the paper's
rule) and is learned with the rest. With `rms_input`, the gradient divided by its tensor's RMS
is appended to the LSTM's inputs, a feature linear in the gradient (the log/sign features make
a response proportional to the gradient hard to form).

Coordinates of every parameter tensor are flattened into one [n] vector so that a step is a few
[n, k] matrix products, whatever the shapes of the optimizee's parameters.

With `parallel_chunks` = S > 1 the coordinates are cut into S contiguous chunks that go through
the LSTM as S independent chains of ops (the state stays one [n, hidden_size] tensor per layer,
split along its first axis and joined again at every step), so TensorFlow's inter-op thread
pool runs the chains on separate cores. Every coordinate's arithmetic is unchanged; only the
meta-gradient's sums over coordinates are added chunk by chunk (float rounding).
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError, check_decay
from l2l_tf.optimizers.base import UpdateRule
from l2l_tf.optimizers.preprocess import PREPROCESSORS


class LSTMState(NamedTuple):
    h: tuple  # one [n, hidden_size] tensor per layer
    c: tuple
    features: tuple = ()  # the preprocessing's own state: (m, v, t) for adam_normalized, else ()


def flatten(tensors: list[tf.Tensor]) -> tf.Tensor:
    """Concatenates every coordinate of a list of tensors into one [n] vector."""
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


def unflatten(vector: tf.Tensor, like: list[tf.Tensor]) -> list[tf.Tensor]:
    """Splits an [n] vector back into tensors shaped like `like` (inverse of `flatten`)."""
    sizes = [int(t.shape.num_elements()) for t in like]
    return [tf.reshape(v, t.shape) for v, t in zip(tf.split(vector, sizes), like)]


def _mean_square(g: tf.Tensor) -> tf.Tensor:
    """g's mean square over all axes but the first (the members axis), kept for broadcasting."""
    return tf.reduce_mean(tf.square(g), axis=list(range(1, g.shape.rank)), keepdims=True)


def tensor_rms(g: tf.Tensor) -> tf.Tensor:
    """g divided by its root mean square over all axes but the first (the members axis), so
    each task's tensor of gradients has RMS 1 whatever its scale (0 stays 0).

    Relies on the task families' contract that every parameter tensor has a leading members
    axis; a tensor with one coordinate per member ([members]) is reduced to its sign.
    """
    tiny = np.finfo(g.dtype.as_numpy_dtype).tiny  # keeps an all-zero tensor at 0, no NaN
    return g * tf.math.rsqrt(_mean_square(g) + tiny)


def rms_of_tensor(g: tf.Tensor) -> tf.Tensor:
    """The root mean square of each task's tensor g (same leading-members-axis contract as
    `tensor_rms`), shaped to broadcast against g. The dtype's smallest normal under the root
    keeps its derivative finite for an all-zero tensor (with meta.second_derivatives)."""
    return tf.sqrt(_mean_square(g) + np.finfo(g.dtype.as_numpy_dtype).tiny)


#: rule.normalize -> what is applied to each gradient tensor before the preprocessing.
NORMALIZATIONS = {"none": lambda g: g, "tensor_rms": tensor_rms}


def _glorot(shape, seed, dtype):
    limit = math.sqrt(6.0 / (shape[0] + shape[1]))
    return tf.random.stateless_uniform(shape, seed, -limit, limit, dtype=dtype)


class CoordinatewiseLSTM(UpdateRule):
    """A learned update rule: a coordinatewise deep LSTM with shared weights."""

    learned = True

    def __init__(
        self,
        hidden_size: int = 20,
        num_layers: int = 2,
        preprocess: str = "log_sign",
        preprocess_p: float = 10.0,
        output_scale: float = 0.1,
        beta1: float = 0.95,
        beta2: float = 0.95,
        normalize: str = "none",
        rms_output_scale: float = 0.0,
        rms_input: bool = False,
        parallel_chunks: int = 1,
        seed: int = 0,
        dtype: tf.DType = tf.float32,
        name: str = "lstm",
    ):
        super().__init__(name=name)
        for field, value in (
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("parallel_chunks", parallel_chunks),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"rule.{field} must be a positive integer, got {value!r}")
        if preprocess not in PREPROCESSORS:
            raise UserError(
                f"rule.preprocess must be one of {sorted(PREPROCESSORS)}, got {preprocess!r}"
            )
        if not preprocess_p > 0:
            raise UserError(f"rule.preprocess_p must be positive, got {preprocess_p!r}")
        if not output_scale > 0:
            raise UserError(f"rule.output_scale must be positive, got {output_scale!r}")
        check_decay("rule.beta1", beta1)
        check_decay("rule.beta2", beta2)
        if normalize not in NORMALIZATIONS:
            raise UserError(
                f"rule.normalize must be one of {list(NORMALIZATIONS)}, got {normalize!r}"
            )
        if isinstance(rms_output_scale, bool) or not 0 <= rms_output_scale < math.inf:
            raise UserError(
                f"rule.rms_output_scale must be 0 (off) or positive, got {rms_output_scale!r}"
            )
        if not isinstance(rms_input, bool):
            raise UserError(f"rule.rms_input must be True or False, got {rms_input!r}")
        self.rms_input = rms_input
        self.parallel_chunks = parallel_chunks
        self.normalize = normalize
        self.rms_output_scale = float(rms_output_scale)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.preprocess = preprocess
        self.preprocess_p = float(preprocess_p)
        self.output_scale = float(output_scale)
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self._features, num_inputs, self.stateful_features = PREPROCESSORS[preprocess]
        self.dtype = tf.as_dtype(dtype)

        seeds = seeding.split(seeding.root_seed(seed, seeding.INIT), num_layers + 1)
        self.kernels, self.biases = [], []
        in_size = num_inputs + int(rms_input)
        for layer in range(num_layers):
            shape = [in_size + hidden_size, 4 * hidden_size]
            self.kernels.append(
                tf.Variable(_glorot(shape, seeds[layer], self.dtype), name=f"kernel_{layer}")
            )
            # Gate order i, f, g, o; a forget-gate bias of 1 keeps memory early in training.
            bias = tf.concat(
                [
                    tf.zeros([hidden_size], self.dtype),
                    tf.ones([hidden_size], self.dtype),
                    tf.zeros([2 * hidden_size], self.dtype),
                ],
                axis=0,
            )
            self.biases.append(tf.Variable(bias, name=f"bias_{layer}"))
            in_size = hidden_size
        self.out_kernel = tf.Variable(
            _glorot([hidden_size, 1], seeds[-1], self.dtype), name="out_kernel"
        )
        self.out_bias = tf.Variable(tf.zeros([1], self.dtype), name="out_bias")
        if self.rms_output_scale > 0:
            # Zero-initialized: the rule starts as the paper's and learns to use the head.
            self.rms_out_kernel = tf.Variable(
                tf.zeros([hidden_size, 1], self.dtype), name="rms_out_kernel"
            )
            self.rms_out_bias = tf.Variable(tf.zeros([1], self.dtype), name="rms_out_bias")

    def features(self, g: tf.Tensor, feature_state: tuple = ()) -> tuple[tf.Tensor, tuple]:
        """[n] gradient -> ([n, k] LSTM inputs, the preprocessing's new state)."""
        if self.preprocess == "adam_normalized":
            return self._features(g, feature_state, self.beta1, self.beta2)
        if self.preprocess == "log_sign":
            return self._features(g, self.preprocess_p), ()
        return self._features(g), ()

    def init(self, params):
        n = sum(int(p.shape.num_elements()) for p in params)
        zeros = tuple(tf.zeros([n, self.hidden_size], self.dtype) for _ in range(self.num_layers))
        features = ()
        if self.stateful_features:
            zero = tf.zeros([n], self.dtype)
            features = (zero, zero, tf.zeros([], self.dtype))  # m, v, t
        return LSTMState(h=zeros, c=zeros, features=features)

    def step(self, grads, state, params):
        inputs = [NORMALIZATIONS[self.normalize](g) for g in grads]
        x, features = self.features(tf.cast(flatten(inputs), self.dtype), state.features)
        if self.rms_input:
            rms_scaled = inputs if self.normalize == "tensor_rms" else map(tensor_rms, grads)
            x = tf.concat([x, tf.cast(flatten(list(rms_scaled)), self.dtype)[:, None]], axis=1)
        sizes = chunk_sizes(int(x.shape[0]), self.parallel_chunks)
        pieces = [_split_rows(t, sizes) for t in (x, *state.h, *state.c)]
        per_chunk = [self._layers(*chunk) for chunk in zip(*pieces)]  # (hs, cs) of each chunk
        hs = tuple(_join_rows([h[k] for h, _ in per_chunk]) for k in range(self.num_layers))
        cs = tuple(_join_rows([c[k] for _, c in per_chunk]) for k in range(self.num_layers))
        x = hs[-1]
        out = (tf.matmul(x, self.out_kernel) + self.out_bias)[:, 0] * self.output_scale
        updates = unflatten(tf.cast(out, grads[0].dtype), grads)
        if self.rms_output_scale > 0:
            scaled = (tf.matmul(x, self.rms_out_kernel) + self.rms_out_bias)[:, 0]
            scaled = unflatten(tf.cast(scaled * self.rms_output_scale, grads[0].dtype), grads)
            updates = [u + rms_of_tensor(g) * s for u, g, s in zip(updates, grads, scaled)]
        return updates, LSTMState(h=hs, c=cs, features=features)

    def _layers(self, x, *state):
        """The LSTM's layers on one chunk of coordinates: x [m, k] and the chunk's h's then c's
        -> (new h's, new c's)."""
        hs, cs = [], []
        for kernel, bias, h, c in zip(
            self.kernels, self.biases, state[: self.num_layers], state[self.num_layers :]
        ):
            z = tf.matmul(tf.concat([x, h], axis=1), kernel) + bias
            i, f, g, o = tf.split(z, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            hs.append(h)
            cs.append(c)
            x = h
        return hs, cs


def chunk_sizes(n: int, chunks: int) -> list[int]:
    """Sizes of `chunks` contiguous pieces of n coordinates (at most n pieces), as equal as
    possible, the larger first."""
    chunks = min(chunks, n)
    return [n // chunks + (k < n % chunks) for k in range(chunks)]


def _split_rows(t: tf.Tensor, sizes: list[int]) -> list[tf.Tensor]:
    return [t] if len(sizes) == 1 else tf.split(t, sizes, axis=0)


def _join_rows(parts) -> tf.Tensor:
    return parts[0] if len(parts) == 1 else tf.concat(parts, axis=0)
