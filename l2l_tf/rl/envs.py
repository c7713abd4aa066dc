"""Batched environments whose step is TensorFlow ops, so a whole rollout compiles into one graph.

An `Environment` is stateless Python: the state of `num_envs` copies is a nest of tensors with a
leading batch axis, passed in and out explicitly (like an update rule's state), so a rollout is a
`tf.range` loop inside `tf.function` with no Python in the loop. Every `step` resets the copies
whose episode ended (auto-reset) from a stateless seed, so a rollout never stops.

    state = env.reset(seed, num_envs)
    obs = env.observe(state)                                   # [num_envs, observation_size]
    state, reward, terminated, truncated, final_obs = env.step(state, action, seed)

`reward`, `terminated` and `truncated` describe the transition just taken; the returned state is
already the first state of the next episode where `terminated | truncated`. `terminated` means
the episode reached a terminal state (its value is 0); `truncated` means it was cut by a time
limit in a state that has a value, so a return bootstraps from v(final_obs), the observation of
the state the transition reached before the reset (equal to `observe(state)` where not done).
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l_tf.errors import UserError


class Environment:
    """Base class of batched environments (see the module docstring)."""

    name: str = ""
    num_actions: int = 0
    observation_size: int = 0

    def reset(self, seed: tf.Tensor, num_envs: int):
        """The initial state of `num_envs` copies, from a stateless seed (shape [2])."""
        raise NotImplementedError

    def observe(self, state) -> tf.Tensor:
        """Float32 observations [num_envs, observation_size]."""
        raise NotImplementedError

    def step(self, state, action: tf.Tensor, seed: tf.Tensor):
        """One transition of every copy, then auto-reset of the copies whose episode ended.

        Args:
          state: the batched state.
          action: int32 [num_envs].
          seed: stateless seed for the resets.

        Returns:
          (next_state, reward float32 [num_envs], terminated bool, truncated bool,
           final_observation float32 [num_envs, observation_size] before any reset).
        """
        raise NotImplementedError


def _where(done, fresh, old):
    return tf.nest.map_structure(lambda a, b: tf.where(done, a, b), fresh, old)


class CartPoleState(NamedTuple):
    x: tf.Tensor
    x_dot: tf.Tensor
    theta: tf.Tensor
    theta_dot: tf.Tensor
    t: tf.Tensor  # steps taken in the current episode (int32)


class CartPole(Environment):
    """The cart-pole balancing task (Barto, Sutton and Anderson, 1983), as in Gym's CartPole-v1.

    A pole hinged on a cart; action 1 pushes the cart right with force F, action 0 left. With
    total mass m = m_c + m_p and l the pole's half-length, the frictionless dynamics are

        temp    = (F_signed + m_p l theta_dot^2 sin theta) / m
        theta'' = (g sin theta - cos theta temp) / (l (4/3 - m_p cos^2 theta / m))
        x''     = temp - m_p l theta'' cos theta / m

    integrated with explicit Euler steps of tau seconds (positions first from the old
    velocities). The reward is 1 for every step, including the last; an episode terminates when
    |x| > 2.4 m or |theta| > 12 degrees, and is truncated after `max_steps` (500 in v1). Initial
    states are uniform in [-0.05, 0.05]^4. Computed in float32, like Gym's numpy version.
    """

    name = "cartpole"
    num_actions = 2
    observation_size = 4

    def __init__(
        self,
        max_steps: int = 500,
        gravity: float = 9.8,
        cart_mass: float = 1.0,
        pole_mass: float = 0.1,
        half_length: float = 0.5,
        force: float = 10.0,
        tau: float = 0.02,
        x_threshold: float = 2.4,
        theta_threshold_degrees: float = 12.0,
    ):
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise UserError(f"env.max_steps must be a positive integer, got {max_steps!r}")
        self.max_steps = max_steps
        self.gravity = gravity
        self.cart_mass = cart_mass
        self.pole_mass = pole_mass
        self.half_length = half_length
        self.force = force
        self.tau = tau
        self.x_threshold = x_threshold
        self.theta_threshold = theta_threshold_degrees * 2 * math.pi / 360

    def reset(self, seed, num_envs):
        u = tf.random.stateless_uniform([4, num_envs], seed, -0.05, 0.05, dtype=tf.float32)
        return CartPoleState(u[0], u[1], u[2], u[3], tf.zeros([num_envs], tf.int32))

    def observe(self, state):
        return tf.stack([state.x, state.x_dot, state.theta, state.theta_dot], axis=-1)

    def dynamics(self, state: CartPoleState, action: tf.Tensor) -> CartPoleState:
        """One Euler step of the equations above (no termination, no reset)."""
        total_mass = self.cart_mass + self.pole_mass
        pole_ml = self.pole_mass * self.half_length
        force = tf.where(action == 1, self.force, -self.force)
        cos, sin = tf.cos(state.theta), tf.sin(state.theta)
        temp = (force + pole_ml * tf.square(state.theta_dot) * sin) / total_mass
        theta_acc = (self.gravity * sin - cos * temp) / (
            self.half_length * (4.0 / 3.0 - self.pole_mass * tf.square(cos) / total_mass)
        )
        x_acc = temp - pole_ml * theta_acc * cos / total_mass
        return CartPoleState(
            x=state.x + self.tau * state.x_dot,
            x_dot=state.x_dot + self.tau * x_acc,
            theta=state.theta + self.tau * state.theta_dot,
            theta_dot=state.theta_dot + self.tau * theta_acc,
            t=state.t + 1,
        )

    def step(self, state, action, seed):
        nxt = self.dynamics(state, action)
        terminated = (tf.abs(nxt.x) > self.x_threshold) | (tf.abs(nxt.theta) > self.theta_threshold)
        truncated = (nxt.t >= self.max_steps) & ~terminated
        reward = tf.ones_like(nxt.x)
        done = terminated | truncated
        fresh = self.reset(seed, tf.shape(action)[0])
        return _where(done, fresh, nxt), reward, terminated, truncated, self.observe(nxt)


class ChainState(NamedTuple):
    position: tf.Tensor  # int32 in [0, length - 1]
    t: tf.Tensor


class Chain(Environment):
    """A corridor with a small reward near the start and a large one far away.

    States 0..length-1; the agent starts at `start`; action 0 moves left, action 1 right. Stepping
    onto state 0 pays `near_reward` and ends the episode, stepping onto state length-1 pays
    `far_reward` and ends it; every other step pays 0. Episodes are truncated after `max_steps`.
    The observation is the one-hot position.

    Why the best discount is known: with d_near = start and d_far = length - 1 - start steps to
    the two ends, the discounted values of walking straight to either end are
    gamma^(d_near - 1) r_near and gamma^(d_far - 1) r_far, so the gamma-optimal policy goes to the
    far end exactly when

        gamma > gamma* = (r_near / r_far) ** (1 / (d_far - d_near)).

    With the defaults (length 10, start 2, rewards 1 and 10) gamma* = 10^(-1/5) = 0.631; the far
    end also pays more per step (10 / 7 > 1 / 2), so any gamma above gamma* gives the policy that
    maximizes the undiscounted return and the reward rate, and any gamma below it the myopic one.
    `gamma_star` returns the threshold; tests/test_rl.py checks it by value iteration.
    """

    name = "chain"

    def __init__(
        self,
        length: int = 10,
        start: int = 2,
        near_reward: float = 1.0,
        far_reward: float = 10.0,
        max_steps: int = 50,
    ):
        for field, value in (("length", length), ("start", start), ("max_steps", max_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"env.{field} must be a positive integer, got {value!r}")
        if length < 3 or not 0 < start < length - 1:
            raise UserError(
                f"env.start must lie strictly inside the chain (0 < start < {length - 1}), "
                f"got {start} with env.length={length}"
            )
        if not 0 < near_reward < far_reward:
            raise UserError(
                "env.near_reward and env.far_reward must satisfy 0 < near_reward < far_reward, "
                f"got {near_reward!r} and {far_reward!r}"
            )
        self.length = length
        self.start = start
        self.near_reward = float(near_reward)
        self.far_reward = float(far_reward)
        self.max_steps = max_steps
        self.num_actions = 2
        self.observation_size = length

    def gamma_star(self) -> float:
        """The discount above which the gamma-optimal policy walks to the far end."""
        d_near, d_far = self.start, self.length - 1 - self.start
        if d_far <= d_near:
            return 0.0  # the large reward is also the nearer one
        return (self.near_reward / self.far_reward) ** (1.0 / (d_far - d_near))

    def reset(self, seed, num_envs):
        del seed  # deterministic start
        return ChainState(
            tf.fill([num_envs], tf.constant(self.start, tf.int32)),
            tf.zeros([num_envs], tf.int32),
        )

    def observe(self, state):
        return tf.one_hot(state.position, self.length, dtype=tf.float32)

    def step(self, state, action, seed):
        position = state.position + 2 * tf.cast(action, tf.int32) - 1
        t = state.t + 1
        at_near, at_far = position <= 0, position >= self.length - 1
        reward = tf.where(at_near, self.near_reward, 0.0) + tf.where(at_far, self.far_reward, 0.0)
        terminated = at_near | at_far
        truncated = (t >= self.max_steps) & ~terminated
        done = terminated | truncated
        fresh = self.reset(seed, tf.shape(action)[0])
        reached = ChainState(position, t)
        return _where(done, fresh, reached), reward, terminated, truncated, self.observe(reached)


class GymnasiumEnv(Environment):
    """Adapter running `num_envs` Gymnasium environments inside the graph via `tf.numpy_function`.

    The environments live in Python (their state is not a tensor), so the rollout is not one
    pure graph and `reset`'s seed only seeds the first reset; the tensor state carried through
    the rollout is a dummy counter. Needs the optional extra `pip install -e ".[gym]"`, except
    when `make_env` (a zero-argument factory of Gymnasium-like environments) is given.
    """

    def __init__(self, env_id: str = "CartPole-v1", make_env=None):
        if make_env is None:
            try:
                import gymnasium
            except ImportError:
                raise UserError(
                    'env.name "gymnasium" needs the gymnasium package: pip install -e ".[gym]"'
                ) from None
            make_env = lambda: gymnasium.make(env_id)  # noqa: E731
        self.name = f"gymnasium:{env_id}"
        self._make_env = make_env
        probe = make_env()
        self.num_actions = int(probe.action_space.n)
        self.observation_size = int(np.prod(probe.observation_space.shape))
        self._envs = []
        self._obs = None

    def _reset_py(self, seed, num_envs):
        num_envs = int(num_envs)
        self._envs = [self._make_env() for _ in range(num_envs)]
        base = int(np.asarray(seed).astype(np.int64).sum() % (2**31))
        self._obs = np.stack(
            [
                np.asarray(e.reset(seed=base + i)[0], np.float32).ravel()
                for i, e in enumerate(self._envs)
            ]
        )
        return np.zeros([num_envs], np.int32)

    def _step_py(self, action):
        rewards, terms, truncs = [], [], []
        final = np.empty_like(self._obs)
        for i, (env, a) in enumerate(zip(self._envs, action)):
            obs, reward, term, trunc, _ = env.step(int(a))
            final[i] = np.asarray(obs, np.float32).ravel()
            if term or trunc:
                obs, _ = env.reset()
            self._obs[i] = np.asarray(obs, np.float32).ravel()
            rewards.append(reward)
            terms.append(term)
            truncs.append(trunc)
        return (
            np.asarray(rewards, np.float32),
            np.asarray(terms, bool),
            np.asarray(truncs, bool),
            final,
        )

    def reset(self, seed, num_envs):
        out = tf.numpy_function(self._reset_py, [seed, num_envs], tf.int32, stateful=True)
        return tf.ensure_shape(out, [num_envs])

    def observe(self, state):
        # Depends on `state` so the read is ordered after the step that produced it.
        obs = tf.numpy_function(lambda s: self._obs.copy(), [state], tf.float32, stateful=True)
        return tf.reshape(obs, [-1, self.observation_size])

    def step(self, state, action, seed):
        del seed  # Gymnasium resets from each environment's own generator
        reward, terminated, truncated, final = tf.numpy_function(
            self._step_py, [action], [tf.float32, tf.bool, tf.bool, tf.float32], stateful=True
        )
        n = tf.shape(action)
        reward = tf.reshape(reward, n)
        terminated = tf.reshape(terminated, n)
        truncated = tf.reshape(truncated, n)
        final = tf.reshape(final, [-1, self.observation_size])
        with tf.control_dependencies([reward]):
            state = tf.identity(state) + 1
        return state, reward, terminated, truncated, final
