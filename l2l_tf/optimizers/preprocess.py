"""Gradient preprocessing for coordinatewise learned optimizers.

Andrychowicz et al. (2016), appendix A: gradients span many orders of magnitude, which an LSTM's
saturating gates handle badly, so each coordinate's gradient g is mapped to two features

    (log(|g|) / p, sign(g))   if |g| >= exp(-p)
    (-1, exp(p) * g)          otherwise,

with p = 10 in the paper. The first feature carries the magnitude, the second the sign (or, for
tiny gradients, a rescaled value).
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


PREPROCESSORS = {"none": (identity, 1), "log_sign": (log_sign, 2)}
