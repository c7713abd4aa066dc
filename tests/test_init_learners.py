"""MAML, first-order MAML, Meta-SGD, Reptile and iMAML: meta-gradients against references."""

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.meta import FOMAML, IMAML, MAML, MetaOptimizer, MetaSGD, Reptile
from l2l_tf.meta.base import sample_episode
from l2l_tf.meta.imaml import conjugate_gradient
from l2l_tf.optimizers import SGD
from l2l_tf.optimizers.per_parameter import PerParameterSGD
from l2l_tf.problems import Quadratic, Sinusoid


def tiny_sinusoid(batch_size=2):
    return Sinusoid(num_shots=4, batch_size=batch_size, hidden_sizes=(3,), dtype=tf.float64)


def episode(family, index=0):
    return sample_episode(family, seeding.task_seed(0, seeding.TRAIN, index))


def theta0(family):
    task = family.sample(tf.constant([5, 6]))
    return [p[0] for p in family.init_params(task, tf.constant([7, 8]))]


def make(cls, family, steps, lr=0.1, **kw):
    init = theta0(family)
    if cls is MetaSGD:
        rule = PerParameterSGD([p.shape.as_list() for p in init], (0.05, 0.2), dtype=tf.float64)
    else:
        rule = SGD(lr)
    return cls(family, init, rule, steps, **kw)


def directional_fd(fn, variables, direction, eps=1e-6):
    originals = [v.numpy() for v in variables]
    values = []
    for sign in (1, -1):
        for v, o, d in zip(variables, originals, direction):
            v.assign(o + sign * eps * d)
        values.append(float(fn()))
    for v, o in zip(variables, originals):
        v.assign(o)
    return (values[0] - values[1]) / (2 * eps)


def query_loss_fn(learner, task, support, query):
    return lambda: tf.reduce_mean(
        learner.family.member_losses(learner.adapt(task, support), task, query)
    )


def dot(grads, direction):
    return sum(float(tf.reduce_sum(g * d)) for g, d in zip(grads, direction))


@pytest.mark.parametrize("cls", [MAML, MetaSGD])
def test_second_order_meta_gradient_matches_finite_differences(cls):
    family = tiny_sinusoid()
    learner = make(cls, family, steps=2)
    task, support, query, _ = episode(family)
    _, grads = learner.outer_grad(task, support, query)
    assert [g.shape for g in grads] == [v.shape for v in learner.meta_params]
    fn = query_loss_fn(learner, task, support, query)
    rng = np.random.default_rng(0)
    for _ in range(3):
        direction = [rng.normal(size=v.shape) for v in learner.meta_params]
        numeric = directional_fd(fn, learner.meta_params, direction)
        np.testing.assert_allclose(dot(grads, direction), numeric, rtol=1e-5, atol=1e-8)


def test_metasgd_rates_have_the_parameter_shapes():
    learner = make(MetaSGD, tiny_sinusoid(), steps=1)
    assert [r.shape for r in learner.inner_rule.rates] == [v.shape for v in learner.init]
    assert len(learner.meta_params) == 2 * len(learner.init)


def test_first_order_gradient_differs_from_finite_differences():
    family = tiny_sinusoid()
    learner = make(FOMAML, family, steps=2)
    task, support, query, _ = episode(family)
    _, grads = learner.outer_grad(task, support, query)
    fn = query_loss_fn(learner, task, support, query)
    rng = np.random.default_rng(1)
    direction = [rng.normal(size=v.shape) for v in learner.meta_params]
    numeric = directional_fd(fn, learner.meta_params, direction)
    assert abs(dot(grads, direction) - numeric) > 1e-4 * abs(numeric)

    # What it is instead: the query gradient at the adapted parameters (d phi / d theta = I).
    phi = learner.adapt(task, support)
    with tf.GradientTape() as tape:
        tape.watch(phi)
        loss = tf.reduce_mean(family.member_losses(phi, task, query))
    at_phi = [tf.reduce_sum(g, axis=0) for g in tape.gradient(loss, phi)]
    for a, b in zip(grads, at_phi):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


def quadratic_problem(members=2, dims=3):
    family = Quadratic(dims=dims, batch_size=members, w_scale=0.4, init_scale=0.5, dtype=tf.float64)
    task = family.sample(tf.constant([1, 2]))
    return family, task, task.w.numpy(), task.y.numpy()


def test_maml_minus_fomaml_is_the_hessian_term_on_quadratics():
    # One SGD step: phi = theta - a g(theta); MAML = mean_m (I - a H_m) g_m(phi_m), FOMAML drops
    # the a H_m term. For f_m = ||W_m x - y_m||^2, H_m = 2 W_m^T W_m exactly.
    family, task, w, y = quadratic_problem()
    a = 0.1
    maml, fomaml = make(MAML, family, 1, a), make(FOMAML, family, 1, a)
    fomaml.init[0].assign(maml.init[0])
    g2 = maml.outer_grad(task, (), ())[1][0].numpy()
    g1 = fomaml.outer_grad(task, (), ())[1][0].numpy()
    theta = maml.init[0].numpy()
    expected_first, expected_second = [], []
    for m in range(2):
        h = 2 * w[m].T @ w[m]
        phi = theta - a * 2 * w[m].T @ (w[m] @ theta - y[m])
        g = 2 * w[m].T @ (w[m] @ phi - y[m])
        expected_first.append(g)
        expected_second.append(g - a * h @ g)
    np.testing.assert_allclose(g1, np.mean(expected_first, axis=0), rtol=1e-12)
    np.testing.assert_allclose(g2, np.mean(expected_second, axis=0), rtol=1e-12)
    assert np.linalg.norm(g2 - g1) > 1e-3


def test_imaml_gradient_equals_the_implicit_function_theorem_gradient():
    # Inner problem min_phi f(phi) + lam/2 ||phi - theta||^2 with f quadratic: the solution is
    # phi* = (H + lam I)^{-1} (2 W^T y + lam theta) and d phi*/d theta = lam (H + lam I)^{-1}.
    family, task, w, y = quadratic_problem()
    lam = 2.0
    learner = make(IMAML, family, 300, lr=0.1, lam=lam, cg_steps=3)  # 3 = dims: CG is exact
    loss, grads = learner.outer_grad(task, (), ())
    theta = learner.init[0].numpy()
    expected, losses = [], []
    for m in range(2):
        h = 2 * w[m].T @ w[m]
        phi = np.linalg.solve(h + lam * np.eye(3), 2 * w[m].T @ y[m] + lam * theta)
        g = 2 * w[m].T @ (w[m] @ phi - y[m])
        expected.append(lam * np.linalg.solve(h + lam * np.eye(3), g))
        losses.append(np.sum((w[m] @ phi - y[m]) ** 2))
    np.testing.assert_allclose(float(loss), np.mean(losses), rtol=1e-9)
    np.testing.assert_allclose(grads[0].numpy(), np.mean(expected, axis=0), rtol=1e-8)


def test_conjugate_gradient_solves_each_member_system():
    rng = np.random.default_rng(0)
    mats = []
    for _ in range(3):
        a = rng.normal(size=(4, 4))
        mats.append(a @ a.T + 4 * np.eye(4))
    mats = np.stack(mats)
    b = rng.normal(size=(3, 4))
    matvec = lambda v: [tf.linalg.matvec(tf.constant(mats), v[0])]
    (x,) = conjugate_gradient(matvec, [tf.constant(b)], num_steps=4)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(mats, b[..., None])[..., 0], rtol=1e-8)


def test_reptile_with_one_sgd_step_is_a_scaled_first_order_step():
    family = tiny_sinusoid(batch_size=3)
    a = 0.05
    reptile = make(Reptile, family, 1, a)
    joint = make(FOMAML, family, 0, a)  # zero inner steps: the gradient at theta itself
    task, support, query, _ = episode(family)
    _, g_reptile = reptile.outer_grad(task, support, query)
    _, g_joint = joint.outer_grad(task, support, support)
    for r, j in zip(g_reptile, g_joint):
        np.testing.assert_allclose(r.numpy(), a * j.numpy(), rtol=1e-10, atol=1e-14)


def test_reptile_moves_toward_the_mean_adapted_parameters():
    family = tiny_sinusoid(batch_size=3)
    reptile = make(Reptile, family, 3, 0.05)
    task, support, query, _ = episode(family)
    phi = reptile.adapt(task, support)
    theta = [v.numpy() for v in reptile.init]
    optimizer = MetaOptimizer(SGD(0.5), reptile.meta_params)
    optimizer.apply(reptile.outer_grad(task, support, query)[1])
    for v, t, p in zip(reptile.init, theta, phi):
        np.testing.assert_allclose(v.numpy(), t + 0.5 * (np.mean(p.numpy(), 0) - t), rtol=1e-10)


def test_imaml_hessian_vector_product_and_large_lambda_limit():
    family = tiny_sinusoid(batch_size=3)
    imaml = make(IMAML, family, 1, lr=0.1, lam=1e7, cg_steps=3)
    task, support, query, _ = episode(family)
    params = imaml.adapt(task, support)
    rng = np.random.default_rng(0)
    v = [tf.constant(rng.normal(size=p.shape)) for p in params]
    hv = imaml.hessian_vector_product(params, task, support, v)

    def grad(ps):
        with tf.GradientTape() as tape:
            tape.watch(ps)
            loss = tf.reduce_sum(family.member_losses(ps, task, support))
        return tape.gradient(loss, ps)

    eps = 1e-6
    plus = grad([p + eps * d for p, d in zip(params, v)])
    minus = grad([p - eps * d for p, d in zip(params, v)])
    for h, a, b in zip(hv, plus, minus):
        np.testing.assert_allclose(h.numpy(), (a - b).numpy() / (2 * eps), rtol=1e-5, atol=1e-7)
    # As lambda -> infinity, (I + H / lambda)^{-1} -> I: iMAML's gradient becomes FOMAML's.
    fomaml = make(FOMAML, family, 1, lr=0.1)
    for a, b in zip(
        imaml.outer_grad(task, support, query)[1], fomaml.outer_grad(task, support, query)[1]
    ):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


def test_conjugate_gradient_stops_at_negative_curvature():
    mats = np.stack([np.diag([2.0, 1.0]), np.diag([1.0, -1.0])])
    b = np.array([[1.0, 1.0], [0.0, 1.0]])
    matvec = lambda v: [tf.linalg.matvec(tf.constant(mats), v[0])]
    (x,) = conjugate_gradient(matvec, [tf.constant(b)], num_steps=2)
    np.testing.assert_allclose(x.numpy()[0], [0.5, 1.0])  # positive definite: solved
    np.testing.assert_array_equal(x.numpy()[1], [0.0, 0.0])  # p^T A p < 0 at once: stays at 0
