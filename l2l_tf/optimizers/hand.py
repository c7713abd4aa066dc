"""Hand-designed update rules: the baselines of the paper's comparisons.

Each rule follows the common textbook/PyTorch form, written out in its docstring. Learning rates
and other hyperparameters are non-trainable variables (see `UpdateRule`), so evaluation can sweep
a learning-rate grid with one compiled function per rule.
"""

from typing import NamedTuple

import tensorflow as tf

from l2l_tf.optimizers.base import UpdateRule


def _hyper(value: float, name: str) -> tf.Variable:
    # float64, so a rate like 0.05 is exact for float64 optimizees; cast per use.
    return tf.Variable(float(value), trainable=False, dtype=tf.float64, name=name)


def _cast(v: tf.Variable, like: tf.Tensor) -> tf.Tensor:
    return tf.cast(v, like.dtype)


class EmptyState(NamedTuple):
    pass


class SGD(UpdateRule):
    """Plain gradient descent: u = -lr * g."""

    def __init__(self, learning_rate: float = 0.01, name: str = "sgd"):
        super().__init__(name=name)
        self.learning_rate = _hyper(learning_rate, "learning_rate")

    def init(self, params):
        return EmptyState()

    def step(self, grads, state, params):
        return [-_cast(self.learning_rate, g) * g for g in grads], state


class MomentumState(NamedTuple):
    velocity: list


class Momentum(UpdateRule):
    """Heavy-ball momentum (Polyak, 1964), PyTorch form.

    v <- mu * v + g;  u = -lr * v.
    With `nesterov=True` (Nesterov's accelerated gradient, in the form of Sutskever et al., 2013
    as PyTorch writes it): v <- mu * v + g;  u = -lr * (g + mu * v).
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.9,
        nesterov: bool = False,
        name: str | None = None,
    ):
        super().__init__(name=name or ("nag" if nesterov else "momentum"))
        self.learning_rate = _hyper(learning_rate, "learning_rate")
        self.momentum = _hyper(momentum, "momentum")
        self.nesterov = nesterov

    def init(self, params):
        return MomentumState(velocity=[tf.zeros_like(p) for p in params])

    def step(self, grads, state, params):
        updates, velocity = [], []
        for g, v in zip(grads, state.velocity):
            lr, mu = _cast(self.learning_rate, g), _cast(self.momentum, g)
            v = mu * v + g
            direction = g + mu * v if self.nesterov else v
            updates.append(-lr * direction)
            velocity.append(v)
        return updates, MomentumState(velocity=velocity)


def NAG(learning_rate: float = 0.01, momentum: float = 0.9) -> Momentum:  # noqa: N802
    """Nesterov's accelerated gradient: `Momentum(nesterov=True)`."""
    return Momentum(learning_rate, momentum, nesterov=True, name="nag")


class RMSpropState(NamedTuple):
    mean_square: list


class RMSprop(UpdateRule):
    """RMSprop (Tieleman and Hinton, 2012).

    s <- rho * s + (1 - rho) * g^2;  u = -lr * g / (sqrt(s) + eps).
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        decay: float = 0.9,
        eps: float = 1e-8,
        name: str = "rmsprop",
    ):
        super().__init__(name=name)
        self.learning_rate = _hyper(learning_rate, "learning_rate")
        self.decay = _hyper(decay, "decay")
        self.eps = eps

    def init(self, params):
        return RMSpropState(mean_square=[tf.zeros_like(p) for p in params])

    def step(self, grads, state, params):
        updates, mean_square = [], []
        for g, s in zip(grads, state.mean_square):
            lr, rho = _cast(self.learning_rate, g), _cast(self.decay, g)
            s = rho * s + (1 - rho) * tf.square(g)
            updates.append(-lr * g / (tf.sqrt(s) + self.eps))
            mean_square.append(s)
        return updates, RMSpropState(mean_square=mean_square)


class AdamState(NamedTuple):
    count: tf.Tensor
    mu: list
    nu: list


class Adam(UpdateRule):
    """Adam (Kingma and Ba, 2015), with bias correction.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  t <- t + 1
    u = -lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        name: str = "adam",
    ):
        super().__init__(name=name)
        self.learning_rate = _hyper(learning_rate, "learning_rate")
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps

    def init(self, params):
        return AdamState(
            count=tf.zeros([], tf.int32),
            mu=[tf.zeros_like(p) for p in params],
            nu=[tf.zeros_like(p) for p in params],
        )

    def step(self, grads, state, params):
        count = state.count + 1
        updates, mu, nu = [], [], []
        for g, m, v in zip(grads, state.mu, state.nu):
            t = tf.cast(count, g.dtype)
            m = self.beta1 * m + (1 - self.beta1) * g
            v = self.beta2 * v + (1 - self.beta2) * tf.square(g)
            m_hat = m / (1 - self.beta1**t)
            v_hat = v / (1 - self.beta2**t)
            updates.append(-_cast(self.learning_rate, g) * m_hat / (tf.sqrt(v_hat) + self.eps))
            mu.append(m)
            nu.append(v)
        return updates, AdamState(count=count, mu=mu, nu=nu)
