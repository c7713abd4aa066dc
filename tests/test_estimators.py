"""Antithetic ES and PES (l2l_tf/meta/es.py) against exact gradients, and their interface.

The statistical tests use 4000 antithetic pairs in one call (the particles are vectorized, so
this costs about as much as a few). For a smooth meta-loss and a small sigma, L(+eps) - L(-eps)
= 2 eps.g + O(sigma^3), so the estimate is (1 / P) sum_i eps_i eps_i^T g / sigma^2: unbiased,
with E |g_hat - g|^2 = (D + 1) |g|^2 / P. With D = 33 weights and P = 4000 the expected
relative error is sqrt(34 / 4000) = 0.09 (measured over 8 seeds with P = 2000: 0.12 to 0.16,
against the predicted 0.13), i.e. a cosine similarity of about 0.996 and a norm ratio within a
few percent. ES estimates the gradient of the smoothed loss E L(phi + eps); with sigma = 1e-3
its distance from the exact gradient, O(sigma^2), is far below the sampling error. PES's summed
estimate has a larger variance (xi accumulates over truncations) but the same order of error
here. The thresholds below (cosine > 0.97, norm within 10%, relative error < 0.25)
leave a margin of several standard deviations.
"""

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.meta import PES, AntitheticES, MetaOptimizer, TruncatedBPTT
from l2l_tf.optimizers import SGD, CoordinatewiseLSTM, MLPRule
from l2l_tf.problems import Quadratic

NUM_PAIRS = 4000
SIGMA = 1e-3


def make_rule(learning_rate=0.1, dtype=tf.float64, perturb=True):
    """A one-hidden-layer MLPRule (33 weights) on which every weight matters.

    The rule's output layer starts at zero (the untrained rule is Adam), which makes the
    gradient of the hidden layer exactly zero; random output weights give every weight a say.
    """
    rule = MLPRule(hidden_size=2, num_layers=1, learning_rate=learning_rate, dtype=dtype)
    if perturb:
        rng = np.random.default_rng(0)
        for v in rule.weights:
            if v.shape.rank and "kernel" in v.name:
                v.assign(v + 0.3 * rng.normal(size=v.shape))
            elif v.shape.rank:
                v.assign(0.1 * rng.normal(size=v.shape))
    return rule


def episode(family, rule, index=0):
    task_seed, init_seed, batch_seed = seeding.episode_seeds(seeding.task_seed(0, 0, index))
    task = family.sample(task_seed)
    params = family.init_params(task, init_seed)
    return task, params, rule.init(params), batch_seed


def quadratic(dtype=tf.float64):
    return Quadratic(dims=2, batch_size=2, dtype=dtype, init_scale=0.5)


def flat(grads):
    return np.concatenate([np.ravel(g) for g in grads])


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def relative_error(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_antithetic_es_matches_the_exact_truncation_gradient():
    family, rule = quadratic(), make_rule()
    meta_opt = MetaOptimizer(SGD(0.0), rule.trainable_variables)
    task, params, state, batch_seed = episode(family, rule)
    es = AntitheticES(family, rule, meta_opt, 3, num_pairs=NUM_PAIRS, sigma=SIGMA)
    _, grads, _ = es.meta_gradient(es.start(params, state), task, batch_seed, tf.constant(0))
    # ES sees the unroll as a black box, so it estimates the gradient with second derivatives.
    exact = TruncatedBPTT(family, rule, meta_opt, 3, second_derivatives=True)
    _, exact_grads, _, _ = exact.meta_gradient(params, state, task, batch_seed, tf.constant(0))
    a, b = flat(grads), flat(exact_grads)
    ratio = np.linalg.norm(a) / np.linalg.norm(b)
    print(f"ES: cosine {cosine(a, b):.4f}, norm ratio {ratio:.4f}, rel {relative_error(a, b):.4f}")
    assert cosine(a, b) > 0.97
    assert abs(ratio - 1.0) < 0.1


def test_pes_is_unbiased_for_the_full_horizon_where_truncated_bptt_is_not():
    """Three truncations of K = 3 steps: PES's summed estimate against the gradient through
    the whole 9-step unroll. Truncated BPTT, exact within each truncation (second derivatives
    kept) but blind to how a truncation's start depends on the rule, is far off."""
    k, num_truncations = 3, 3
    family, rule = quadratic(), make_rule()
    meta_opt = MetaOptimizer(SGD(0.0), rule.trainable_variables)
    task, params, state, batch_seed = episode(family, rule)
    full = TruncatedBPTT(family, rule, meta_opt, k * num_truncations, second_derivatives=True)
    full_loss, full_grads, _, _ = full.meta_gradient(
        params, state, task, batch_seed, tf.constant(0)
    )
    target = flat(full_grads)

    pes = PES(family, rule, meta_opt, k, num_pairs=NUM_PAIRS, sigma=SIGMA)
    truncated = TruncatedBPTT(family, rule, meta_opt, k, second_derivatives=True)
    carry, p, s = pes.start(params, state), params, state
    pes_sum, tbptt_sum, loss_sum = 0.0, 0.0, 0.0
    for i in range(num_truncations):
        step0 = tf.constant(i * k)
        _, grads, carry = pes.meta_gradient(carry, task, batch_seed, step0)
        pes_sum = pes_sum + flat(grads)
        loss, grads, p, s = truncated.meta_gradient(p, s, task, batch_seed, step0)
        tbptt_sum, loss_sum = tbptt_sum + flat(grads), loss_sum + float(loss)
    # The truncations' meta-losses add up to the full horizon's (each step counted once).
    np.testing.assert_allclose(loss_sum, float(full_loss), rtol=1e-12)

    pes_error, tbptt_error = relative_error(pes_sum, target), relative_error(tbptt_sum, target)
    print(
        f"PES: rel {pes_error:.4f}, cosine {cosine(pes_sum, target):.4f}; "
        f"TBPTT: rel {tbptt_error:.4f}, cosine {cosine(tbptt_sum, target):.4f}, "
        f"norm ratio {np.linalg.norm(tbptt_sum) / np.linalg.norm(target):.4f}"
    )
    assert pes_error < 0.25
    assert cosine(pes_sum, target) > 0.97
    assert tbptt_error > 0.4
    assert tbptt_error > 2.5 * pes_error


def perturbed_unroll(family, rule, delta, k, params, state, task, batch_seed, step0):
    """TruncatedBPTT's unroll with the rule's variables moved by the flat vector `delta`."""
    originals = [v.numpy() for v in rule.weights]
    offset = 0
    for v, o in zip(rule.weights, originals):
        v.assign(o + np.reshape(delta[offset : offset + o.size], o.shape))
        offset += o.size
    out = TruncatedBPTT(family, rule, None, k).unroll(params, state, task, batch_seed, step0)
    for v, o in zip(rule.weights, originals):
        v.assign(o)
    return out


def test_estimates_follow_their_definitions_exactly():
    """With two pairs, ES and PES reproduce TruncatedBPTT's unrolls at phi +- eps and the
    formula sum_i x_i (L+ - L-) / (2 P sigma^2), with the noise of `noise(batch_seed, step0)`."""
    k, pairs, sigma = 2, 2, 0.05
    family, rule = quadratic(), make_rule()
    meta_opt = MetaOptimizer(SGD(0.0), rule.trainable_variables)
    task, params, state, batch_seed = episode(family, rule)
    names = [v.name for v in rule.trainable_variables]
    order = [names.index(v.name) for v in rule.weights]

    def weights_order(grads):
        return [grads[i].numpy() for i in order]

    es = AntitheticES(family, rule, meta_opt, k, num_pairs=pairs, sigma=sigma)
    loss, grads, (p, s) = es.meta_gradient((params, state), task, batch_seed, tf.constant(0))
    ref_loss, ref_p, ref_s = TruncatedBPTT(family, rule, meta_opt, k).unroll(
        params, state, task, batch_seed, tf.constant(0)
    )
    # The carry is the unperturbed trajectory (up to graph-versus-eager rounding).
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-13)
    for x, y in zip(tf.nest.flatten((p, s)), tf.nest.flatten((ref_p, ref_s))):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-13, atol=1e-15)
    eps = es.noise(batch_seed, tf.constant(0)).numpy()
    assert eps.shape == (pairs, es.num_weights)
    diffs = [
        float(perturbed_unroll(family, rule, e, k, params, state, task, batch_seed, 0)[0])
        - float(perturbed_unroll(family, rule, -e, k, params, state, task, batch_seed, 0)[0])
        for e in eps
    ]
    expected = sum(e * d for e, d in zip(eps, diffs)) / (2 * pairs * sigma**2)
    np.testing.assert_allclose(flat(weights_order(grads)), expected, rtol=1e-8, atol=1e-10)

    # PES: particle 0 runs phi + eps_1 in truncation 1, then phi + eps_2 from where it got.
    pes = PES(family, rule, meta_opt, k, num_pairs=pairs, sigma=sigma)
    carry = pes.start(params, state)
    _, _, carry = pes.meta_gradient(carry, task, batch_seed, tf.constant(0))
    mean_loss, grads, carry = pes.meta_gradient(carry, task, batch_seed, tf.constant(k))
    e1 = pes.noise(batch_seed, tf.constant(0)).numpy()
    e2 = pes.noise(batch_seed, tf.constant(k)).numpy()
    assert not np.allclose(e1, e2)  # fresh noise every truncation
    np.testing.assert_allclose(carry[2].numpy(), e1 + e2, rtol=1e-12)
    losses = []
    # Particles 0..P-1 carry +xi, particles P..2P-1 carry -xi.
    for particle, (sign, pair) in enumerate([(1, 0), (1, 1), (-1, 0), (-1, 1)]):
        _, p1, s1 = perturbed_unroll(
            family, rule, sign * e1[pair], k, params, state, task, batch_seed, 0
        )
        loss2, p2, s2 = perturbed_unroll(
            family, rule, sign * e2[pair], k, p1, s1, task, batch_seed, k
        )
        losses.append(float(loss2))
        own = [x[particle] for x in tf.nest.flatten((carry[0], carry[1]))]
        for x, y in zip(own, tf.nest.flatten((p2, s2))):
            np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(mean_loss), np.mean(losses), rtol=1e-10)
    xi = e1 + e2
    plus, minus = losses[:2], losses[2:]
    expected = sum(x * (a - b) for x, a, b in zip(xi, plus, minus)) / (2 * pairs * sigma**2)
    np.testing.assert_allclose(flat(weights_order(grads)), expected, rtol=1e-7, atol=1e-10)


def build(cls, learning_rate=0.1, jit_compile=False):
    """A fresh float32 rule, meta-optimizer and estimator (same seeds: same initial weights)."""
    family = quadratic(tf.float32)
    rule = MLPRule(hidden_size=2, num_layers=1, learning_rate=learning_rate)
    meta_opt = MetaOptimizer(SGD(0.01), rule.trainable_variables)
    return family, rule, cls(family, rule, meta_opt, 2, num_pairs=3, jit_compile=jit_compile)


def run_episode(cls, jit_compile=False, truncations=3):
    """Three meta-steps of a fresh estimator: (start carry, final carry, metrics, rule)."""
    family, rule, learner = build(cls, jit_compile=jit_compile)
    task, params, state, batch_seed = episode(family, rule)
    start = carry = learner.start(params, state)
    history = []
    for i in range(truncations):
        carry, metrics = learner.advance(carry, task, batch_seed, tf.constant(2 * i))
        history.append({k: v.numpy() for k, v in metrics.items()})
    assert learner.trace_count == 1
    return start, carry, history, rule


@pytest.mark.parametrize("cls", [AntitheticES, PES])
def test_same_seeds_same_run_and_a_checkpointable_carry(cls):
    start, carry, history, rule = run_episode(cls)
    for metrics in history:
        assert set(metrics) == {"meta_loss", "mean_loss", "grad_norm", "skipped"}
        assert not metrics["skipped"] and np.isfinite(metrics["grad_norm"])
        np.testing.assert_allclose(metrics["mean_loss"], metrics["meta_loss"] / 2, rtol=1e-6)
    tf.nest.assert_same_structure(start, carry)  # a fixed nest of tensors: checkpointable
    assert all(isinstance(t, tf.Tensor) for t in tf.nest.flatten(carry))
    initial = MLPRule(hidden_size=2, num_layers=1, learning_rate=0.1)
    assert not np.array_equal(rule.log_lr.numpy(), initial.log_lr.numpy())  # it did learn

    _, again, history_again, rule_again = run_episode(cls)
    for x, y in zip(tf.nest.flatten(carry), tf.nest.flatten(again)):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    for a, b in zip(history, history_again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    for v, w in zip(rule.weights, rule_again.weights):
        np.testing.assert_array_equal(v.numpy(), w.numpy())

    # Under XLA the meta-step is one compiled function too (its stateless random numbers are
    # XLA's, so it is not compared with the run above).
    start, carry, history, _ = run_episode(cls, jit_compile=True, truncations=2)
    tf.nest.assert_same_structure(start, carry)
    assert all(np.isfinite(m["meta_loss"]) and not m["skipped"] for m in history)


@pytest.mark.parametrize("cls", [AntitheticES, PES])
def test_non_finite_meta_loss_is_skipped(cls):
    family, rule, learner = build(cls, learning_rate=1e30)
    task, params, state, batch_seed = episode(family, rule)
    before = [v.numpy() for v in rule.trainable_variables]
    _, metrics = learner.advance(learner.start(params, state), task, batch_seed, tf.constant(0))
    assert bool(metrics["skipped"])
    assert not np.isfinite(float(metrics["meta_loss"]))
    for v, b in zip(rule.trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), b)


@pytest.mark.parametrize("cls", [AntitheticES, PES])
def test_bad_arguments_are_user_errors(cls):
    family = quadratic(tf.float32)
    rule = MLPRule(hidden_size=2, num_layers=1)
    meta_opt = MetaOptimizer(SGD(0.01), rule.trainable_variables)
    cases = [
        (dict(unroll_length=0), "meta.unroll_length"),
        (dict(num_pairs=0), "meta.num_pairs"),
        (dict(num_pairs=2.5), "meta.num_pairs"),
        (dict(sigma=0.0), "meta.sigma must be positive"),
        (dict(sigma=float("nan")), "meta.sigma"),
        (dict(clip_grad_norm=-1.0), "meta.clip_grad_norm"),
        (dict(loss_transform="sqrt"), "meta.loss_transform"),
    ]
    for overrides, match in cases:
        kwargs = {"unroll_length": 2, **overrides}
        with pytest.raises(UserError, match=match):
            cls(family, rule, meta_opt, **kwargs)
    lstm = CoordinatewiseLSTM(hidden_size=2)
    with pytest.raises(UserError, match="explicit weights"):
        cls(family, lstm, MetaOptimizer(SGD(0.01), lstm.trainable_variables), 2)
    other = MLPRule(hidden_size=2, num_layers=1)
    with pytest.raises(UserError, match="meta_optimizer"):
        cls(family, rule, MetaOptimizer(SGD(0.01), other.trainable_variables), 2)
