"""Environments, the lambda-return and the eta-conditioned actor-critic against numpy references."""

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf.errors import UserError
from l2l_tf.rl import make_env
from l2l_tf.rl.a2c import (
    ActorCritic,
    RolloutState,
    Trajectory,
    a2c_loss,
    returns_and_advantages,
    rollout,
)
from l2l_tf.rl.envs import CartPole, CartPoleState, Chain, GymnasiumEnv
from l2l_tf.rl.returns import lambda_return


def numpy_cartpole_step(s, action):
    """The reference equations (Barto et al., 1983; Gym's CartPole-v1 constants), float64."""
    gravity, m_c, m_p, half, f, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    x, x_dot, th, th_dot = s
    force = np.where(action == 1, f, -f)
    temp = (force + m_p * half * th_dot**2 * np.sin(th)) / (m_c + m_p)
    th_acc = (gravity * np.sin(th) - np.cos(th) * temp) / (
        half * (4.0 / 3.0 - m_p * np.cos(th) ** 2 / (m_c + m_p))
    )
    x_acc = temp - m_p * half * th_acc * np.cos(th) / (m_c + m_p)
    x, x_dot = x + tau * x_dot, x_dot + tau * x_acc
    th, th_dot = th + tau * th_dot, th_dot + tau * th_acc
    done = (np.abs(x) > 2.4) | (np.abs(th) > 12 * 2 * np.pi / 360)
    return np.stack([x, x_dot, th, th_dot]), done


def test_cartpole_matches_the_reference_equations():
    env = CartPole()
    rng = np.random.default_rng(0)
    s = rng.uniform(-0.05, 0.05, size=(4, 8))
    state = CartPoleState(*[tf.constant(v, tf.float32) for v in s], tf.zeros([8], tf.int32))
    for _ in range(30):  # a trajectory, compared at every step while no copy has ended
        action = rng.integers(0, 2, size=8)
        s, done = numpy_cartpole_step(s, action)
        state, reward, terminated, truncated, final = env.step(
            state, tf.constant(action, tf.int32), [0, 0]
        )
        np.testing.assert_array_equal(terminated.numpy(), done)
        # The pre-reset observation is the reference state, also for the copies that ended.
        np.testing.assert_allclose(final.numpy().T, s, rtol=1e-4, atol=1e-5)
        if done.any():
            break
        np.testing.assert_allclose(env.observe(state).numpy().T, s, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(reward.numpy(), np.ones(8))
        assert not truncated.numpy().any()


def test_cartpole_terminates_resets_and_truncates_at_500():
    env = CartPole()
    # Copy 0 leaves the track, copy 1 tips past 12 degrees, copy 2 reaches the time limit.
    state = CartPoleState(
        x=tf.constant([2.399, 0.0, 0.0]),
        x_dot=tf.constant([1.0, 0.0, 0.0]),
        theta=tf.constant([0.0, 0.2094, 0.0]),
        theta_dot=tf.constant([0.0, 1.0, 0.0]),
        t=tf.constant([3, 3, 499]),
    )
    state, reward, terminated, truncated, final = env.step(state, tf.constant([1, 1, 0]), [1, 2])
    assert terminated.numpy().tolist() == [True, True, False]
    assert truncated.numpy().tolist() == [False, False, True]
    assert reward.numpy().tolist() == [1.0, 1.0, 1.0]
    assert state.t.numpy().tolist() == [0, 0, 0]  # all three were reset
    assert np.all(np.abs(env.observe(state).numpy()) <= 0.05)
    # The observations before the reset: off the track, tipped, and the truncated state.
    final = final.numpy()
    assert final[0, 0] > 2.4 and final[1, 2] > 0.2094 and final[2, 1] < 0  # pushed left


def chain_value_iteration(env: Chain, gamma: float) -> int:
    """The gamma-optimal action at the start state, by value iteration in numpy."""
    n = env.length
    v = np.zeros(n)
    for _ in range(2000):
        q = np.zeros((n, 2))
        for s in range(1, n - 1):
            for a, s2 in ((0, s - 1), (1, s + 1)):
                r = env.near_reward if s2 == 0 else env.far_reward if s2 == n - 1 else 0.0
                q[s, a] = r + (0.0 if s2 in (0, n - 1) else gamma * v[s2])
        v = q.max(axis=1)
    return int(np.argmax(q[env.start]))


def test_chain_best_discount_is_the_documented_threshold():
    env = Chain()
    assert env.gamma_star() == pytest.approx(10 ** (-1 / 5))
    assert chain_value_iteration(env, env.gamma_star() - 0.02) == 0  # myopic: near reward
    assert chain_value_iteration(env, env.gamma_star() + 0.02) == 1  # far reward


def test_chain_config_threshold_lies_inside_its_gamma_grid():
    """configs/mgrl_chain.py: distractor 3, gamma* = 0.3^(1/5) = 0.786, grid on both sides."""
    from configs import mgrl_chain

    c = mgrl_chain.get_config()
    env = Chain(c.env.length, c.env.start, c.env.near_reward, c.env.far_reward, c.env.max_steps)
    assert env.gamma_star() == pytest.approx(0.3 ** (1 / 5))
    assert chain_value_iteration(env, env.gamma_star() - 0.02) == 0
    assert chain_value_iteration(env, env.gamma_star() + 0.02) == 1
    assert min(c.eval.gammas) < env.gamma_star() < max(c.eval.gammas)
    assert c.meta.init_gamma < env.gamma_star()


def test_chain_dynamics_rewards_and_reset():
    env = Chain(length=5, start=1, max_steps=3)
    state = env.reset([0, 0], 2)
    state, reward, terminated, _, final = env.step(state, tf.constant([0, 1]), [0, 0])
    assert reward.numpy().tolist() == [1.0, 0.0] and terminated.numpy().tolist() == [True, False]
    assert state.position.numpy().tolist() == [1, 2]  # copy 0 was reset to the start
    np.testing.assert_array_equal(final.numpy(), np.eye(5)[[0, 2]])  # before the reset
    for _ in range(2):
        state, reward, terminated, truncated, _ = env.step(state, tf.constant([1, 1]), [0, 0])
    assert reward.numpy().tolist() == [0.0, 10.0] and terminated.numpy().tolist() == [False, True]
    assert not truncated.numpy().any()
    np.testing.assert_array_equal(env.observe(state).numpy()[1], np.eye(5)[1])
    # Copy 0's third step (from 3 back to 2) hits the time limit: truncated, not terminated.
    state, reward, terminated, truncated, final = env.step(state, tf.constant([0, 0]), [0, 0])
    assert terminated.numpy().tolist() == [False, True]  # copy 1 walked to the near end
    assert truncated.numpy().tolist() == [True, False]
    assert reward.numpy().tolist() == [0.0, 1.0]
    np.testing.assert_array_equal(final.numpy(), np.eye(5)[[2, 0]])
    np.testing.assert_array_equal(env.observe(state).numpy(), np.eye(5)[[1, 1]])


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"name": "chain", "start": 0}, "env.start"),
        ({"name": "chain", "far_reward": 0.5}, "far_reward"),
        ({"name": "cartpole", "max_steps": 0}, "env.max_steps"),
        ({"name": "cartpole", "bogus": 1}, "bogus"),
        ({"name": "pong"}, "unknown environment 'pong'"),
    ],
)
def test_bad_env_fields_are_named(cfg, message):
    with pytest.raises(UserError, match=message):
        make_env(cfg)


def numpy_lambda_return(r, d, v_next, lam):
    g = v_next[-1].copy()
    out = np.zeros_like(r)
    for t in reversed(range(len(r))):
        g = r[t] + d[t] * ((1 - lam) * v_next[t] + lam * g)
        out[t] = g
    return out


@pytest.mark.parametrize("lam", [0.0, 0.6, 1.0])
def test_lambda_return_matches_numpy(lam):
    rng = np.random.default_rng(1)
    r, v = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    d = 0.9 * (rng.uniform(size=(5, 3)) > 0.3)
    expected = numpy_lambda_return(r, d, v, lam)
    np.testing.assert_allclose(lambda_return(r, d, v, lam).numpy(), expected, rtol=1e-12)
    dynamic = tf.function(
        lambda a, b, c: lambda_return(a, b, c, lam),
        input_signature=[tf.TensorSpec([None, 3], tf.float64)] * 3,
    )
    np.testing.assert_allclose(dynamic(r, d, v).numpy(), expected, rtol=1e-12)
    if lam == 0.0:  # the one-step TD target
        np.testing.assert_allclose(expected, r + d * v)


def numpy_episode_returns(r, terminated, truncated, v_obs, v_final, gamma, lam):
    """The lambda-return written per episode, the textbook way (a second, independent form).

    v_obs [T + 1, B] are the values of the rollout's observations, v_final [T, B] those of the
    states each step reached before a reset. Each step's return is the lambda-weighted mixture
    of its n-step returns within the episode: a terminal state contributes value 0, a time
    limit the value of the interrupted state, the end of the rollout the last observation's.
    """
    t_len, b = r.shape
    out = np.zeros_like(r)
    for j in range(b):
        for t in range(t_len):
            # n-step returns G^(n), n = 1 .. N, where the episode or the rollout ends at N.
            rewards, n_step = 0.0, []
            for k in range(t, t_len):
                rewards += gamma ** (k - t) * r[k, j]
                if terminated[k, j]:
                    n_step.append(rewards)
                    break
                if truncated[k, j]:
                    n_step.append(rewards + gamma ** (k - t + 1) * v_final[k, j])
                    break
                n_step.append(rewards + gamma ** (k - t + 1) * v_obs[k + 1, j])
            # All weight beyond the last n-step return goes to it.
            weights = [(1 - lam) * lam**i for i in range(len(n_step) - 1)]
            weights.append(lam ** (len(n_step) - 1))
            out[t, j] = np.dot(weights, n_step)
    return out


@pytest.mark.parametrize("lam", [0.0, 0.6, 1.0])
def test_lambda_return_bootstraps_at_truncation_and_not_at_termination(lam):
    rng = np.random.default_rng(2)
    t_len, b, gamma = 7, 4, 0.9
    r, v_obs, v_final = rng.normal(size=(t_len, b)), rng.normal(size=(t_len + 1, b)), None
    v_final = rng.normal(size=(t_len, b))
    terminated = np.zeros((t_len, b))
    truncated = np.zeros((t_len, b))
    terminated[[1, 4], [0, 1]] = 1
    truncated[[2, 5, 6], [0, 2, 3]] = 1  # column 3 is truncated at the rollout's last step
    terminated[3, 3] = 1
    v_final = np.where(truncated > 0, v_final, v_obs[1:])
    expected = numpy_episode_returns(r, terminated, truncated, v_obs, v_final, gamma, lam)
    got = lambda_return(r, gamma * (1 - terminated), v_final, lam, truncated).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # Column 0 truncated at step 2: G_2 = r_2 + gamma v(s_final), whatever follows.
    np.testing.assert_allclose(got[2, 0], r[2, 0] + gamma * v_final[2, 0])
    # Treating the time limit as a termination, the old behaviour, gives another return.
    as_terminal = lambda_return(r, gamma * (1 - terminated - truncated), v_final, lam).numpy()
    assert not np.allclose(as_terminal[2, 0], got[2, 0])
    # Without a truncation the argument changes nothing.
    np.testing.assert_array_equal(
        lambda_return(r, gamma * (1 - terminated), v_obs[1:], lam, np.zeros_like(r)).numpy(),
        lambda_return(r, gamma * (1 - terminated), v_obs[1:], lam).numpy(),
    )


def test_returns_and_advantages_bootstrap_from_the_pre_reset_state():
    agent = tiny_agent()
    params = agent.init_params(tf.constant([1, 2]))
    eta = tf.constant([0.9, 0.7], tf.float64)
    rng = np.random.default_rng(3)
    obs, final = rng.normal(size=(5, 2, 3)), rng.normal(size=(4, 2, 3))
    terminated = np.array([[0, 0], [1, 0], [0, 0], [0, 0]], float)
    truncated = np.array([[0, 1], [0, 0], [0, 0], [0, 1]], float)
    traj = Trajectory(
        tf.constant(obs, tf.float32),
        tf.constant(rng.integers(0, 2, size=(4, 2)), tf.int32),
        tf.constant(rng.normal(size=(4, 2)), tf.float32),
        tf.constant(terminated, tf.float32),
        tf.constant(truncated, tf.float32),
        tf.constant(final, tf.float32),
    )
    returns, advantages = returns_and_advantages(agent, params, traj, eta)

    def value(x):
        return agent(params, tf.constant(x.reshape(-1, 3), tf.float64), eta)[1].numpy()

    v_obs = value(obs.astype(np.float32)).reshape(5, 2)
    v_final = value(final.astype(np.float32)).reshape(4, 2)
    expected = numpy_episode_returns(
        traj.rewards.numpy().astype(np.float64), terminated, truncated, v_obs, v_final, 0.9, 0.7
    )
    np.testing.assert_allclose(returns.numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(advantages.numpy(), expected - v_obs[:-1], rtol=1e-10)


def tiny_agent(dtype=tf.float64):
    return ActorCritic(3, 2, hidden_sizes=(4,), embedding_size=2, dtype=dtype)


def test_agent_is_conditioned_on_eta_and_its_loss_has_gradients():
    agent = tiny_agent()
    params = agent.init_params(tf.constant([1, 2]))
    obs = tf.random.stateless_normal([5, 3], [0, 1], dtype=tf.float64)
    logits, values = agent(params, obs, tf.constant([0.9, 0.5]))
    assert logits.shape == (5, 2) and values.shape == (5,)
    _, other = agent(params, obs, tf.constant([0.5, 0.5]))
    assert not np.allclose(values.numpy(), other.numpy())
    traj = Trajectory(
        tf.random.stateless_normal([4, 2, 3], [0, 2]),
        tf.constant([[0, 1], [1, 1], [0, 0]]),
        tf.ones([3, 2]),
        tf.constant([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]),
        tf.constant([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0]]),
        tf.random.stateless_normal([3, 2, 3], [0, 3]),
    )
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss, terms = a2c_loss(agent, params, traj, tf.constant([0.9, 0.8]), 0.5, 0.01)
    grads = tape.gradient(loss, params)
    assert np.isfinite(loss.numpy()) and set(terms) == {"policy_loss", "value_loss", "entropy"}
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)


def test_rollout_counts_completed_episodes():
    env = Chain(length=4, start=1, max_steps=100)
    agent = ActorCritic(4, 2, hidden_sizes=(3,), embedding_size=2)
    params = agent.init_params(tf.constant([0, 0]))
    state = RolloutState(env.reset([0, 0], 5), tf.zeros([5]))
    traj, state, stats = tf.function(rollout, autograph=True)(
        env, agent, params, tf.constant([0.9, 0.9]), state, tf.constant([3, 4]), 6
    )
    assert traj.observations.shape == (7, 5, 4) and traj.actions.shape == (6, 5)
    # Every episode ends at an end of the chain, so the return of each is 1 or 10.
    assert not traj.truncated.numpy().any()
    assert float(stats["episodes"]) == float(tf.reduce_sum(traj.terminated))
    ends = traj.rewards.numpy()[traj.terminated.numpy() > 0]
    # Without an end, the state reached is the next row's observation.
    going = traj.terminated.numpy() == 0
    np.testing.assert_array_equal(
        traj.final_observations.numpy()[going], traj.observations.numpy()[1:][going]
    )
    assert float(stats["return_sum"]) == pytest.approx(ends.sum())
    assert set(np.unique(ends)) <= {1.0, 10.0}


class FakeGymEnv:
    """A Gymnasium-like environment (no gymnasium needed): counts up, ends after 3 steps."""

    class _Space:
        n, shape = 2, (2,)

    action_space = observation_space = _Space()

    def reset(self, seed=None):
        self.t = 0
        return np.array([0.0, 0.0]), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t, action], float), 1.0, self.t >= 3, False, {}


class FakeTruncatedGymEnv(FakeGymEnv):
    """The same, but the third step is a time limit (truncated), not a terminal state."""

    def step(self, action):
        obs, reward, done, _, info = super().step(action)
        return obs, reward, False, done, info


def test_gymnasium_adapter_runs_inside_a_graph():
    env = GymnasiumEnv(make_env=FakeGymEnv)
    agent = ActorCritic(2, 2, hidden_sizes=(3,), embedding_size=1)
    params = agent.init_params(tf.constant([0, 0]))
    state = RolloutState(env.reset(tf.constant([0, 0]), 2), tf.zeros([2]))
    traj, _, stats = tf.function(rollout)(
        env, agent, params, tf.constant([0.9, 0.9]), state, tf.constant([0, 1]), 4
    )
    np.testing.assert_array_equal(traj.observations.numpy()[:, 0, 0], [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(traj.terminated.numpy()[:, 0], [0, 0, 1, 0])
    assert not traj.truncated.numpy().any()
    np.testing.assert_array_equal(traj.final_observations.numpy()[:, 0, 0], [1, 2, 3, 1])
    assert float(stats["return_sum"]) == 6.0 and float(stats["episodes"]) == 2.0


def test_gymnasium_adapter_maps_truncated_and_keeps_the_final_observation():
    env = GymnasiumEnv(make_env=FakeTruncatedGymEnv)
    agent = ActorCritic(2, 2, hidden_sizes=(3,), embedding_size=1)
    params = agent.init_params(tf.constant([0, 0]))
    state = RolloutState(env.reset(tf.constant([0, 0]), 2), tf.zeros([2]))
    traj, _, stats = tf.function(rollout)(
        env, agent, params, tf.constant([0.9, 0.9]), state, tf.constant([0, 1]), 4
    )
    assert not traj.terminated.numpy().any()
    np.testing.assert_array_equal(traj.truncated.numpy()[:, 0], [0, 0, 1, 0])
    np.testing.assert_array_equal(traj.observations.numpy()[:, 0, 0], [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(traj.final_observations.numpy()[:, 0, 0], [1, 2, 3, 1])
    assert float(stats["return_sum"]) == 6.0 and float(stats["episodes"]) == 2.0


def test_gymnasium_cartpole_when_installed():
    pytest.importorskip("gymnasium")
    env = make_env({"name": "gymnasium", "env_id": "CartPole-v1"})
    assert env.num_actions == 2 and env.observation_size == 4
