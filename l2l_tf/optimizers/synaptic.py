"""A learned synaptic learning rule (Bengio, Bengio and Cloutier, 1991) and a Hebbian baseline.

"Learning a synaptic learning rule" (Bengio, Bengio and Cloutier, IJCNN 1991) makes the change
of every synapse a small parametric function of signals local to it, with parameters theta
shared by all synapses and optimized over many tasks so that networks *using* the rule learn.
Here the function is the paper's kind of polynomial: for the synapse from unit j to unit i,

    dw_ij = mean_b  sum_k theta_k * monomial_k(pre_bj, post_bi, mod_bi, w_ij),

averaged over the examples b of the step's batch, with the monomials named in `TERMS`:

    "1"            1                      a constant drift
    "pre"          pre_j
    "post"         post_i
    "mod"          mod_i
    "pre_post"     pre_j post_i           Hebb's rule
    "pre_mod"      pre_j mod_i            the delta rule: minus the gradient (problems/signals.py)
    "post_mod"     post_i mod_i
    "pre_post_mod" pre_j post_i mod_i     a three-factor (modulated Hebbian) term
    "w"            w_ij                   weight decay (theta < 0)
    "w_post2"      w_ij post_i^2          Oja's normalizing decay (theta < 0)

pre, post and mod are the presynaptic activity, the postsynaptic activity and the error signal
delivered to unit i, defined in `problems/signals.py` (a bias is a synapse from a unit whose
activity is 1). mod is scaled so that mean_b pre_j mod_i = -dL/dw_ij: theta = lr on "pre_mod"
alone is exactly SGD at rate lr, so the family contains the usual baseline. Batch means of
products are matrix products (mean_b pre_bj z_bi = (X^T Z / B)_ji), so a step costs one matmul
per tensor, like a gradient.

theta is shared by every synapse of the network (`num_layers = 0`) or is one set per layer
(`num_layers = L`: parameters [W_1, b_1, ..., W_L, b_L], layer l's weights and bias use set l).
The rule is stateless; its state is empty. It sets `needs_signals`, so `unroll.optimizee_step`
passes it the family's local signals (a family without them is rejected by config validation).
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l_tf.errors import UserError
from l2l_tf.optimizers.base import UpdateRule

TERMS = (
    "1",
    "pre",
    "post",
    "mod",
    "pre_post",
    "pre_mod",
    "post_mod",
    "pre_post_mod",
    "w",
    "w_post2",
)
#: How theta starts: "sgd" (the "pre_mod" term at init_rate, all others 0) or "zero".
INITS = ("sgd", "zero")


class EmptyState(NamedTuple):
    pass


def _batch_mean(t: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(t, axis=1)


def polynomial_update(coefficients: dict, param: tf.Tensor, signals) -> tf.Tensor:
    """sum_k c_k * mean_b monomial_k for one parameter tensor.

    Args:
      coefficients: {term name: scalar tensor}; terms left out contribute nothing.
      param: the weights [members, n_in, n_out] or a bias [members, n_out].
      signals: its `Signals` (pre [members, B, n_in], post and mod [members, B, n_out]).

    Returns:
      The update, shaped like `param`.
    """
    pre, post, mod = signals.pre, signals.post, signals.mod
    c = coefficients
    w = tf.reshape(param, [-1, pre.shape[-1], post.shape[-1]])  # a bias is [members, 1, n_out]
    batch = tf.cast(tf.shape(pre)[1], pre.dtype)
    # The terms with a presynaptic factor: one batched matmul, pre^T z / B.
    z = 0.0
    if "pre_post" in c:
        z += c["pre_post"] * post
    if "pre_mod" in c:
        z += c["pre_mod"] * mod
    if "pre_post_mod" in c:
        z += c["pre_post_mod"] * post * mod
    dw = tf.zeros_like(w)
    if not isinstance(z, float):
        dw += tf.einsum("mbj,mbi->mji", pre, z) / batch
    if "1" in c:
        dw += c["1"]
    if "pre" in c:
        dw += c["pre"] * _batch_mean(pre)[:, :, None]
    # The terms of the postsynaptic unit alone, [members, 1, n_out].
    unit = 0.0
    if "post" in c:
        unit += c["post"] * _batch_mean(post)
    if "mod" in c:
        unit += c["mod"] * _batch_mean(mod)
    if "post_mod" in c:
        unit += c["post_mod"] * _batch_mean(post * mod)
    if not isinstance(unit, float):
        dw += unit[:, None, :]
    if "w" in c:
        dw += c["w"] * w
    if "w_post2" in c:
        dw += c["w_post2"] * w * _batch_mean(tf.square(post))[:, None, :]
    return tf.reshape(dw, tf.shape(param))


def check_terms(terms) -> tuple:
    """`terms` as a tuple of distinct names of `TERMS`, or a UserError."""
    if isinstance(terms, str) or not isinstance(terms, (tuple, list)) or not terms:
        raise UserError(f"rule.terms must be a non-empty tuple of names from {list(TERMS)}")
    unknown = [t for t in terms if t not in TERMS]
    if unknown:
        raise UserError(f"rule.terms: unknown {unknown}; valid: {list(TERMS)}")
    if len(set(terms)) != len(terms):
        raise UserError(f"rule.terms must not repeat a term, got {list(terms)}")
    return tuple(terms)


class SynapticRule(UpdateRule):
    """dw = mean_b sum_k theta_k monomial_k(pre, post, mod, w), theta meta-learned."""

    learned = True
    needs_signals = True

    def __init__(
        self,
        terms=("pre_mod", "pre_post", "post_mod", "pre_post_mod", "mod", "w", "w_post2"),
        num_layers: int = 0,
        init: str = "sgd",
        init_rate: float = 0.1,
        init_noise: float = 0.0,
        seed: int = 0,
        dtype: tf.DType = tf.float32,
        name: str = "synaptic",
    ):
        """Creates theta.

        Args:
          terms: the monomials of the rule, names from `TERMS`.
          num_layers: 0 for one theta shared by every synapse, L > 0 for one set per layer of
            an L-layer network.
          init: "sgd" (theta = init_rate on "pre_mod", 0 elsewhere: the rule starts as SGD at
            that rate) or "zero".
          init_rate: the starting SGD rate of init="sgd".
          init_noise: standard deviation of Gaussian noise added to every theta_k at the start.
          seed: seeds the noise.
          dtype: theta's dtype.
        """
        super().__init__(name=name)
        self.terms = check_terms(terms)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
            raise UserError(f"rule.num_layers must be an integer >= 0, got {num_layers!r}")
        if init not in INITS:
            raise UserError(f"rule.init must be one of {list(INITS)}, got {init!r}")
        if init == "sgd" and "pre_mod" not in self.terms:
            raise UserError("rule.init='sgd' needs the term 'pre_mod' in rule.terms")
        for field, value in (("init_rate", init_rate), ("init_noise", init_noise)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise UserError(f"rule.{field} must be a number >= 0, got {value!r}")
        self.num_layers = num_layers
        shape = (max(1, num_layers), len(self.terms))
        theta = np.zeros(shape)
        if init == "sgd":
            theta[:, self.terms.index("pre_mod")] = init_rate
        theta += init_noise * np.random.default_rng(seed).normal(size=shape)
        self.theta = tf.Variable(theta.astype(tf.as_dtype(dtype).as_numpy_dtype), name="theta")

    def coefficients(self, layer: int, dtype) -> dict:
        """{term: theta_k} of one layer's set (the shared set when num_layers is 0)."""
        row = tf.cast(self.theta[layer if self.num_layers else 0], dtype)
        return {term: row[k] for k, term in enumerate(self.terms)}

    def init(self, params):
        return EmptyState()

    def step(self, grads, state, params, signals=None):
        del grads  # the rule sees local signals only (the "pre_mod" term is minus the gradient)
        if signals is None:
            raise UserError("the synaptic rule needs local signals (problems/signals.py)")
        if self.num_layers and len(params) != 2 * self.num_layers:
            raise UserError(
                f"rule.num_layers is {self.num_layers} but the network has "
                f"{len(params) // 2} layers"
            )
        updates = [
            polynomial_update(self.coefficients(i // 2, p.dtype), p, s)
            for i, (p, s) in enumerate(zip(params, signals))
        ]
        return updates, state


class Hebbian(UpdateRule):
    """Hebb's rule with Oja's decay, a hand-designed baseline of the synaptic rule.

    dw_ij = lr * mean_b (pre_bj post_bi - decay * w_ij post_bi^2)

    (Oja, 1982, with decay = 1). It uses no error signal: on a supervised task it is what
    activity-driven plasticity alone achieves, at the rate that evaluation tunes.
    """

    needs_signals = True

    def __init__(self, learning_rate: float = 0.01, decay: float = 1.0, name: str = "hebbian"):
        super().__init__(name=name)
        self.learning_rate = tf.Variable(
            float(learning_rate), trainable=False, dtype=tf.float64, name="learning_rate"
        )
        self.decay = float(decay)

    def init(self, params):
        return EmptyState()

    def step(self, grads, state, params, signals=None):
        del grads
        if signals is None:
            raise UserError("the hebbian rule needs local signals (problems/signals.py)")
        updates = []
        for p, s in zip(params, signals):
            lr = tf.cast(self.learning_rate, p.dtype)
            c = {"pre_post": lr, "w_post2": -self.decay * lr}
            updates.append(polynomial_update(c, p, s))
        return updates, state
