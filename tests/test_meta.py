"""Meta-gradients against central finite differences; truncation; tracing count."""

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.meta import MetaOptimizer, TruncatedBPTT
from l2l_tf.optimizers import SGD, CoordinatewiseLSTM, apply_updates
from l2l_tf.problems import Quadratic


def make_learner(
    unroll_length, second_derivatives=False, dtype=tf.float64, preprocess="none", **options
):
    family = Quadratic(dims=3, batch_size=2, dtype=dtype, init_scale=0.5)
    rule = CoordinatewiseLSTM(
        hidden_size=3, num_layers=2, preprocess=preprocess, output_scale=0.1, dtype=dtype
    )
    meta_opt = MetaOptimizer(SGD(0.0), rule.trainable_variables)
    learner = TruncatedBPTT(
        family, rule, meta_opt, unroll_length, second_derivatives=second_derivatives, **options
    )
    return family, rule, learner


def episode(family, rule, index=0):
    task_seed, init_seed, batch_seed = seeding.episode_seeds(seeding.task_seed(0, 0, index))
    task = family.sample(task_seed)
    params = family.init_params(task, init_seed)
    return task, params, rule.init(params), batch_seed


def replay_meta_loss(family, rule, task, params, state, recorded_grads, transform=lambda f: f):
    """The meta-loss with the optimizee's gradients held at recorded values.

    Dropping second derivatives means exactly this: the rule's inputs g_t are constants, while
    the losses still depend on the meta-parameters through theta_t.
    """
    total = 0.0
    for grads in recorded_grads:
        updates, state = rule.step(grads, state, params)
        params = apply_updates(params, updates)
        total += tf.reduce_mean(transform(family.member_losses(params, task, ())))
    return total


def recorded_gradients(family, rule, task, params, state, steps):
    out = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = family.loss(params, task, ())
        grads = tape.gradient(loss, params)
        out.append(grads)
        updates, state = rule.step(grads, state, params)
        params = apply_updates(params, updates)
    return out


def directional_fd(fn, variables, direction, eps=1e-5):
    originals = [v.numpy() for v in variables]
    for v, o, d in zip(variables, originals, direction):
        v.assign(o + eps * d)
    plus = float(fn())
    for v, o, d in zip(variables, originals, direction):
        v.assign(o - eps * d)
    minus = float(fn())
    for v, o in zip(variables, originals):
        v.assign(o)
    return (plus - minus) / (2 * eps)


@pytest.mark.parametrize("preprocess", ["none", "log_sign"])
@pytest.mark.parametrize("second_derivatives", [True, False])
def test_meta_gradient_matches_finite_differences(second_derivatives, preprocess):
    family, rule, learner = make_learner(3, second_derivatives, preprocess=preprocess)
    task, params, state, batch_seed = episode(family, rule)
    step0 = tf.constant(0)
    _, grads, _, _ = learner.meta_gradient(params, state, task, batch_seed, step0)
    variables = rule.trainable_variables

    if second_derivatives:
        fn = lambda: learner.unroll(params, state, task, batch_seed, step0)[0]
    else:
        recorded = recorded_gradients(family, rule, task, params, state, 3)
        fn = lambda: replay_meta_loss(family, rule, task, params, state, recorded)

    rng = np.random.default_rng(0)
    for _ in range(3):
        direction = [rng.normal(size=v.shape) for v in variables]
        analytic = sum(float(tf.reduce_sum(g * d)) for g, d in zip(grads, direction))
        numeric = directional_fd(fn, variables, direction)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("second_derivatives", [True, False])
def test_log_loss_transform_sums_log_losses_and_matches_finite_differences(second_derivatives):
    family, rule, learner = make_learner(3, second_derivatives, loss_transform="log")
    task, params, state, batch_seed = episode(family, rule)
    step0 = tf.constant(0)
    meta_loss, grads, _, _ = learner.meta_gradient(params, state, task, batch_seed, step0)
    # The meta-loss is the sum over steps 1..T of the mean log-loss (a numpy reference).
    recorded = recorded_gradients(family, rule, task, params, state, 3)
    logs, p, s = [], params, state
    for g in recorded:
        updates, s = rule.step(g, s, p)
        p = apply_updates(p, updates)
        logs.append(np.mean(np.log(family.member_losses(p, task, ()).numpy())))
    np.testing.assert_allclose(float(meta_loss), np.sum(logs), rtol=1e-10)

    if second_derivatives:
        fn = lambda: learner.unroll(params, state, task, batch_seed, step0)[0]
    else:
        fn = lambda: replay_meta_loss(family, rule, task, params, state, recorded, tf.math.log)
    variables = rule.trainable_variables
    rng = np.random.default_rng(1)
    for _ in range(2):
        direction = [rng.normal(size=v.shape) for v in variables]
        analytic = sum(float(tf.reduce_sum(g * d)) for g, d in zip(grads, direction))
        np.testing.assert_allclose(
            analytic, directional_fd(fn, variables, direction), rtol=1e-6, atol=1e-9
        )
    # The recomputing backward pass applies the same transform.
    _, _, recompute = make_learner(3, second_derivatives, loss_transform="log", recompute=True)
    recompute.rule = rule
    loss_r, grads_r, _, _ = recompute.meta_gradient(params, state, task, batch_seed, step0)
    np.testing.assert_allclose(float(loss_r), float(meta_loss), rtol=1e-12)
    for a, b in zip(grads, grads_r):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


def test_unknown_loss_transform_is_refused():
    with pytest.raises(UserError, match="meta.loss_transform"):
        make_learner(3, loss_transform="sqrt")


def test_dropping_second_derivatives_changes_the_gradient():
    family, rule, first = make_learner(3, second_derivatives=False)
    _, _, second = make_learner(3, second_derivatives=True)
    second.rule = rule  # same rule, same variables
    task, params, state, batch_seed = episode(family, rule)
    g1 = first.meta_gradient(params, state, task, batch_seed, tf.constant(0))[1]
    g2 = second.meta_gradient(params, state, task, batch_seed, tf.constant(0))[1]
    diff = sum(float(tf.reduce_sum(tf.abs(a - b))) for a, b in zip(g1, g2))
    assert diff > 1e-6


def test_two_truncated_unrolls_equal_one_long_unroll():
    family, rule, short = make_learner(3)
    long = TruncatedBPTT(family, rule, short.meta_optimizer, 6)
    task, params, state, batch_seed = episode(family, rule)
    loss_a, p_a, s_a = short.unroll(params, state, task, batch_seed, tf.constant(0))
    loss_b, p_b, s_b = short.unroll(p_a, s_a, task, batch_seed, tf.constant(3))
    loss_long, p_long, s_long = long.unroll(params, state, task, batch_seed, tf.constant(0))
    np.testing.assert_allclose(float(loss_a + loss_b), float(loss_long), rtol=1e-12)
    np.testing.assert_allclose(p_b[0].numpy(), p_long[0].numpy(), rtol=1e-12)
    for x, y in zip(tf.nest.flatten(s_b), tf.nest.flatten(s_long)):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-12)


def test_meta_step_traces_once_across_tasks_and_unrolls():
    family, rule, learner = make_learner(2, dtype=tf.float32)
    for index in range(3):
        task, params, state, batch_seed = episode(family, rule, index)
        for unroll in range(3):
            params, state, metrics = learner.meta_step(
                params, state, task, batch_seed, tf.constant(unroll * 2)
            )
            assert np.isfinite(float(metrics["meta_loss"]))
    assert learner.trace_count == 1


def test_meta_step_updates_meta_parameters_and_skips_non_finite():
    family = Quadratic(dims=3, batch_size=2)
    rule = CoordinatewiseLSTM(hidden_size=3, output_scale=0.1)
    meta_opt = MetaOptimizer(SGD(0.01), rule.trainable_variables)
    learner = TruncatedBPTT(family, rule, meta_opt, 2, clip_grad_norm=1.0)
    task, params, state, batch_seed = episode(family, rule)
    before = [v.numpy().copy() for v in rule.trainable_variables]
    _, _, metrics = learner.meta_step(params, state, task, batch_seed, tf.constant(0))
    assert not bool(metrics["skipped"])
    moved = [v.numpy() for v in rule.trainable_variables]
    # Clipped to norm 1, an SGD step of 0.01 moves the variables by at most 0.01 in norm.
    step = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(moved, before)))
    assert 0 < step <= 0.01 + 1e-6

    bad_params = [tf.fill(params[0].shape, np.nan)]
    _, _, metrics = learner.meta_step(bad_params, state, task, batch_seed, tf.constant(0))
    assert bool(metrics["skipped"])
    for v, m in zip(rule.trainable_variables, moved):
        np.testing.assert_array_equal(v.numpy(), m)


def assert_same_meta_gradient(base, other, family, rule):
    """Two learners give the same meta-loss and unroll on one episode, and the same
    meta-gradient to float tolerance."""
    task, params, state, batch_seed = episode(family, rule)
    step0 = tf.constant(0)
    loss_a, grads_a, p_a, _ = base.meta_gradient(params, state, task, batch_seed, step0)
    loss_b, grads_b, p_b, _ = other.meta_gradient(params, state, task, batch_seed, step0)
    np.testing.assert_allclose(float(loss_a), float(loss_b), rtol=1e-12)
    np.testing.assert_allclose(p_a[0].numpy(), p_b[0].numpy(), rtol=1e-12)
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("second_derivatives", [False, True])
@pytest.mark.parametrize(
    "variant",
    [{"static_unroll": True}, {"recompute": True}, {"static_unroll": True, "recompute": True}],
)
def test_unroll_variants_give_the_same_meta_gradient(variant, second_derivatives):
    family, rule, base = make_learner(5, second_derivatives)
    other = TruncatedBPTT(
        family, rule, base.meta_optimizer, 5, second_derivatives=second_derivatives, **variant
    )
    assert_same_meta_gradient(base, other, family, rule)


@pytest.mark.parametrize("static_unroll", [False, True])
def test_parallel_chunks_give_the_same_meta_gradient(static_unroll):
    """Meta-training with the coordinates in 3 chunks: the same meta-loss and unroll, and the
    same meta-gradient up to the rounding of its sums over coordinates."""
    family, rule, base = make_learner(5, preprocess="log_sign")
    chunked = CoordinatewiseLSTM(
        hidden_size=3, num_layers=2, preprocess="log_sign", output_scale=0.1,
        dtype=tf.float64, parallel_chunks=3,
    )  # fmt: skip
    for a, b in zip(chunked.trainable_variables, rule.trainable_variables):
        a.assign(b)
    other = TruncatedBPTT(
        family, chunked, MetaOptimizer(SGD(0.0), chunked.trainable_variables), 5,
        static_unroll=static_unroll,
    )  # fmt: skip
    assert_same_meta_gradient(base, other, family, rule)


def test_recompute_inside_a_compiled_meta_step():
    family, rule, _ = make_learner(4, dtype=tf.float32)
    learner = TruncatedBPTT(
        family, rule, MetaOptimizer(SGD(0.01), rule.trainable_variables), 4, recompute=True
    )
    task, params, state, batch_seed = episode(family, rule)
    _, _, metrics = learner.meta_step(params, state, task, batch_seed, tf.constant(0))
    assert np.isfinite(float(metrics["grad_norm"])) and float(metrics["grad_norm"]) > 0
