"""The sinusoid task family: data, the batched MLP against numpy, seeds, bad fields."""

import math

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf.errors import UserError
from l2l_tf.problems import make_task_family
from l2l_tf.problems.sinusoid import Sinusoid


def test_tasks_and_points_follow_the_papers_distributions():
    family = Sinusoid(num_shots=7, batch_size=50)
    task = family.sample(tf.constant([1, 2]))
    a, phase = task.amplitude.numpy(), task.phase.numpy()
    assert a.shape == phase.shape == (50,)
    assert np.all((a >= 0.1) & (a <= 5.0)) and np.all((phase >= 0) & (phase <= math.pi))
    x, y = family.batch(task, tf.constant([3, 4]))
    assert x.shape == y.shape == (50, 7, 1)
    assert np.all(np.abs(x.numpy()) <= 5.0)
    np.testing.assert_allclose(
        y.numpy(), a[:, None, None] * np.sin(x.numpy() - phase[:, None, None]), rtol=1e-5
    )
    # Stateless: the same seed gives the same task; another seed another one.
    again = family.sample(tf.constant([1, 2]))
    np.testing.assert_array_equal(again.amplitude.numpy(), a)
    assert not np.allclose(family.sample(tf.constant([1, 3])).amplitude.numpy(), a)


def test_member_losses_match_a_numpy_mlp():
    family = Sinusoid(num_shots=5, batch_size=3, hidden_sizes=(4, 6), dtype=tf.float64)
    task = family.sample(tf.constant([0, 1]))
    params = family.init_params(task, tf.constant([2, 3]))
    assert [p.shape.as_list() for p in params] == [
        [3, *s] for s in ([1, 4], [4], [4, 6], [6], [6, 1], [1])
    ]
    x, y = family.batch(task, tf.constant([4, 5]))
    losses = family.member_losses(params, task, (x, y)).numpy()
    p = [t.numpy() for t in params]
    for m in range(3):
        h = np.maximum(x.numpy()[m] @ p[0][m] + p[1][m], 0)
        h = np.maximum(h @ p[2][m] + p[3][m], 0)
        out = h @ p[4][m] + p[5][m]
        np.testing.assert_allclose(losses[m], np.mean((out - y.numpy()[m]) ** 2), rtol=1e-12)
    # The members are independent: each one's gradient is that of its own loss.
    with tf.GradientTape() as tape:
        tape.watch(params)
        total = family.loss(params, task, (x, y))
    grads = tape.gradient(total, params)
    with tf.GradientTape() as tape:
        tape.watch(params)
        first = family.member_losses(params, task, (x, y))[0]
    np.testing.assert_allclose(grads[0][0].numpy(), tape.gradient(first, params)[0][0].numpy())


@pytest.mark.parametrize(
    "fields, name",
    [
        ({"hidden_sizes": (40, 0)}, "problem.hidden_sizes"),
        ({"num_shots": 0}, "problem.num_shots"),
        ({"x_range": (5.0, -5.0)}, "problem.x_range"),
        ({"num_points": 3}, "num_points"),
    ],
)
def test_bad_fields_name_the_field(fields, name):
    with pytest.raises(UserError, match=name):
        make_task_family({"name": "sinusoid", **fields})
