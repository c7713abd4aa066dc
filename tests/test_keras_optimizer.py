"""The Keras optimizer: same trajectory as the project's inner loop, fit, checkpoints, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_quadratic_config

from l2l_tf.errors import UserError
from l2l_tf.experiments.l2l import training as l2l_training
from l2l_tf.keras import LearnedOptimizer
from l2l_tf.optimizers import CoordinatewiseLSTM
from l2l_tf.optimizers.lstm import flatten, unflatten
from l2l_tf.problems.base import TaskFamily
from l2l_tf.unroll import optimizee_step

NUM_STEPS = 5


def make_rule(seed=1):
    return CoordinatewiseLSTM(hidden_size=4, num_layers=2, preprocess="log_sign", seed=seed)


def make_data(n=16, dims=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dims)).astype("float32")
    y = (x @ rng.normal(size=(dims, classes))).argmax(axis=1).astype("int32")
    return x, y


def make_mlp(dims=5, hidden=4, classes=3, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((dims,)),
            keras.layers.Dense(hidden, activation="tanh"),
            keras.layers.Dense(classes),
        ]
    )


class MLPFamily(TaskFamily):
    """The Keras MLP above as a one-member task family on an explicit parameter list."""

    def __init__(self, initial_weights):
        self.initial_weights = [tf.constant(w) for w in initial_weights]

    @property
    def num_members(self):
        return 1

    def sample(self, seed):
        return ()

    def init_params(self, task, seed):
        return [w[None] for w in self.initial_weights]  # a leading member axis of size 1

    def member_losses(self, params, task, batch):
        w1, b1, w2, b2 = (p[0] for p in params)
        x, y = batch
        logits = tf.tanh(x @ w1 + b1) @ w2 + b2
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        return tf.reduce_mean(loss)[None]


def reference_trajectory(rule, model, x, y, steps=NUM_STEPS):
    """Parameters after each step of the project's own loop (`optimizee_step`)."""
    family = MLPFamily([w.numpy() for w in model.trainable_variables])
    params = family.init_params((), None)
    state = rule.init(params)
    out = []
    for _ in range(steps):
        _, params, state = optimizee_step(family, rule, params, state, (), (x, y))
        out.append([p[0].numpy() for p in params])
    return out


def assert_close_trajectories(got, want, atol=1e-5):
    assert len(got) == len(want)
    for step, (g, w) in enumerate(zip(got, want)):
        for a, b in zip(g, w):
            np.testing.assert_allclose(a, b, atol=atol, err_msg=f"step {step + 1}")


def test_custom_loop_reproduces_inner_loop():
    rule, (x, y), model = make_rule(), make_data(), make_mlp()
    initial = [v.numpy() for v in model.trainable_variables]
    want = reference_trajectory(rule, model, x, y)
    optimizer = LearnedOptimizer(rule)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    got = []
    for _ in range(NUM_STEPS):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        got.append([v.numpy() for v in model.trainable_variables])
    assert_close_trajectories(got, want)
    # The parameters really moved, so the comparison is not trivially true.
    assert min(np.abs(g - w).max() for g, w in zip(got[-1], initial)) > 1e-3


def test_model_fit_reproduces_inner_loop():
    rule, (x, y), model = make_rule(), make_data(), make_mlp()
    want = reference_trajectory(rule, model, x, y)
    got = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: got.append(
            [v.numpy() for v in model.trainable_variables]
        )
    )
    model.compile(
        optimizer=LearnedOptimizer(rule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(
        x, y, batch_size=len(x), epochs=NUM_STEPS, shuffle=False, verbose=0, callbacks=[record]
    )
    assert_close_trajectories(got, want)


def test_any_variable_shapes_match_joint_flattened_step():
    """Per-variable state gives the rule's step on the whole flattened list, for any shapes."""
    rule = make_rule()
    rng = np.random.default_rng(3)
    shapes = [(), (3,), (2, 3, 4), (1, 2, 1, 2)]
    variables = [tf.Variable(rng.normal(size=s).astype("float32")) for s in shapes]
    params = [tf.constant(v.numpy()) for v in variables]
    optimizer = LearnedOptimizer(rule)
    state = rule.init(params)
    for step in range(3):
        grads = [tf.constant(rng.normal(size=s).astype("float32")) for s in shapes]
        updates, state = rule.step(grads, state, params)
        params = [p + u for p, u in zip(params, updates)]
        optimizer.apply_gradients(zip(grads, variables))
        for v, p in zip(variables, params):
            np.testing.assert_allclose(v.numpy(), p.numpy(), atol=1e-6, err_msg=f"step {step}")
    # Each variable's slots are its rows of the joint [n, hidden] state.
    for layer in range(rule.num_layers):
        joint = unflatten(tf.range(state.h[layer].shape[0]), params)
        for v, rows in zip(variables, joint):
            own = optimizer.lstm_state(v).h[layer].numpy()
            np.testing.assert_allclose(own, tf.gather(state.h[layer], flatten([rows])), atol=1e-6)


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    """A few meta-iterations on tiny quadratics with log/sign preprocessing (a few seconds)."""
    workdir = tmp_path_factory.mktemp("keras_rule")
    c = tiny_quadratic_config()
    c.rule.preprocess = "log_sign"
    l2l_training.train(c, workdir, log=lambda line: None)
    return workdir


def test_fit_with_trained_rule_lowers_loss(trained_workdir):
    x, y = make_data(n=128, dims=8, seed=1)
    model = make_mlp(dims=8, hidden=8)
    model.compile(
        optimizer=LearnedOptimizer.from_workdir(trained_workdir),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=32, epochs=5, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert np.isfinite(after) and after < 0.8 * before


def _slots(optimizer):
    return [v.numpy() for v in optimizer.variables]


def test_slots_round_trip_through_checkpoint(trained_workdir, tmp_path):
    x, y = make_data()

    def compiled():
        model = make_mlp()
        model.compile(
            optimizer=LearnedOptimizer.from_workdir(trained_workdir),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    model = compiled()
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    saved = _slots(model.optimizer)
    assert any(np.abs(s).max() > 0 for s in saved[2:])  # LSTM state was written
    path = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / "c"))

    restored = compiled()
    restored.optimizer.build(restored.trainable_variables)
    tf.train.Checkpoint(model=restored, optimizer=restored.optimizer).read(path).assert_consumed()
    for a, b in zip(_slots(restored.optimizer), saved):
        np.testing.assert_array_equal(a, b)
    # Training on from the restored state gives what training on from the original gives.
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    restored.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_keras_file_round_trip(trained_workdir, tmp_path):
    x, y = make_data()
    model = make_mlp()
    model.compile(
        optimizer=LearnedOptimizer.from_workdir(trained_workdir),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, LearnedOptimizer)
    for a, b in zip(_slots(loaded.optimizer), _slots(model.optimizer)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(loaded.optimizer.rule.variables, model.optimizer.rule.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_bad_sources_are_user_errors(trained_workdir, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        LearnedOptimizer.from_workdir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not an l2l_tf work directory"):
        LearnedOptimizer.from_workdir(tmp_path / "empty")
    with pytest.raises(UserError, match="no checkpoint"):
        LearnedOptimizer.from_checkpoint(tmp_path / "nothing", {"name": "lstm"})
    with pytest.raises(UserError, match="does not match"):
        LearnedOptimizer.from_checkpoint(
            trained_workdir / "best" / "model", {"name": "lstm", "hidden_size": 7}
        )
    with pytest.raises(UserError, match="CoordinatewiseLSTM"):
        LearnedOptimizer(keras.optimizers.SGD())
    with pytest.raises(UserError, match="stateless"):
        LearnedOptimizer(rule_config={"preprocess": "adam_normalized"})
    with pytest.raises(UserError, match="normalize='none' only"):
        LearnedOptimizer(rule_config={"normalize": "tensor_rms"})
    for field, value in (("rms_output_scale", 1.0), ("rms_input", True)):
        with pytest.raises(UserError, match="rms_output_scale=0 and"):
            LearnedOptimizer(rule_config={field: value})


def test_fit_on_the_mnist_mlp_lowers_loss(trained_workdir):
    """The paper's MNIST MLP (784-20-10, sigmoid) on real digits, offline, with model.fit."""
    from l2l_tf.data.mnist import load_mnist

    data = load_mnist(download=False, log=lambda line: None)
    x = data.x_train[:512].reshape(512, 784).astype("float32") / 255.0
    y = data.y_train[:512].astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((784,)), keras.layers.Dense(20, activation="sigmoid"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=LearnedOptimizer.from_workdir(trained_workdir),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=128, epochs=3, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert np.isfinite(after) and after < 0.8 * before
