"""Every update rule against a numpy reference, and the LSTM rule's state and shapes."""

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf.errors import UserError
from l2l_tf.optimizers import UPDATE_RULES, make_rule
from l2l_tf.optimizers.lstm import (
    CoordinatewiseLSTM,
    chunk_sizes,
    flatten,
    tensor_rms,
    unflatten,
)
from l2l_tf.optimizers.preprocess import adam_normalized, log_sign


def np_sgd(grads, lr):
    return [[-lr * g for g in gs] for gs in grads]


def np_momentum(grads, lr, mu=0.9, nesterov=False):
    v = [np.zeros_like(g) for g in grads[0]]
    out = []
    for gs in grads:
        us = []
        for k, g in enumerate(gs):
            v[k] = mu * v[k] + g
            us.append(-lr * (g + mu * v[k] if nesterov else v[k]))
        out.append(us)
    return out


def np_rmsprop(grads, lr, rho=0.9, eps=1e-8):
    s = [np.zeros_like(g) for g in grads[0]]
    out = []
    for gs in grads:
        us = []
        for k, g in enumerate(gs):
            s[k] = rho * s[k] + (1 - rho) * g * g
            us.append(-lr * g / (np.sqrt(s[k]) + eps))
        out.append(us)
    return out


def np_adam(grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    m = [np.zeros_like(g) for g in grads[0]]
    v = [np.zeros_like(g) for g in grads[0]]
    out = []
    for t, gs in enumerate(grads, start=1):
        us = []
        for k, g in enumerate(gs):
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            us.append(-lr * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps))
        out.append(us)
    return out


REFERENCES = {
    "sgd": np_sgd,
    "momentum": np_momentum,
    "nag": lambda g, lr: np_momentum(g, lr, nesterov=True),
    "rmsprop": np_rmsprop,
    "adam": np_adam,
}


def test_every_hand_rule_has_a_reference():
    # Rules on local signals instead of gradients (Hebbian) are tested in test_synaptic.py.
    hand = {
        name
        for name, cls in UPDATE_RULES.items()
        if not getattr(cls, "learned", False) and not getattr(cls, "needs_signals", False)
    }
    assert hand == set(REFERENCES)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_hand_rule_matches_numpy(name):
    rng = np.random.default_rng(0)
    shapes = [(3, 2), (4,)]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(5)]
    lr = 0.05
    rule = make_rule({"name": name, "learning_rate": lr})
    params = [tf.zeros(s, tf.float64) for s in shapes]
    state = rule.init(params)
    expected = REFERENCES[name](grads, lr)
    for t, gs in enumerate(grads):
        updates, new_state = rule.step([tf.constant(g) for g in gs], state, params)
        assert tf.nest.map_structure(lambda t: t.shape, new_state) == tf.nest.map_structure(
            lambda t: t.shape, state
        )
        state = new_state
        for u, e in zip(updates, expected[t]):
            np.testing.assert_allclose(u.numpy(), e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_learning_rate_change_does_not_retrace(name):
    rule = make_rule({"name": name, "learning_rate": 0.1})
    params = [tf.ones([3])]
    traces = []

    @tf.function
    def step(g):
        traces.append(1)
        return rule.step([g], rule.init(params), params)[0][0]

    a = step(tf.ones([3])).numpy()
    rule.learning_rate.assign(0.2)
    b = step(tf.ones([3])).numpy()
    assert len(traces) == 1
    np.testing.assert_allclose(b, 2 * a, rtol=1e-6)


def test_log_sign_matches_paper_formula():
    p = 10.0
    g = np.array([3.0, -0.5, 1e-6, -1e-7, 0.0, np.exp(-p) * 1.0001])
    expected = []
    for x in g:
        if abs(x) >= np.exp(-p):
            expected.append([np.log(abs(x)) / p, np.sign(x)])
        else:
            expected.append([-1.0, np.exp(p) * x])
    np.testing.assert_allclose(log_sign(tf.constant(g), p).numpy(), expected, rtol=1e-12)


def test_log_sign_gradient_is_finite_at_zero():
    g = tf.constant([0.0, 1e-9, 2.0], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(g)
        y = tf.reduce_sum(log_sign(g))
    assert np.all(np.isfinite(tape.gradient(y, g).numpy()))


def test_adam_normalized_matches_numpy_and_is_scale_free():
    beta1, beta2, eps = 0.9, 0.8, 1e-8
    rng = np.random.default_rng(0)
    gs = rng.normal(size=(4, 5))
    m = v = np.zeros(5)
    moments = (tf.zeros([5], tf.float64), tf.zeros([5], tf.float64), tf.zeros([], tf.float64))
    scaled = moments
    for t, g in enumerate(gs, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        denom = np.sqrt(v / (1 - beta2**t)) + eps
        expected = np.stack([m / (1 - beta1**t) / denom, g / denom], axis=-1)
        x, moments = adam_normalized(tf.constant(g), moments, beta1, beta2, eps)
        np.testing.assert_allclose(x.numpy(), expected, rtol=1e-10)
        # Gradients 1000 times smaller give the same features (up to eps).
        x_small, scaled = adam_normalized(tf.constant(1e-3 * g), scaled, beta1, beta2, eps)
        np.testing.assert_allclose(x_small.numpy(), expected, rtol=1e-4)
    # The first step's features are (sign(g), sign(g)) up to eps.
    x, _ = adam_normalized(tf.constant(gs[0]), (tf.zeros([5], tf.float64),) * 2 + (0.0,))
    np.testing.assert_allclose(x.numpy(), np.sign(gs[0])[:, None] * np.ones((1, 2)), rtol=1e-6)


def test_lstm_with_adam_normalized_carries_moments():
    rule = CoordinatewiseLSTM(hidden_size=3, preprocess="adam_normalized", beta1=0.5, beta2=0.5)
    params = [tf.zeros([2, 2]), tf.zeros([3])]
    state = rule.init(params)
    g = [tf.ones([2, 2]), -2.0 * tf.ones([3])]
    for _ in range(2):
        _, state = rule.step(g, state, params)
    m, v, t = (x.numpy() for x in state.features)
    assert t == 2.0
    # After two steps of a constant gradient: m = 0.75 g, v = 0.75 g^2.
    np.testing.assert_allclose(m, 0.75 * np.array([1, 1, 1, 1, -2, -2, -2]), rtol=1e-6)
    np.testing.assert_allclose(v, 0.75 * np.array([1, 1, 1, 1, 4, 4, 4]), rtol=1e-6)


@pytest.mark.parametrize("bad", [{"beta1": 1.0}, {"beta2": -0.1}, {"beta1": "x"}])
def test_lstm_rejects_bad_betas(bad):
    with pytest.raises(UserError, match="rule.beta"):
        CoordinatewiseLSTM(preprocess="adam_normalized", **bad)


@pytest.mark.parametrize("preprocess", ["none", "log_sign", "adam_normalized"])
def test_lstm_state_and_shapes(preprocess):
    rule = CoordinatewiseLSTM(hidden_size=4, num_layers=2, preprocess=preprocess)
    params = [tf.zeros([2, 3]), tf.zeros([5])]
    state = rule.init(params)
    assert [h.shape for h in state.h] == [tf.TensorShape([11, 4])] * 2
    grads = [tf.random.normal([2, 3]), tf.random.normal([5])]
    updates, new_state = rule.step(grads, state, params)
    assert [u.shape for u in updates] == [p.shape for p in params]
    assert tf.nest.map_structure(lambda t: t.shape, new_state) == tf.nest.map_structure(
        lambda t: t.shape, state
    )
    assert not np.allclose(new_state.h[0].numpy(), 0.0)
    # 2 layers: kernels, biases, and the output layer.
    assert len(rule.trainable_variables) == 6


def test_lstm_is_coordinatewise_with_shared_weights():
    """Each coordinate's update depends only on its own gradient history."""
    rule = CoordinatewiseLSTM(hidden_size=3, num_layers=2, preprocess="log_sign")
    g = tf.constant([0.3, -2.0, 1e-3, 5.0])
    params = [tf.zeros([4])]
    together, _ = rule.step([g], rule.init(params), params)
    for k in range(4):
        alone, _ = rule.step([g[k : k + 1]], rule.init([tf.zeros([1])]), [tf.zeros([1])])
        np.testing.assert_allclose(alone[0].numpy(), together[0].numpy()[k : k + 1], rtol=1e-5)


def _numpy_lstm_layer(x, h, c, kernel, bias):
    """One LSTM layer in numpy (gate order i, f, g, o): the reference for the rule's step."""
    sig = lambda v: 1 / (1 + np.exp(-v))
    i, f, gg, o = np.split(np.concatenate([x, h], 1) @ kernel + bias, 4, axis=1)
    c = sig(f) * c + sig(i) * np.tanh(gg)
    return sig(o) * np.tanh(c), c


def test_lstm_matches_numpy_reference():
    rule = CoordinatewiseLSTM(
        hidden_size=3, num_layers=2, preprocess="none", output_scale=0.5, dtype=tf.float64
    )
    params = [tf.zeros([4], tf.float64)]
    state = rule.init(params)
    rng = np.random.default_rng(1)
    h = [np.zeros((4, 3)) for _ in range(2)]
    c = [np.zeros((4, 3)) for _ in range(2)]
    for _ in range(3):
        g = rng.normal(size=4)
        updates, state = rule.step([tf.constant(g)], state, params)
        x = g[:, None]
        for layer in range(2):
            h[layer], c[layer] = _numpy_lstm_layer(
                x, h[layer], c[layer], rule.kernels[layer].numpy(), rule.biases[layer].numpy()
            )
            x = h[layer]
        expected = 0.5 * (x @ rule.out_kernel.numpy() + rule.out_bias.numpy())[:, 0]
        np.testing.assert_allclose(updates[0].numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("chunks", [2, 3, 7, 50])
def test_parallel_chunks_give_the_same_steps(chunks):
    """rule.parallel_chunks only regroups the coordinates: every update and state is the same
    (7 coordinates in 2 tensors, so the chunks are uneven and cross the tensors' boundary; 50
    chunks are cut to one per coordinate)."""
    kw = dict(hidden_size=3, num_layers=2, preprocess="adam_normalized", dtype=tf.float64)
    one, many = CoordinatewiseLSTM(**kw), CoordinatewiseLSTM(**kw, parallel_chunks=chunks)
    params = [tf.zeros([3], tf.float64), tf.zeros([2, 2], tf.float64)]
    state_one, state_many = one.init(params), many.init(params)
    rng = np.random.default_rng(2)
    for _ in range(3):
        grads = [tf.constant(rng.normal(size=p.shape)) for p in params]
        up_one, state_one = one.step(grads, state_one, params)
        up_many, state_many = many.step(grads, state_many, params)
        flat_one = tf.nest.flatten((up_one, state_one))
        for a, b in zip(flat_one, tf.nest.flatten((up_many, state_many))):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-15)


def test_chunk_sizes():
    assert chunk_sizes(7, 2) == [4, 3]
    assert chunk_sizes(9, 3) == [3, 3, 3]
    assert chunk_sizes(3, 5) == [1, 1, 1]
    assert chunk_sizes(1280, 1) == [1280]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_lstm_rejects_bad_parallel_chunks(bad):
    with pytest.raises(UserError, match="rule.parallel_chunks"):
        CoordinatewiseLSTM(parallel_chunks=bad)


def test_tensor_rms_matches_numpy_per_member():
    rng = np.random.default_rng(3)
    g = rng.normal(size=(3, 4, 5))
    g[1] *= 1e-6  # one member's gradients a million times smaller
    g[2] = 0.0  # and one member's all zero
    expected = g / np.sqrt(np.mean(g**2, axis=(1, 2), keepdims=True) + np.finfo(np.float64).tiny)
    np.testing.assert_allclose(tensor_rms(tf.constant(g)).numpy(), expected, rtol=1e-10)
    assert np.all(tensor_rms(tf.constant(g)).numpy()[2] == 0.0)
    np.testing.assert_allclose(np.sqrt(np.mean(expected[:2] ** 2, axis=(1, 2))), [1.0, 1.0])


def test_lstm_with_tensor_rms_ignores_each_tensors_scale():
    """rule.normalize=tensor_rms: one member's tensor scaled by 1e-4 gives it the same updates;
    without it the updates differ."""
    rng = np.random.default_rng(4)
    gs = [rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 3))]
    scaled = [g.copy() for g in gs]
    scaled[0][1] *= 1e-4
    params = [tf.zeros(g.shape, tf.float64) for g in gs]
    outs = {}
    for normalize in ("tensor_rms", "none"):
        rule = CoordinatewiseLSTM(hidden_size=3, normalize=normalize, dtype=tf.float64)
        for name, grads in (("plain", gs), ("scaled", scaled)):
            state = rule.init(params)
            for _ in range(2):
                updates, state = rule.step([tf.constant(g) for g in grads], state, params)
            outs[normalize, name] = [u.numpy() for u in updates]
    for a, b in zip(outs["tensor_rms", "plain"], outs["tensor_rms", "scaled"]):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    assert not np.allclose(outs["none", "plain"][0][1], outs["none", "scaled"][0][1])
    np.testing.assert_allclose(outs["none", "plain"][0][0], outs["none", "scaled"][0][0])


def test_rms_head_starts_at_zero_and_scales_with_each_tensor():
    """rule.rms_output_scale: the head is zero at initialization (the paper's rule, same
    weights); with tensor_rms inputs and the first head silenced, a member's tensor scaled by
    1e-4 gets its updates scaled by exactly 1e-4, the others unchanged."""
    rng = np.random.default_rng(5)
    gs = [rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 3))]
    params = [tf.zeros(g.shape, tf.float64) for g in gs]

    def run(rule, grads, steps=2):
        state = rule.init(params)
        for _ in range(steps):
            updates, state = rule.step([tf.constant(g) for g in grads], state, params)
        return [u.numpy() for u in updates]

    kwargs = dict(hidden_size=3, normalize="tensor_rms", dtype=tf.float64)
    paper = run(CoordinatewiseLSTM(**kwargs), gs)
    rule = CoordinatewiseLSTM(rms_output_scale=2.0, **kwargs)
    assert len(rule.trainable_variables) == 8
    for a, b in zip(paper, run(rule, gs)):
        np.testing.assert_allclose(a, b, rtol=1e-12)

    rule.out_kernel.assign(tf.zeros_like(rule.out_kernel))
    rule.rms_out_kernel.assign(tf.constant(rng.normal(size=(3, 1))))
    rule.rms_out_bias.assign([0.3])
    scaled = [g.copy() for g in gs]
    scaled[0][1] *= 1e-4
    plain, small = run(rule, gs), run(rule, scaled)
    np.testing.assert_allclose(small[0][1], 1e-4 * plain[0][1], rtol=1e-9)
    np.testing.assert_allclose(small[0][0], plain[0][0], rtol=1e-12)
    np.testing.assert_allclose(small[1], plain[1], rtol=1e-12)
    # Against numpy at one step: 2.0 * rms(G) * (W' h + b') with h the rule's own top state.
    state = rule.init(params)
    updates, state = rule.step([tf.constant(g) for g in gs], state, params)
    head = 2.0 * (state.h[-1].numpy() @ rule.rms_out_kernel.numpy() + 0.3)[:, 0]
    rms = np.sqrt(np.mean(gs[0] ** 2, axis=(1, 2)))
    np.testing.assert_allclose(updates[0].numpy(), head[:36].reshape(2, 6, 3) * rms[:, None, None])


@pytest.mark.parametrize("normalize", ["none", "tensor_rms"])
def test_rms_input_appends_the_gradient_over_its_tensors_rms(normalize):
    """rule.rms_input: the first layer gets one more input, g / rms(G) per task; the rule's
    first step equals a numpy LSTM fed the preprocessed features and that column."""
    rng = np.random.default_rng(6)
    gs = [rng.normal(size=(2, 4)) * 1e-3, rng.normal(size=(2, 3))]
    rule = CoordinatewiseLSTM(
        hidden_size=3, num_layers=1, normalize=normalize, rms_input=True, dtype=tf.float64
    )
    assert rule.kernels[0].shape == (2 + 1 + 3, 12)
    params = [tf.zeros(g.shape, tf.float64) for g in gs]
    updates, _ = rule.step([tf.constant(g) for g in gs], rule.init(params), params)
    scaled = [g / np.sqrt(np.mean(g**2, axis=1, keepdims=True)) for g in gs]
    seen = scaled if normalize == "tensor_rms" else gs
    feats = log_sign(tf.constant(np.concatenate([g.ravel() for g in seen])), 10.0).numpy()
    x = np.concatenate([feats, np.concatenate([g.ravel() for g in scaled])[:, None]], 1)
    zeros = np.zeros((14, 3))
    h, _ = _numpy_lstm_layer(x, zeros, zeros, rule.kernels[0].numpy(), rule.biases[0].numpy())
    expected = 0.1 * (h @ rule.out_kernel.numpy() + rule.out_bias.numpy())[:, 0]
    got = np.concatenate([u.numpy().ravel() for u in updates])
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    with pytest.raises(UserError, match="rule.rms_input"):
        CoordinatewiseLSTM(rms_input=1)


def test_lstm_rejects_bad_rms_output_scale():
    for bad in (-1.0, True, float("nan"), float("inf")):
        with pytest.raises(UserError, match="rule.rms_output_scale"):
            CoordinatewiseLSTM(rms_output_scale=bad)


def test_lstm_rejects_unknown_normalization():
    with pytest.raises(UserError, match="rule.normalize must be one of"):
        CoordinatewiseLSTM(normalize="layer")


def test_flatten_roundtrip():
    ts = [tf.reshape(tf.range(6.0), [2, 3]), tf.constant([7.0])]
    back = unflatten(flatten(ts), ts)
    for a, b in zip(ts, back):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
