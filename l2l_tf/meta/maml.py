"""Model-agnostic meta-learning and its first-order and Meta-SGD variants.

MAML (Finn et al., 2017, algorithm 2): for tasks T_i with support and query sets,

    phi_i = theta - alpha grad_theta L_support_i(theta)      (k such steps in general)
    theta <- theta - beta grad_theta sum_i L_query_i(phi_i).

The outer gradient is taken *through* the inner steps: d phi_i / d theta = I - alpha H_i (a
product of such factors over k steps), so Hessian-vector products of the support loss appear.

First-order MAML (same paper, section 5.2) stops the inner gradients, so d phi_i / d theta = I
and the outer gradient is grad L_query_i evaluated at phi_i.

Meta-SGD (Li et al., 2017) replaces the scalar alpha with a learned vector of per-parameter rates
(`PerParameterSGD`) and meta-learns (theta, alpha) together with the same outer gradient.
"""

import tensorflow as tf

from l2l_tf.meta.base import MetaLearner
from l2l_tf.optimizers.per_parameter import PerParameterSGD


class MAML(MetaLearner):
    """Second-order MAML: the outer gradient flows through the inner gradient steps."""

    second_order = True

    def outer_grad(self, task, support, query):
        with tf.GradientTape() as tape:
            params = self.adapt(task, support)
            meta_loss = tf.reduce_mean(self.family.member_losses(params, task, query))
        variables = self.meta_params
        grads = tape.gradient(meta_loss, variables)
        # A variable the loss does not reach (possible with 0 inner steps) gets a zero gradient.
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        return meta_loss, grads


class FOMAML(MAML):
    """First-order MAML: inner gradients are constants, so d phi / d theta = I."""

    second_order = False


class MetaSGD(MAML):
    """Meta-SGD: MAML whose inner rule has learned per-parameter rates, learned with theta."""

    def __init__(self, family, init_params, inner_rule: PerParameterSGD, num_inner_steps, **kw):
        if not isinstance(inner_rule, PerParameterSGD):
            raise TypeError("MetaSGD's inner rule must be a PerParameterSGD")
        super().__init__(family, init_params, inner_rule, num_inner_steps, **kw)

    @property
    def meta_params(self):
        return list(self.init) + list(self.inner_rule.rates)
