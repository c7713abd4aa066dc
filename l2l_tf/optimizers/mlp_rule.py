"""A per-parameter MLP on scale-free features: the rule of the shipped generalist optimizer.

Inspired by the small per-parameter networks of learned_optimization (`small_fc_lopt`,
Metz et al., 2022) and by RNNprop's Adam-normalized inputs (Lv et al., 2017), not the 2016
paper's LSTM. Every coordinate of every parameter tensor gets the feature vector

    grad      g / (sqrt(v_hat) + eps)                                   1
    momenta   m_hat_b / (sqrt(v_hat) + eps) for each b in `betas`       len(betas)
    factored  m_hat_0.9 / sqrt(row(v_hat) col(v_hat) / mean(v_hat))    1 (Adafactor-style row
              and column statistics; tensors with one axis besides the members use v_hat)
    param     p / rms(p over its tensor)                                1
    time      tanh(t / tau) for each tau in `time_scales`               len(time_scales)
    bias      1 for tensors with one axis besides the members, else 0   1

where v is the running mean of g^2 (decay `beta2`) and m_b those of g (decay b), bias-corrected
like Adam's. Every feature is unchanged when the loss is multiplied by a positive constant, and
all but `param` and `time` when a tensor's parameters are rescaled, so a rule trained on one set
of networks sees familiar inputs on another. Feature groups can be switched off (`inputs`) for
ablations.

A small MLP (`num_layers` hidden layers of `hidden_size` ReLU units, shared by all coordinates)
maps the features to a direction correction d and a log-magnitude s, and the update is

    u = -exp(log_lr) * exp(s) * (m_hat_0.9 / (sqrt(v_hat) + eps) + d),   s = S tanh(s_raw / S)

(S = `max_log_scale`): direction times magnitude, where the magnitude spans exp(+-S) around the
learned global rate exp(log_lr). With `max_direction` = M > 0 the correction is bounded the
same way, d = M tanh(d_raw / M) (0: unbounded); bounded outputs keep an early meta-training
rule from taking the huge steps that make episodes diverge (docs/generalist.md). The output
layer starts at zero, so the untrained rule is Adam with learning rate `learning_rate`
(beta1 = 0.9, beta2 = `beta2`); meta-training learns where to depart from it.

The rule keeps its state per tensor (no flattening): momenta, v and the step count. Because it
is written on an explicit weight list (`apply`), estimators that perturb the weights (ES, PES)
run it with any weights without touching its variables.
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError, check_decay
from l2l_tf.optimizers.base import UpdateRule

#: Feature groups, in input order; the width of each is given by `MLPRule.group_width`.
INPUT_GROUPS = ("grad", "momenta", "factored", "param", "time", "bias")
NOMINAL_BETA1 = 0.9  # the Adam direction the update is built around
SHARED_GROUPS = ("time", "bias")  # one value per tensor, folded into the first layer's bias


class MLPRuleState(NamedTuple):
    momenta: tuple  # one tuple of tensors (shaped like params) per beta
    v: tuple  # running mean of g^2, shaped like params
    t: tf.Tensor  # [] steps taken


def _glorot(shape, seed, dtype):
    limit = math.sqrt(6.0 / (shape[0] + shape[1]))
    return tf.random.stateless_uniform(shape, seed, -limit, limit, dtype=dtype)


def _axes(x: tf.Tensor) -> list[int]:
    return list(range(1, x.shape.rank))


def factored_second_moment(v: tf.Tensor) -> tf.Tensor:
    """Adafactor's rank-1 estimate of v over its last two axes; v itself for rank <= 2."""
    if v.shape.rank <= 2:
        return v
    row = tf.reduce_mean(v, axis=-1, keepdims=True)
    col = tf.reduce_mean(v, axis=-2, keepdims=True)
    return row * col / (tf.reduce_mean(row, axis=-2, keepdims=True) + 1e-30)


class MLPRule(UpdateRule):
    """A learned update rule: a per-parameter MLP on scale-free features (module docstring)."""

    learned = True

    def __init__(
        self,
        hidden_size: int = 32,
        num_layers: int = 2,
        betas=(0.5, 0.9, 0.99, 0.999),
        beta2: float = 0.999,
        time_scales=(10.0, 100.0, 1000.0, 10000.0),
        inputs=INPUT_GROUPS,
        learning_rate: float = 1e-3,
        max_log_scale: float = 5.0,
        max_direction: float = 0.0,
        eps: float = 1e-8,
        seed: int = 0,
        dtype: tf.DType = tf.float32,
        name: str = "mlp_rule",
    ):
        super().__init__(name=name)
        for field, value in (("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"rule.{field} must be a positive integer, got {value!r}")
        betas = tuple(float(b) for b in betas)
        for b in betas:
            check_decay("rule.betas", b)
        if NOMINAL_BETA1 not in betas:
            raise UserError(f"rule.betas must include {NOMINAL_BETA1} (the nominal Adam direction)")
        check_decay("rule.beta2", beta2)
        inputs = tuple(inputs)
        unknown = [g for g in inputs if g not in INPUT_GROUPS]
        if unknown or not inputs:
            raise UserError(
                f"rule.inputs must be a non-empty subset of {INPUT_GROUPS}, got {inputs}"
            )
        for field, value in (
            ("learning_rate", learning_rate),
            ("max_log_scale", max_log_scale),
            ("eps", eps),
        ):
            if isinstance(value, bool) or not 0 < value < math.inf:
                raise UserError(f"rule.{field} must be a positive number, got {value!r}")
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.betas, self.beta2 = betas, float(beta2)
        self.time_scales = tuple(float(s) for s in time_scales)
        self.inputs = tuple(g for g in INPUT_GROUPS if g in inputs)
        self.learning_rate = float(learning_rate)
        self.max_log_scale, self.eps = float(max_log_scale), float(eps)
        if isinstance(max_direction, bool) or not 0 <= max_direction < math.inf:
            raise UserError(
                f"rule.max_direction must be 0 (unbounded) or positive, got {max_direction!r}"
            )
        self.max_direction = float(max_direction)
        self.dtype = tf.as_dtype(dtype)
        self.num_inputs = sum(self.group_width(g) for g in self.inputs)

        seeds = seeding.split(seeding.root_seed(seed, seeding.INIT), num_layers + 1)
        self.kernels, self.biases = [], []
        size = self.num_inputs
        for layer in range(num_layers):
            kernel = _glorot([size, hidden_size], seeds[layer], self.dtype)
            self.kernels.append(tf.Variable(kernel, name=f"kernel_{layer}"))
            self.biases.append(
                tf.Variable(tf.zeros([hidden_size], self.dtype), name=f"bias_{layer}")
            )
            size = hidden_size
        # Zero-initialized output: the untrained rule is Adam at `learning_rate`.
        self.out_kernel = tf.Variable(tf.zeros([size, 2], self.dtype), name="out_kernel")
        self.out_bias = tf.Variable(tf.zeros([2], self.dtype), name="out_bias")
        self.log_lr = tf.Variable(tf.constant(math.log(learning_rate), self.dtype), name="log_lr")

    def group_width(self, group: str) -> int:
        return {"momenta": len(self.betas), "time": len(self.time_scales)}.get(group, 1)

    def input_rows(self, group: str) -> list[int]:
        """Rows of the first layer's kernel that read input group `group` ([] if not used).

        Per-coordinate groups come first, then the groups shared by a tensor (time, bias)."""
        order = [g for g in self.inputs if g not in SHARED_GROUPS]
        order += [g for g in self.inputs if g in SHARED_GROUPS]
        start = 0
        for g in order:
            width = self.group_width(g)
            if g == group:
                return list(range(start, start + width))
            start += width
        return []

    def without_inputs(self, groups) -> "MLPRule":
        """A copy of this rule that does not read `groups`: the same function as this one with
        those inputs held at zero (their first-layer rows are dropped, the rest copied)."""
        config = self.config()
        del config["name"]
        config["inputs"] = [g for g in self.inputs if g not in groups]
        rule = MLPRule(**config, dtype=self.dtype)
        keep = [r for g in rule.inputs for r in self.input_rows(g)]
        rule.kernels[0].assign(tf.gather(self.kernels[0], keep))
        for new, old in zip(rule.weights[1:], self.weights[1:]):
            new.assign(old)
        return rule

    @property
    def weights(self) -> list[tf.Variable]:
        """The meta-parameters in a fixed order (the order of `apply`'s `weights`)."""
        return [*self.kernels, *self.biases, self.out_kernel, self.out_bias, self.log_lr]

    def config(self) -> dict:
        """The constructor fields that define the rule's arithmetic (with `name`)."""
        return {
            "name": "mlp_rule",
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "betas": list(self.betas),
            "beta2": self.beta2,
            "time_scales": list(self.time_scales),
            "inputs": list(self.inputs),
            "learning_rate": self.learning_rate,
            "max_log_scale": self.max_log_scale,
            "max_direction": self.max_direction,
            "eps": self.eps,
        }

    def init(self, params):
        zeros = tuple(tf.zeros_like(p) for p in params)
        return MLPRuleState(
            momenta=tuple(zeros for _ in self.betas), v=zeros, t=tf.zeros([], params[0].dtype)
        )

    def step(self, grads, state, params):
        return self.apply([tf.convert_to_tensor(w) for w in self.weights], grads, state, params)

    def features(self, g, p, momenta, v, t):
        """One tensor's features (module docstring) and Adam's direction.

        Returns:
          ([size, k] per-coordinate features, [c] features shared by the tensor's coordinates
          (time, bias: the last groups), [size] nominal direction).
        """
        v_hat = v / (1.0 - self.beta2**t)
        scale = 1.0 / (tf.sqrt(v_hat) + self.eps)
        m_hat = [m / (1.0 - b**t) for m, b in zip(momenta, self.betas)]
        nominal_index = self.betas.index(NOMINAL_BETA1)
        scaled = [m * scale for m in m_hat]
        nominal = scaled[nominal_index]
        columns = []
        if "grad" in self.inputs:
            columns.append(g * scale)
        if "momenta" in self.inputs:
            columns += scaled
        if "factored" in self.inputs:
            factored = tf.sqrt(factored_second_moment(v_hat)) + self.eps
            columns.append(m_hat[nominal_index] / factored)
        if "param" in self.inputs:
            tiny = np.finfo(p.dtype.as_numpy_dtype).tiny
            rms = tf.sqrt(tf.reduce_mean(tf.square(p), axis=_axes(p), keepdims=True) + tiny)
            columns.append(p / rms)
        shared = []
        if "time" in self.inputs:
            shared += [tf.tanh(t / s) for s in self.time_scales]
        if "bias" in self.inputs:
            shared.append(tf.constant(float(g.shape.rank == 2), g.dtype))
        size = int(g.shape.num_elements())
        if columns:
            x = tf.stack([tf.reshape(c, [-1]) for c in columns], axis=1)
        else:
            x = tf.zeros([size, 0], g.dtype)
        shared = tf.stack(shared) if shared else tf.zeros([0], g.dtype)
        return x, shared, tf.reshape(nominal, [-1])

    def apply(self, weights, grads, state, params):
        """One step with meta-parameters `weights` (the order of `self.weights`).

        Returns:
          (updates shaped like params, new state).
        """
        n = self.num_layers
        kernels, biases = weights[:n], weights[n : 2 * n]
        out_kernel, out_bias, log_lr = weights[2 * n :]
        t = state.t + 1.0
        v = tuple(
            self.beta2 * v + (1.0 - self.beta2) * tf.square(g) for v, g in zip(state.v, grads)
        )
        momenta = tuple(
            tuple(b * m + (1.0 - b) * g for m, g in zip(ms, grads))
            for b, ms in zip(self.betas, state.momenta)
        )
        # The first layer on each tensor: its per-coordinate features times their rows of the
        # kernel, plus its shared features' product with theirs, a bias computed once per
        # tensor (the same sum as one matmul on all features, without [size] copies of them).
        first, nominals = [], []
        for i, (g, p) in enumerate(zip(grads, params)):
            x, shared, nominal = self.features(g, p, [ms[i] for ms in momenta], v[i], t)
            k = int(x.shape[1])
            bias = tf.linalg.matvec(kernels[0][k:], shared, transpose_a=True) + biases[0]
            first.append(tf.matmul(x, kernels[0][:k]) + bias)
            nominals.append(nominal)
        h = tf.nn.relu(tf.concat(first, axis=0))
        for kernel, bias in zip(kernels[1:], biases[1:]):
            h = tf.nn.relu(tf.matmul(h, kernel) + bias)
        out = tf.matmul(h, out_kernel) + out_bias
        correction = out[:, 0]
        if self.max_direction > 0:
            correction = self.max_direction * tf.tanh(correction / self.max_direction)
        direction = tf.concat(nominals, axis=0) + correction
        log_scale = self.max_log_scale * tf.tanh(out[:, 1] / self.max_log_scale)
        step = -tf.exp(log_lr + log_scale) * direction
        sizes = [int(g.shape.num_elements()) for g in grads]
        updates = [tf.reshape(u, g.shape) for u, g in zip(tf.split(step, sizes), grads)]
        return updates, MLPRuleState(momenta=momenta, v=v, t=t)
