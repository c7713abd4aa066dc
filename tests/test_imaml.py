"""iMAML's implicit meta-gradient against finite differences and the unrolled gradient.

The implicit function theorem holds where the proximal inner problem is solved and smooth: a
tiny tanh MLP on sinusoids (ReLU kinks can leave the proximal minimizer on a non-smooth point,
scripts/imaml_diagnose.py part 1), its inner problem solved by enough gradient steps that the
inner solution is stationary to float64 precision.
"""

import numpy as np
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.meta import IMAML
from l2l_tf.meta.base import sample_episode
from l2l_tf.optimizers import SGD
from l2l_tf.problems import Sinusoid

LAM = 20.0


class TanhSinusoid(Sinusoid):
    """Sinusoid regression by a tanh MLP: a loss that is smooth everywhere."""

    def predict(self, params, x):
        h = x
        for i in range(len(self.layer_sizes)):
            h = tf.matmul(h, params[2 * i]) + params[2 * i + 1][:, None, :]
            if i < len(self.layer_sizes) - 1:
                h = tf.tanh(h)
        return h


def setup(num_inner_steps=40, lr=0.04, cg_steps=16, members=2):
    family = TanhSinusoid(num_shots=5, batch_size=members, hidden_sizes=(3,), dtype=tf.float64)
    task, support, query, init_seed = sample_episode(family, seeding.task_seed(0, seeding.TEST, 1))
    theta = [p[0] for p in family.init_params(task, init_seed)]
    learner = IMAML(family, theta, SGD(lr), num_inner_steps, lam=LAM, cg_steps=cg_steps)
    return learner, task, support, query


def proximal_gradient_norm(learner, task, support):
    """max over members of |grad L_support(phi) + lam (phi - theta)| at the inner solution."""
    phi = learner.adapt(task, support)
    with tf.GradientTape() as tape:
        tape.watch(phi)
        loss = tf.reduce_sum(learner.family.member_losses(phi, task, support))
    grads = tape.gradient(loss, phi)
    theta = learner.initial_params()
    sq = sum(
        tf.reduce_sum(tf.square(g + LAM * (p - t)), axis=list(range(1, g.shape.rank)))
        for g, p, t in zip(grads, phi, theta)
    )
    return float(tf.reduce_max(tf.sqrt(sq)))


def test_inner_solution_is_the_proximal_optimum():
    learner, task, support, _ = setup()
    assert proximal_gradient_norm(learner, task, support) < 1e-10
    learner.num_inner_steps = 1  # one SGD step is far from it: the config's regime
    assert proximal_gradient_norm(learner, task, support) > 1e-2


def test_implicit_gradient_matches_finite_differences_of_the_solved_inner_problem():
    learner, task, support, query = setup()  # 16 CG steps = the 16 parameters: CG is exact
    _, grads = learner.outer_grad(task, support, query)

    def meta_loss():
        phi = learner.adapt(task, support)
        return float(tf.reduce_mean(learner.family.member_losses(phi, task, query)))

    rng = np.random.default_rng(0)
    eps = 1e-5
    originals = [v.numpy() for v in learner.init]
    for _ in range(2):
        d = [rng.normal(size=v.shape) for v in learner.init]
        values = []
        for sign in (1, -1):
            for v, o, di in zip(learner.init, originals, d):
                v.assign(o + sign * eps * di)
            values.append(meta_loss())
        for v, o in zip(learner.init, originals):
            v.assign(o)
        numeric = (values[0] - values[1]) / (2 * eps)
        analytic = sum(float(tf.reduce_sum(g * di)) for g, di in zip(grads, d))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_implicit_gradient_is_the_limit_of_the_unrolled_gradient():
    # Differentiating through the inner steps (anchor included) gives the same gradient once the
    # inner loop has converged; after one step it does not.
    learner, task, support, query = setup()
    _, implicit = learner.outer_grad(task, support, query)
    family = learner.family

    def unrolled(steps):
        with tf.GradientTape() as tape:
            theta = learner.initial_params()
            phi = list(theta)
            for _ in range(steps):
                with tf.GradientTape() as inner:
                    inner.watch(phi)
                    loss = tf.reduce_sum(family.member_losses(phi, task, support))
                g = inner.gradient(loss, phi)
                phi = [p - 0.04 * (gi + LAM * (p - t)) for p, gi, t in zip(phi, g, theta)]
            meta_loss = tf.reduce_mean(family.member_losses(phi, task, query))
        return tape.gradient(meta_loss, learner.init)

    for a, b in zip(unrolled(40), implicit):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-7, atol=1e-10)
    gap = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(unrolled(1), implicit))
    assert gap > 1e-3


def test_one_cg_step_is_the_query_gradient_damped_by_its_curvature():
    # The sinusoid config's setting (cg_steps 1): v_i = g_i / (1 + g_i^T H_i g_i / (lam g_i^T g_i)),
    # g_i = grad L_query_i(phi_i), H_i the support Hessian at phi_i: first-order MAML's
    # direction, shortened where the support loss curves along it.
    learner, task, support, query = setup(num_inner_steps=1, cg_steps=1, members=3)
    family = learner.family
    phi = learner.adapt(task, support)
    _, v = learner.implicit_grad(phi, task, support, query)
    with tf.GradientTape() as tape:
        tape.watch(phi)
        loss = tf.reduce_sum(family.member_losses(phi, task, query))
    g = tape.gradient(loss, phi)
    hg = learner.hessian_vector_product(phi, task, support, g)
    flat = lambda ps: np.concatenate([p.numpy().reshape(3, -1) for p in ps], axis=1)  # noqa: E731
    g, hg, v = flat(g), flat(hg), flat(v)
    curvature = np.sum(g * hg, 1) / np.sum(g * g, 1)
    assert np.ptp(curvature) > 1e-3  # the members are damped differently
    np.testing.assert_allclose(v, g / (1 + curvature / LAM)[:, None], rtol=1e-10)
