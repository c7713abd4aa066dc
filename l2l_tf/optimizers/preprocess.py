"""Gradient preprocessing for coordinatewise learned optimizers.

Andrychowicz et al. (2016), appendix A: gradients span many orders of magnitude, which an LSTM's
saturating gates handle badly, so each coordinate's gradient g is mapped to two features

    (log(|g|) / p, sign(g))   if |g| >= exp(-p)
    (-1, exp(p) * g)          otherwise,

with p = 10 in the paper. The first feature carries the magnitude, the second the sign (or, for
tiny gradients, a rescaled value).

`adam_normalized` is the input of RNNprop (Lv, Jiang and Li, 2017, "Learning Gradient Descent:
Better Generalization and Longer Horizons"), not the 2016 paper's: per coordinate, running
averages m and v of g and g^2 (decays beta1, beta2; bias-corrected as in Adam) give the two
features

    (m_hat / (sqrt(v_hat) + eps),  g / (sqrt(v_hat) + eps)),

which do not change when the gradients are multiplied by any positive constant, so a rule
trained on one network sees the same inputs on a network whose gradients are smaller (deeper
layers) or shrink late in training. Unlike the others it has state: (m, v, t).
"""

import math

import tensorflow as tf


def identity(g: tf.Tensor) -> tf.Tensor:
    """[n] -> [n, 1]: the raw gradient as the only feature."""
    return g[:, None]


def log_sign(g: tf.Tensor, p: float = 10.0) -> tf.Tensor:
    """[n] -> [n, 2]: the paper's log/sign features (see the module docstring)."""
    threshold = math.exp(-p)
    big = tf.abs(g) >= threshold
    # Clamp before the log so the branch not taken never produces inf or NaN gradients.
    safe_abs = tf.maximum(tf.abs(g), tf.cast(threshold, g.dtype))
    first = tf.where(big, tf.math.log(safe_abs) / p, -tf.ones_like(g))
    second = tf.where(big, tf.sign(g), math.exp(p) * g)
    return tf.stack([first, second], axis=-1)


def adam_normalized(
    g: tf.Tensor, moments: tuple, beta1: float = 0.95, beta2: float = 0.95, eps: float = 1e-8
) -> tuple[tf.Tensor, tuple]:
    """[n] -> ([n, 2] features, new moments): RNNprop's scale-free inputs (module docstring).

    `moments` is (m [n], v [n], t []) as returned by the previous call, zeros at the start.
    """
    m, v, t = moments
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * tf.square(g)
    t = t + 1.0
    m_hat = m / (1.0 - beta1**t)
    denom = tf.sqrt(v / (1.0 - beta2**t)) + eps
    return tf.stack([m_hat / denom, g / denom], axis=-1), (m, v, t)


#: name -> (function, number of features per coordinate, whether it carries state).
PREPROCESSORS = {
    "none": (identity, 1, False),
    "log_sign": (log_sign, 2, False),
    "adam_normalized": (adam_normalized, 2, True),
}
