"""The lambda-return (Sutton, 1988; Sutton and Barto, 2018, section 12.1), differentiable in eta.

For a rollout of T steps with rewards r_t, per-step discounts d_t = gamma * (1 - done_t) and the
value estimates v_{t+1} = v(s_{t+1}) of the next states,

    G_t = r_t + d_t * ((1 - lambda) * v_{t+1} + lambda * G_{t+1}),   G_T = v_T  (bootstrap),

computed backwards. lambda = 0 is the one-step TD target r_t + d_t v_{t+1}; lambda = 1 the
n-step return bootstrapped from v_T. Meta-gradient RL (Xu, van Hasselt and Silver, 2018) learns
eta = (gamma, lambda), so the return is an ordinary differentiable function of both.
"""

import tensorflow as tf


def lambda_return(
    rewards: tf.Tensor,
    discounts: tf.Tensor,
    next_values: tf.Tensor,
    lambda_,
) -> tf.Tensor:
    """The lambda-returns G_0..G_{T-1} of a batch of rollouts.

    Args:
      rewards: [T, B] rewards r_t.
      discounts: [T, B] discounts d_t (gamma, or 0 where the episode ended at step t).
      next_values: [T, B] values v(s_{t+1}); the last row is the bootstrap value v_T.
      lambda_: scalar (or broadcastable) lambda in [0, 1].

    Returns:
      [T, B] lambda-returns, differentiable with respect to every input.
    """
    lambda_ = tf.cast(lambda_, rewards.dtype)

    def backward(g_next, inputs):
        r, d, v_next = inputs
        return r + d * ((1 - lambda_) * v_next + lambda_ * g_next)

    return tf.scan(
        backward, (rewards, discounts, next_values), initializer=next_values[-1], reverse=True
    )
