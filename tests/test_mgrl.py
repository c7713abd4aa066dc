"""The meta-gradient of MGRL against central finite differences, the trace, the compiled step."""

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf.errors import UserError
from l2l_tf.meta.mgrl import MetaGradientRL, logit
from l2l_tf.optimizers import make_rule
from l2l_tf.rl.a2c import (
    ActorCritic,
    Trajectory,
    a2c_loss,
    policy_gradient_objective,
    returns_and_advantages,
)
from l2l_tf.rl.envs import Chain


def tiny_learner(
    rule="sgd",
    trace_decay=0.0,
    learn=("gamma", "lambda"),
    dtype=tf.float64,
    objective="policy_gradient",
    advantage_normalization="none",
    condition_on="reference",
    embedding_input="eta",
):
    env = Chain(length=4, start=1, max_steps=5)
    agent = ActorCritic(
        4, 2, hidden_sizes=(3,), embedding_size=2, dtype=dtype, embedding_input=embedding_input
    )
    return MetaGradientRL(
        env,
        agent,
        make_rule({"name": rule, "learning_rate": 0.3}),
        make_rule({"name": "sgd", "learning_rate": 1.0}),
        num_envs=2,
        rollout_length=3,
        seed=0,
        init_eta=(0.8, 0.6),
        reference_eta=(0.95, 1.0),
        learn=learn,
        clip_grad_norm=None,
        trace_decay=trace_decay,
        objective=objective,
        advantage_normalization=advantage_normalization,
        condition_on=condition_on,
    )


def random_trajectory(seed, t=3, b=2, obs=4):
    rng = np.random.default_rng(seed)
    return Trajectory(
        tf.constant(rng.normal(size=(t + 1, b, obs)), tf.float32),
        tf.constant(rng.integers(0, 2, size=(t, b)), tf.int32),
        tf.constant(rng.normal(size=(t, b)), tf.float32),
        tf.constant([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]][:t], tf.float32),  # terminated
        tf.constant([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]][:t], tf.float32),  # truncated
        tf.constant(rng.normal(size=(t, b, obs)), tf.float32),  # states reached before resets
    )


def problem(learner):
    params = [p.read_value() for p in learner.params]
    state = learner.rule.init(params)
    return params, state, random_trajectory(1), random_trajectory(2)


# Adam with J' = a2c is strongly curved at this point (its update divides by a small sqrt(v)):
# the central difference's truncation error at eps = 1e-6 is 1e-5 relative (it shrinks as eps^2
# and vanishes at 1e-7), so that case uses the smaller step.
@pytest.mark.parametrize(
    "rule, objective, eps, options",
    [
        ("sgd", "policy_gradient", 1e-6, {}),
        ("adam", "policy_gradient", 1e-6, {}),
        ("adam", "a2c", 1e-7, {}),
        ("adam", "policy_gradient", 1e-6, {"advantage_normalization": "standardize"}),
        ("sgd", "policy_gradient", 1e-6, {"condition_on": "agent"}),
        ("sgd", "policy_gradient", 1e-6, {"embedding_input": "eta_change"}),
        ("adam", "policy_gradient", 1e-6, {"embedding_input": "eta_change"}),
    ],
)
def test_meta_gradient_matches_central_finite_differences(rule, objective, eps, options):
    learner = tiny_learner(rule, objective=objective, **options)
    if options.get("embedding_input") == "eta_change":
        # Part-way through a run, eta has moved from its start. (At eta_start itself the
        # embedding rows' gradient is exactly 0 for this eta only, and Adam's update, sign-like
        # in a gradient that small, has no derivative there.)
        learner.agent.eta_start.assign([0.75, 0.55])
    params, state, traj, next_traj = problem(learner)
    if rule == "adam":  # a state part-way through training, not the first step's
        state = state._replace(count=tf.constant(5))
    logits = tf.constant([logit(0.8), logit(0.6)], tf.float64)

    # J' treats the targets G' and A' as constants (only the networks' outputs are
    # differentiated), so the finite differences hold them at their values for the unperturbed
    # theta'.
    new_params, *_ = learner.inner_update(logits, params, state, traj)
    input_eta = learner.eta() if options.get("condition_on") == "agent" else None
    targets = returns_and_advantages(
        learner.agent, new_params, next_traj, learner.reference_eta, input_eta
    )

    def objective(x):
        new_params, *_ = learner.inner_update(x, params, state, traj)
        return float(learner.meta_objective(new_params, next_traj, targets))

    _, grad = learner.meta_gradient(logits, params, state, traj, next_traj)
    fd = []
    for i in range(2):
        e = np.eye(2)[i] * eps
        fd.append((objective(logits + e) - objective(logits - e)) / (2 * eps))
    assert np.all(np.abs(fd) > 1e-6)  # both paths (gamma and lambda) carry signal
    np.testing.assert_allclose(grad.numpy(), fd, rtol=1e-5, atol=1e-9)


def test_meta_gradient_is_finite_when_an_input_is_never_active():
    """Adam's sqrt(v) at v = 0 (a weight with exactly zero gradient) must not give NaN."""
    learner = tiny_learner("adam")
    params, state, traj, next_traj = problem(learner)
    traj = traj._replace(observations=traj.observations * tf.constant([1.0, 1.0, 1.0, 0.0]))
    logits = tf.constant([logit(0.8), logit(0.6)], tf.float64)
    _, grad = learner.meta_gradient(logits, params, state, traj, next_traj)
    assert np.all(np.isfinite(grad.numpy())) and np.any(grad.numpy() != 0)


def test_forward_mode_trace_gives_the_same_meta_gradient():
    learner = tiny_learner("sgd")
    params, state, traj, next_traj = problem(learner)
    logits = tf.constant([logit(0.8), logit(0.6)], tf.float64)
    _, reverse = learner.meta_gradient(logits, params, state, traj, next_traj)
    jacobian = learner.update_jacobian(logits, params, state, traj)
    new_params, *_ = learner.inner_update(logits, params, state, traj)
    with tf.GradientTape() as tape:
        tape.watch(new_params)
        objective = learner.meta_objective(new_params, next_traj)
    d = tape.gradient(objective, new_params, unconnected_gradients="zero")
    forward = sum(np.tensordot(g.numpy(), z.numpy(), axes=g.ndim) for g, z in zip(d, jacobian))
    np.testing.assert_allclose(forward, reverse.numpy(), rtol=1e-8)


@pytest.mark.slow  # compiling forward-over-reverse differentiation takes about half a minute
def test_step_with_trace_accumulates_it():
    # The forward-mode Jacobian is finite where Adam's v = 0 (see the reverse-mode test above).
    adam = tiny_learner("adam")
    params, state, traj, _ = problem(adam)
    traj = traj._replace(observations=traj.observations * tf.constant([1.0, 1.0, 1.0, 0.0]))
    logits = tf.constant([logit(0.8), logit(0.6)], tf.float64)
    jacobian = adam.update_jacobian(logits, params, state, traj)
    assert all(np.all(np.isfinite(z.numpy())) for z in jacobian)

    learner = tiny_learner("sgd", trace_decay=0.5, dtype=tf.float32)
    first = learner.eta().numpy()
    learner.step()
    after_one = [z.numpy() for z in learner.trace]
    learner.step()
    assert learner.trace_count == 1
    assert not np.allclose(learner.eta().numpy(), first)
    assert all(np.all(np.isfinite(z.numpy())) for z in learner.trace)
    assert any(np.any(z != 0) for z in after_one)


@pytest.mark.slow  # compiles the traced step
def test_trace_runs_with_jit_compile_requested():
    """XLA cannot differentiate the update in forward mode; the trace runs without it."""
    env = Chain(length=4, start=1, max_steps=5)
    agent = ActorCritic(4, 2, hidden_sizes=(3,), embedding_size=2)
    learner = MetaGradientRL(
        env,
        agent,
        make_rule({"name": "adam", "learning_rate": 0.1}),
        make_rule({"name": "adam", "learning_rate": 0.1}),
        num_envs=2,
        rollout_length=3,
        seed=0,
        init_eta=(0.8, 0.6),
        trace_decay=0.5,
        jit_compile=True,
    )
    assert not learner.jit_compile
    m = learner.step()
    assert np.isfinite(float(m["meta_objective"])) and not bool(m["meta_skipped"])
    assert any(np.any(z.numpy() != 0) for z in learner.trace)


def test_step_learns_eta_traces_once_and_can_hold_components_fixed():
    fixed = tiny_learner(learn=(), dtype=tf.float32)
    lam_only = tiny_learner(learn=("lambda",), dtype=tf.float32)
    for _ in range(3):
        fixed.step()
        m = lam_only.step()
    assert lam_only.trace_count == 1 and int(lam_only.iteration) == 3
    np.testing.assert_allclose(fixed.eta().numpy(), [0.8, 0.6], rtol=1e-6)
    assert float(lam_only.eta()[0]) == pytest.approx(0.8)
    assert float(lam_only.eta()[1]) != pytest.approx(0.6)
    assert float(m["lambda"]) == pytest.approx(float(lam_only.eta()[1]))
    assert np.isfinite(float(m["meta_objective"])) and not bool(m["meta_skipped"])


def test_a2c_meta_objective_adds_the_value_loss_and_entropy_to_the_policy_gradient():
    pg = tiny_learner(objective="policy_gradient")
    a2c = tiny_learner(objective="a2c")
    params, _, _, next_traj = problem(pg)
    terms = a2c_loss(pg.agent, params, next_traj, pg.reference_eta, 0.5, 0.01)[1]
    expected = terms["policy_loss"] + 0.5 * terms["value_loss"] - 0.01 * terms["entropy"]
    np.testing.assert_allclose(float(pg.meta_objective(params, next_traj)), terms["policy_loss"])
    np.testing.assert_allclose(float(a2c.meta_objective(params, next_traj)), expected)
    assert abs(float(expected - terms["policy_loss"])) > 1e-3


def test_unknown_meta_objective_is_a_user_error():
    with pytest.raises(UserError, match="meta.objective must be one of"):
        tiny_learner(objective="value")


def normalized_and_plain(normalization):
    """A learner with `meta.advantage_normalization`, a plain one, and the reference (G', A')
    of a shared validation rollout: (learner, plain, params, next_traj, returns, advantages)."""
    learner = tiny_learner(advantage_normalization=normalization)
    params, _, _, next_traj = problem(learner)
    returns, advantages = returns_and_advantages(
        learner.agent, params, next_traj, learner.reference_eta
    )
    return learner, tiny_learner(), params, next_traj, returns, advantages


def test_centered_meta_objective_ignores_a_common_part_of_the_advantages():
    learner, plain, params, next_traj, returns, advantages = normalized_and_plain("center")
    shifted = (returns, advantages + 7.0)
    centered = (returns, advantages - tf.reduce_mean(advantages))
    j = float(learner.meta_objective(params, next_traj, (returns, advantages)))
    np.testing.assert_allclose(float(learner.meta_objective(params, next_traj, shifted)), j)
    np.testing.assert_allclose(float(learner.meta_objective(params, next_traj)), j)
    np.testing.assert_allclose(float(plain.meta_objective(params, next_traj, centered)), j)
    assert abs(float(plain.meta_objective(params, next_traj, shifted)) - j) > 1e-3


def test_standardized_meta_objective_ignores_the_scale_of_the_advantages():
    learner, plain, params, next_traj, returns, advantages = normalized_and_plain("standardize")
    j = float(learner.meta_objective(params, next_traj, (returns, advantages)))
    scaled = (returns, 3.0 * advantages - 2.0)
    np.testing.assert_allclose(float(learner.meta_objective(params, next_traj, scaled)), j)
    a = advantages - tf.reduce_mean(advantages)
    expected = plain.meta_objective(params, next_traj, (returns, a / tf.math.reduce_std(a)))
    np.testing.assert_allclose(j, float(expected), rtol=1e-6)


def test_bad_advantage_normalization_is_a_user_error():
    with pytest.raises(UserError, match="meta.advantage_normalization must be one of"):
        tiny_learner(advantage_normalization="whiten")
    with pytest.raises(UserError, match="applies to the policy_gradient objective only"):
        tiny_learner(objective="a2c", advantage_normalization="center")


def test_meta_objective_conditioned_on_the_agents_eta_feeds_it_to_the_networks():
    learner = tiny_learner(condition_on="agent")
    plain = tiny_learner()
    params, _, _, next_traj = problem(learner)
    eta = learner.eta()
    expected = policy_gradient_objective(
        learner.agent, params, next_traj, learner.reference_eta, input_eta=eta
    )
    j = float(learner.meta_objective(params, next_traj))
    np.testing.assert_allclose(j, float(expected))
    # The returns still use the reference (gamma', lambda'); only the networks' input differs.
    _, a = returns_and_advantages(learner.agent, params, next_traj, learner.reference_eta, eta)
    _, a_ref = returns_and_advantages(learner.agent, params, next_traj, learner.reference_eta)
    assert not np.allclose(a.numpy(), a_ref.numpy())
    assert abs(j - float(plain.meta_objective(params, next_traj))) > 1e-6
    with pytest.raises(UserError, match="meta.condition_on must be one of"):
        tiny_learner(condition_on="both")
    with pytest.raises(UserError, match="meta.condition_on applies"):
        tiny_learner(objective="a2c", condition_on="agent")


def test_eta_change_embedding_is_zero_for_a_fixed_eta_and_trains_no_constant_inputs():
    """With a fixed eta the "eta_change" embedding feeds 0, so W_eta, b_eta and the embedding
    rows of both first layers get exactly zero gradient and stay put, even under Adam."""
    learner = tiny_learner("adam", learn=(), dtype=tf.float32, embedding_input="eta_change")
    before = [p.numpy() for p in learner.params]
    for _ in range(3):
        learner.step()
    after = [p.numpy() for p in learner.params]
    k = learner.agent.observation_size
    value_first = 2 + 2 * (len(learner.agent._policy_sizes) - 1)
    np.testing.assert_array_equal(after[0], before[0])  # W_eta
    np.testing.assert_array_equal(after[1], before[1])  # b_eta (0)
    for i in (2, value_first):
        np.testing.assert_array_equal(after[i][k:], before[i][k:])
        assert not np.array_equal(after[i][:k], before[i][:k])
    default = tiny_learner("adam", learn=(), dtype=tf.float32)
    first = default.params[0].numpy()
    default.step()
    assert not np.array_equal(default.params[0].numpy(), first)


def test_eta_change_embedding_carries_how_eta_moved():
    learner = tiny_learner(embedding_input="eta_change")
    agent = learner.agent
    params = [p.read_value() for p in learner.params]
    obs = tf.constant(np.random.default_rng(0).normal(size=(5, 4)), tf.float64)
    np.testing.assert_allclose(agent.eta_start.numpy(), [0.8, 0.6])
    # At eta_start the networks see 0: the same outputs as with W_eta and b_eta zeroed.
    zeroed = [tf.zeros_like(params[0]), tf.ones_like(params[1]), *params[2:]]
    at_start = agent(params, obs, tf.constant([0.8, 0.6], tf.float64))
    for a, b in zip(at_start, agent(zeroed, obs, tf.constant([0.3, 0.9], tf.float64))):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    moved = agent(params, obs, tf.constant([0.9, 0.6], tf.float64))
    assert not np.allclose(moved[1].numpy(), at_start[1].numpy())
    # The meta-gradient still flows through the embedding: zeroing W_eta changes it.
    state = learner.rule.init(params)
    traj, next_traj = random_trajectory(1), random_trajectory(2)
    logits = tf.constant([logit(0.8), logit(0.6)], tf.float64)
    _, grad = learner.meta_gradient(logits, params, state, traj, next_traj)
    _, without = learner.meta_gradient(logits, zeroed, state, traj, next_traj)
    assert np.all(np.abs(grad.numpy() - without.numpy()) > 1e-9)


def test_bad_embedding_input_is_a_user_error():
    with pytest.raises(UserError, match="agent.embedding_input must be one of"):
        tiny_learner(embedding_input="bias")
