"""Reptile (Nichol, Achiam and Schulman, 2018, algorithm 2, the batched version).

For a meta-batch of n tasks, adapt theta to each by k steps of the inner rule on its data
(phi_i = U^k_i(theta)) and move theta toward the adapted parameters:

    theta <- theta + epsilon * (1/n) sum_i (phi_i - theta),

with the outer step size epsilon annealed linearly to 0 over training (the paper's choice;
`meta.lr_schedule="linear"` with the SGD meta-optimizer). `outer_grad` returns
g = theta - mean_i phi_i, so that any meta-optimizer applies the step above (plain SGD with
learning rate epsilon gives it exactly). No derivative is taken: phi_i is computed without a tape.

With one inner SGD step of rate alpha, phi_i - theta = -alpha grad L_i(theta), so Reptile's
g = alpha * mean_i grad L_i(theta): a first-order step on the joint loss, scaled by alpha.
"""

import tensorflow as tf

from l2l_tf.meta.base import MetaLearner


class Reptile(MetaLearner):
    """Outer step toward the adapted parameters; theta - mean(phi) is the outer 'gradient'."""

    second_order = False

    def outer_grad(self, task, support, query):
        params = [tf.stop_gradient(p) for p in self.adapt(task, support)]
        # Reported only: the query loss after adaptation, as for the other learners.
        meta_loss = tf.reduce_mean(self.family.member_losses(params, task, query))
        grads = [v - tf.reduce_mean(p, axis=0) for v, p in zip(self.init, params)]
        return meta_loss, grads
