"""The lambda-return (Sutton, 1988; Sutton and Barto, 2018, section 12.1), differentiable in eta.

For a rollout of T steps with rewards r_t, per-step discounts d_t = gamma * (1 - done_t) and the
value estimates v_{t+1} = v(s_{t+1}) of the next states,

    G_t = r_t + d_t * ((1 - lambda) * v_{t+1} + lambda * G_{t+1}),   G_T = v_T  (bootstrap),

computed backwards. Where an episode is truncated at step t (a time limit, not a terminal
state), the next row belongs to a new episode, so the return stops there and bootstraps from the
value of the state the time limit interrupted: G_t = r_t + gamma * v(s_{t+1}) (lambda_t = 0,
d_t = gamma, and v_{t+1} the value of the pre-reset state). A terminated step has d_t = 0.
lambda = 0 is the one-step TD target r_t + d_t v_{t+1}; lambda = 1 the
n-step return bootstrapped from v_T. Meta-gradient RL (Xu, van Hasselt and Silver, 2018) learns
eta = (gamma, lambda), so the return is an ordinary differentiable function of both.
"""

import tensorflow as tf


def lambda_return(
    rewards: tf.Tensor,
    discounts: tf.Tensor,
    next_values: tf.Tensor,
    lambda_,
    truncated=None,
) -> tf.Tensor:
    """The lambda-returns G_0..G_{T-1} of a batch of rollouts.

    Args:
      rewards: [T, B] rewards r_t.
      discounts: [T, B] discounts d_t (gamma, or 0 where the episode ended at step t).
      next_values: [T, B] values v(s_{t+1}); the last row is the bootstrap value v_T.
      lambda_: scalar (or broadcastable) lambda in [0, 1].
      truncated: optional [T, B], 1 where the episode was truncated at step t: there the return
        is r_t + d_t * next_values[t] and does not continue into row t + 1 (pass the value of
        the pre-reset state as next_values[t] and the full discount as d_t).

    Returns:
      [T, B] lambda-returns, differentiable with respect to every input.
    """
    rewards = tf.convert_to_tensor(rewards)
    discounts = tf.convert_to_tensor(discounts, rewards.dtype)
    next_values = tf.convert_to_tensor(next_values, rewards.dtype)
    # A Python float goes straight to the rewards' dtype (tf.cast would round it via float32).
    lambda_ = (
        tf.cast(lambda_, rewards.dtype)
        if tf.is_tensor(lambda_)
        else tf.constant(lambda_, rewards.dtype)
    )

    if truncated is None:
        lambdas = tf.broadcast_to(lambda_, tf.shape(rewards))
    else:
        lambdas = lambda_ * (1 - tf.convert_to_tensor(truncated, rewards.dtype))

    def backward(g_next, r, d, v_next, lam):
        return r + d * ((1 - lam) * v_next + lam * g_next)

    length = rewards.shape[0]
    if length is None:  # dynamic length: a symbolic loop
        return tf.scan(
            lambda g, x: backward(g, *x),
            (rewards, discounts, next_values, lambdas),
            initializer=next_values[-1],
            reverse=True,
        )
    # A static length (every rollout here) is unrolled: forward-mode differentiation, used for
    # the meta-gradient trace, does not pass through tf.scan's while loop.
    g, out = next_values[-1], [None] * length
    for t in reversed(range(length)):
        g = out[t] = backward(g, rewards[t], discounts[t], next_values[t], lambdas[t])
    return tf.stack(out)
