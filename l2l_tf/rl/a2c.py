"""A batched advantage actor-critic (A2C; Mnih et al., 2016) conditioned on eta = (gamma, lambda).

The agent is a pure function of a list of parameter tensors, like a task family's loss, so the
meta-gradient can differentiate through its update (`l2l_tf/meta/mgrl.py`). Following Xu, van
Hasselt and Silver (2018, section 1.4), the policy pi(a|s, e_eta) and the value v(s, e_eta) see
an embedding e_eta = W_eta [gamma, lambda] + b_eta of the meta-parameters, concatenated to the
observation, because the value of a state depends on the return being predicted.

The A2C loss of a rollout tau of T steps on B environments is

    J(tau, theta, eta) = -mean_t,b[ A_t log pi(a_t|s_t) ]
                         + c_v/2 mean_t,b[ (G_t - v(s_t))^2 ] - c_e mean_t,b[ H(pi(.|s_t)) ],

with G_t the lambda-return of `returns.lambda_return` under eta and A_t = G_t - v(s_t). G and A
are computed with theta held constant (the usual semi-gradient: targets are not trained towards
the estimate) but remain functions of eta, through gamma, lambda and the embedding, so that
d theta' / d eta sees every way eta shapes the update. An episode that terminates gets discount
0 at its last step; one truncated by the time limit bootstraps there from the value of the state
the limit interrupted (the rollout keeps that pre-reset observation), G_t = r_t + gamma v(s_T),
since that state is not terminal (Pardo et al., 2018, "Time limits in reinforcement learning").
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l_tf.errors import UserError
from l2l_tf.rl.envs import Environment
from l2l_tf.rl.returns import lambda_return


class Trajectory(NamedTuple):
    """A rollout of T steps on B environments (time-major)."""

    observations: tf.Tensor  # [T + 1, B, obs]; the last row is the bootstrap state
    actions: tf.Tensor  # [T, B] int32
    rewards: tf.Tensor  # [T, B]
    terminated: tf.Tensor  # [T, B] 1.0 where the episode reached a terminal state at step t
    truncated: tf.Tensor  # [T, B] 1.0 where the time limit cut the episode at step t
    final_observations: tf.Tensor  # [T, B, obs] the state step t reached, before any reset


#: What the eta embedding is a function of (`agent.embedding_input`; see `ActorCritic`).
EMBEDDING_INPUTS = ("eta", "eta_change")


def check_embedding_input(value: str) -> None:
    """Raises UserError unless `value` names an `agent.embedding_input`."""
    if value not in EMBEDDING_INPUTS:
        raise UserError(
            f"agent.embedding_input must be one of {list(EMBEDDING_INPUTS)}, got {value!r}"
        )


class ActorCritic:
    """Policy and value MLPs (tanh) with the eta embedding concatenated to their input.

    params = [W_eta, b_eta, (W, b) per policy layer..., (W, b) per value layer...].

    embedding_input "eta" (the paper's): e = W_eta eta + b_eta. For a fixed eta that is a set of
    `embedding_size` constant inputs: with their first-layer weights, W_eta and b_eta, extra
    parameters that each move every hidden unit's bias, by about the learning rate per step
    under Adam whatever their gradient's scale. "eta_change": e = W_eta (eta - eta_start), no
    bias (b_eta stays in params, at 0 with a zero gradient, so the layout is the same), with
    eta_start the run's initial eta (`eta_start`, a variable the learner sets at each reset):
    both networks still see eta, through how it has moved, but a fixed eta feeds them exactly 0.
    """

    def __init__(
        self,
        observation_size: int,
        num_actions: int,
        hidden_sizes=(64, 64),
        embedding_size: int = 16,
        dtype=tf.float32,
        embedding_input: str = "eta",
    ):
        hidden_sizes = tuple(hidden_sizes)
        if not hidden_sizes or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden_sizes
        ):
            raise UserError(
                f"agent.hidden_sizes must be a non-empty tuple of positive integers, "
                f"got {hidden_sizes!r}"
            )
        if isinstance(embedding_size, bool) or not isinstance(embedding_size, int):
            raise UserError(f"agent.embedding_size must be an integer, got {embedding_size!r}")
        if embedding_size < 0:
            raise UserError(f"agent.embedding_size must be >= 0, got {embedding_size}")
        check_embedding_input(embedding_input)
        self.embedding_input = embedding_input
        self.observation_size = observation_size
        self.num_actions = num_actions
        self.hidden_sizes = hidden_sizes
        self.embedding_size = embedding_size
        self.dtype = tf.as_dtype(dtype)
        self._policy_sizes = (observation_size + embedding_size, *hidden_sizes, num_actions)
        self._value_sizes = (observation_size + embedding_size, *hidden_sizes, 1)
        # The origin of the "eta_change" embedding (unused with "eta").
        self.eta_start = tf.Variable(tf.zeros([2], self.dtype), trainable=False, name="eta_start")

    def init_params(self, seed: tf.Tensor) -> list[tf.Tensor]:
        """Glorot-scaled normal weights, zero biases; small policy and embedding outputs."""
        seeds = iter(tf.unstack(tf.random.experimental.stateless_split(seed, 2 + 2 * 16)))
        params = []
        e = max(self.embedding_size, 1)
        params.append(self._normal(next(seeds), [2, self.embedding_size], 1.0 / np.sqrt(2 * e)))
        params.append(tf.zeros([self.embedding_size], self.dtype))
        for sizes, last_scale in ((self._policy_sizes, 0.01), (self._value_sizes, 1.0)):
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                last = i == len(sizes) - 2
                scale = (last_scale if last else 1.0) * np.sqrt(2.0 / (n_in + n_out))
                params.append(self._normal(next(seeds), [n_in, n_out], scale))
                params.append(tf.zeros([n_out], self.dtype))
        return params

    def _normal(self, seed, shape, scale):
        return tf.random.stateless_normal(shape, seed, stddev=scale, dtype=self.dtype)

    def __call__(self, params, observations: tf.Tensor, eta: tf.Tensor):
        """(logits [N, A], values [N]) for observations [N, obs] and eta = [gamma, lambda]."""
        n = tf.shape(observations)[0]
        eta = tf.cast(eta, self.dtype)
        if self.embedding_input == "eta_change":
            # 0 * b_eta keeps b_eta in the graph (a zero gradient rather than None).
            embedding = tf.linalg.matvec(params[0], eta - self.eta_start, transpose_a=True)
            embedding = embedding + 0.0 * params[1]
        else:
            embedding = tf.linalg.matvec(params[0], eta, transpose_a=True) + params[1]
        x = tf.concat(
            [tf.cast(observations, self.dtype), tf.tile(embedding[None], [n, 1])], axis=-1
        )
        num_layers = len(self._policy_sizes) - 1
        policy = params[2 : 2 + 2 * num_layers]
        value = params[2 + 2 * num_layers :]
        return self._mlp(policy, x), self._mlp(value, x)[:, 0]

    @staticmethod
    def _mlp(layers, x):
        for i in range(0, len(layers), 2):
            x = tf.matmul(x, layers[i]) + layers[i + 1]
            if i < len(layers) - 2:
                x = tf.tanh(x)
        return x


def _flat(x):
    """[T, B, ...] -> [T * B, ...]."""
    return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))


def _evaluate(agent, params, traj, eta):
    """Logits [T, B, A] of the taken steps and values [T + 1, B] of every state."""
    t, b = tf.shape(traj.actions)[0], tf.shape(traj.actions)[1]
    logits, values = agent(params, _flat(traj.observations), eta)
    logits = tf.reshape(logits, [t + 1, b, agent.num_actions])[:-1]
    return logits, tf.reshape(values, [t + 1, b])


def returns_and_advantages(agent, params, traj: Trajectory, eta: tf.Tensor, input_eta=None):
    """(G, A) [T, B] under eta, with theta held constant (eta stays differentiable).

    `input_eta` is the eta fed to the networks (default: eta itself).
    """
    params = [tf.stop_gradient(p) for p in params]
    input_eta = eta if input_eta is None else tf.cast(input_eta, agent.dtype)
    _, values = _evaluate(agent, params, traj, input_eta)
    # Where the time limit cut an episode, the next row is a fresh start: bootstrap from the
    # value of the interrupted state instead.
    truncated = tf.cast(traj.truncated, agent.dtype)
    _, final_values = agent(params, _flat(traj.final_observations), input_eta)
    final_values = tf.reshape(final_values, tf.shape(truncated))
    next_values = tf.where(truncated > 0, final_values, values[1:])
    gamma, lambda_ = eta[0], eta[1]
    discounts = gamma * (1.0 - tf.cast(traj.terminated, agent.dtype))
    rewards = tf.cast(traj.rewards, agent.dtype)
    returns = lambda_return(rewards, discounts, next_values, lambda_, truncated)
    return returns, returns - values[:-1]


def _log_probs(logits, actions):
    log_pi = tf.nn.log_softmax(logits)
    taken = tf.gather(log_pi, actions, axis=-1, batch_dims=2)
    entropy = -tf.reduce_sum(tf.exp(log_pi) * log_pi, axis=-1)
    return taken, entropy


def a2c_loss(
    agent: ActorCritic,
    params,
    traj: Trajectory,
    eta: tf.Tensor,
    value_coef: float,
    entropy_coef: float,
    targets=None,
):
    """The A2C loss J(tau, theta, eta) of the module docstring.

    Args:
      agent, params, traj, eta: the agent, theta, the rollout tau and (gamma, lambda).
      value_coef, entropy_coef: c_v and c_e.
      targets: (G, A) [T, B] to use instead of computing them from `params` (tests pass the
        targets of the unperturbed parameters to finite-difference the meta-objective).

    Returns:
      (loss, {"policy_loss", "value_loss", "entropy"}) as scalars.
    """
    eta = tf.cast(eta, agent.dtype)
    if targets is None:
        returns, advantages = returns_and_advantages(agent, params, traj, eta)
    else:
        returns, advantages = (tf.stop_gradient(t) for t in targets)
    logits, values = _evaluate(agent, params, traj, eta)
    log_pi_a, entropy = _log_probs(logits, traj.actions)
    policy_loss = -tf.reduce_mean(advantages * log_pi_a)
    value_loss = 0.5 * tf.reduce_mean(tf.square(returns - values[:-1]))
    entropy = tf.reduce_mean(entropy)
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def policy_gradient_objective(
    agent: ActorCritic,
    params,
    traj: Trajectory,
    eta_ref: tf.Tensor,
    advantages=None,
    input_eta=None,
):
    """The meta-objective J'(tau', theta', eta') = -mean[ A'_t log pi(a_t|s_t, eta') ].

    A' uses the reference return (gamma', lambda') and is a constant: the meta-gradient flows
    through log pi only, i.e. through the updated parameters theta' (Xu et al., 2018).

    Args:
      agent, params, traj: the agent, theta' and the validation rollout tau'.
      eta_ref: the reference (gamma', lambda').
      advantages: A' [T, B] to use instead of computing it from `params` (tests pass the
        advantages of the unperturbed theta' to finite-difference this surrogate).
      input_eta: the eta fed to the networks (default: eta_ref, as in the paper).
    """
    eta_ref = tf.cast(eta_ref, agent.dtype)
    input_eta = eta_ref if input_eta is None else tf.cast(input_eta, agent.dtype)
    if advantages is None:
        _, advantages = returns_and_advantages(agent, params, traj, eta_ref, input_eta)
    logits, _ = _evaluate(agent, params, traj, input_eta)
    log_pi_a, _ = _log_probs(logits, traj.actions)
    return -tf.reduce_mean(tf.stop_gradient(advantages) * log_pi_a)


class RolloutState(NamedTuple):
    env_state: object
    episode_return: tf.Tensor  # [B] undiscounted return of each environment's current episode


def rollout(
    env: Environment,
    agent: ActorCritic,
    params,
    eta: tf.Tensor,
    state: RolloutState,
    seed: tf.Tensor,
    length: int,
):
    """Runs the policy for `length` steps on every environment (traceable, no gradients).

    Args:
      env, agent, params, eta: the environment and the policy pi(.|s, eta; params).
      state: environment state and running episode returns, from the previous rollout.
      seed: stateless seed; step t samples actions and resets from fold_in(seed, t).
      length: T, a Python int.

    Returns:
      (trajectory, new state, completed-episode statistics {"return_sum", "episodes"}).
    """
    params = [tf.stop_gradient(p) for p in params]
    env_state, episode_return = state
    obs_ta = tf.TensorArray(tf.float32, size=length + 1)
    act_ta = tf.TensorArray(tf.int32, size=length)
    rew_ta = tf.TensorArray(tf.float32, size=length)
    term_ta = tf.TensorArray(tf.float32, size=length)
    trunc_ta = tf.TensorArray(tf.float32, size=length)
    final_ta = tf.TensorArray(tf.float32, size=length)
    return_sum = tf.zeros([], tf.float32)
    episodes = tf.zeros([], tf.float32)
    for t in tf.range(length):
        obs = env.observe(env_state)
        logits, _ = agent(params, obs, eta)
        step_seeds = tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(seed, t), 2
        )
        action = tf.random.stateless_categorical(
            tf.cast(logits, tf.float32), 1, step_seeds[0], dtype=tf.int32
        )[:, 0]
        env_state, reward, terminated, truncated, final_obs = env.step(
            env_state, action, step_seeds[1]
        )
        done = tf.cast(terminated | truncated, tf.float32)
        episode_return = episode_return + reward
        return_sum += tf.reduce_sum(episode_return * done)
        episodes += tf.reduce_sum(done)
        episode_return = episode_return * (1.0 - done)
        obs_ta = obs_ta.write(t, obs)
        act_ta = act_ta.write(t, action)
        rew_ta = rew_ta.write(t, reward)
        term_ta = term_ta.write(t, tf.cast(terminated, tf.float32))
        trunc_ta = trunc_ta.write(t, tf.cast(truncated, tf.float32))
        final_ta = final_ta.write(t, final_obs)
    obs_ta = obs_ta.write(length, env.observe(env_state))
    traj = Trajectory(
        obs_ta.stack(),
        act_ta.stack(),
        rew_ta.stack(),
        term_ta.stack(),
        trunc_ta.stack(),
        final_ta.stack(),
    )
    stats = {"return_sum": return_sum, "episodes": episodes}
    return traj, RolloutState(env_state, episode_return), stats
