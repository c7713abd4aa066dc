"""The generalist optimizer's parts: data sets, MLP/conv tasks, the task distribution, the MLP
rule (against a numpy reference), meta-training on the distribution (resume), shipping and
loading the trained rule, and the held-out suite."""

import json
import math
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from configs import generalist, suite
from l2l_tf import pretrained
from l2l_tf.data import classification
from l2l_tf.errors import UserError
from l2l_tf.experiments.l2l import evaluation as l2l_evaluation
from l2l_tf.experiments.l2l import training as l2l_training
from l2l_tf.optimizers import make_rule
from l2l_tf.optimizers.mlp_rule import MLPRule, factored_second_moment
from l2l_tf.problems.distribution import TaskDistribution, format_spec, parse_spec
from l2l_tf.problems.mlp import MLP, ConvNet


def quiet(*args, **kwargs):
    pass


# --- data and task families -------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "wine", "mnist14"])
def test_offline_sets_load_scaled_and_split(name):
    d = classification.load_classification(name)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    assert len(d.x_train) > len(d.x_test) > 0
    assert set(np.unique(d.y_train)) == set(range(d.num_classes))
    if name in classification.IMAGE_SHAPES:
        assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    else:  # standardized with the training split's statistics
        np.testing.assert_allclose(d.x_train.mean(axis=0), 0.0, atol=1e-4)


def test_unknown_or_missing_sets_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="unknown data set"):
        classification.load_classification("cifar")
    with pytest.raises(UserError, match="Fashion-MNIST"):
        classification.load_classification("fashion14", str(tmp_path / "none"))
    assert not classification.available("fashion14", str(tmp_path / "none"))


def numpy_mlp_loss(params, x, y, weights, act):
    h = x
    for layer in range(len(params) // 2):
        h = h @ params[2 * layer] + params[2 * layer + 1]
        if layer < len(params) // 2 - 1:
            h = act(h)
    z = h - h.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-(logp[np.arange(len(y)), y] * weights).sum())


def test_mlp_loss_matches_numpy_per_member_activation_and_batch():
    family = MLP("wine", (6, 5), ("tanh", "relu"), (3, 8), num_members=6)
    seed = tf.constant([3, 4])
    task = family.sample(seed)
    params = family.init_params(task, seed)
    x, y = family.batch(task, seed)
    losses = family.member_losses(params, task, (x, y)).numpy()
    acts = {0: np.tanh, 1: lambda z: np.maximum(z, 0.0)}
    seen = set()
    for m in range(6):
        a = int(np.argmax(task.activation[m].numpy()))
        w = task.batch_weights[m].numpy()
        b = int(round(1.0 / w[0]))
        seen.add((a, b))
        np.testing.assert_allclose(w[:b], 1.0 / b)
        assert np.all(w[b:] == 0)
        ref = numpy_mlp_loss([p[m].numpy() for p in params], x[m].numpy(), y[m].numpy(), w, acts[a])
        np.testing.assert_allclose(losses[m], ref, rtol=1e-5)
    assert len(seen) > 1  # members really draw their own activation and batch size
    metrics = family.held_out_metrics(params, task)
    assert set(metrics) == {"train_loss", "test_loss", "test_accuracy"}


def test_conv_net_trains_and_checks_its_data_set():
    family = ConvNet("digits", (4, 6), "relu", 16, num_members=2)
    seed = tf.constant([1, 2])
    task = family.sample(seed)
    params = family.init_params(task, seed)
    batch = family.batch(task, seed)
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = family.loss(params, task, batch)
    grads = tape.gradient(loss, params)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    assert family.logits(params, task, batch[0]).shape == (2, 16, 10)
    with pytest.raises(UserError, match="image set"):
        ConvNet("wine")


# --- the task distribution ----------------------------------------------------------------


def test_spec_round_trip_and_errors():
    spec = "mlp dataset=digits hidden_sizes=48,48 activation=tanh batch_size=128 steps=500"
    kind, fields, steps = parse_spec(spec)
    assert (kind, steps, fields["hidden_sizes"]) == ("mlp", 500, (48, 48))
    assert parse_spec(format_spec(kind, fields, steps)) == (kind, fields, steps)
    assert parse_spec("mlp hidden_sizes=8, steps=3")[1]["hidden_sizes"] == (8,)
    for bad in ("resnet steps=3", "mlp dataset=digits", "mlp steps=0", "mlp digits steps=3"):
        with pytest.raises(UserError):
            parse_spec(bad)


def test_distribution_samples_deterministically_inside_its_ranges():
    config = generalist.get_config()
    fields = {k: v for k, v in config.problem.items() if k != "name"}
    dist = TaskDistribution(**fields, log=quiet)
    samples = [dist.sample(0, e, 50) for e in range(300)]
    assert samples == [dist.sample(0, e, 50) for e in range(300)]
    assert samples != [dist.sample(1, e, 50) for e in range(300)]
    kinds = {s[0] for s in samples}
    assert kinds == {"mlp", "conv", "quadratic"}
    validation_widths = {parse_spec(s)[1]["hidden_sizes"][0] for s in config.problem.validation}
    for kind, f, steps in samples:
        assert 100 <= steps <= 1000 and steps % 50 == 0
        if kind == "mlp":
            assert set(f["hidden_sizes"]) <= set(config.problem.widths)
            assert 1 <= len(f["hidden_sizes"]) <= 3
            assert not set(f["hidden_sizes"]) & validation_widths  # held out of training
    with pytest.raises(UserError, match="validation"):
        TaskDistribution(log=quiet)


# --- the MLP rule -----------------------------------------------------------------------------


def numpy_rule_step(rule, weights, grads, params, state):
    """One MLPRule step in numpy, written from its docstring."""
    momenta, v, t = state
    t = t + 1
    v = [rule.beta2 * a + (1 - rule.beta2) * g**2 for a, g in zip(v, grads)]
    momenta = [
        [b * m + (1 - b) * g for m, g in zip(ms, grads)] for b, ms in zip(rule.betas, momenta)
    ]
    rows, nominal = [], []
    for i, (g, p) in enumerate(zip(grads, params)):
        v_hat = v[i] / (1 - rule.beta2**t)
        scale = 1 / (np.sqrt(v_hat) + rule.eps)
        m_hat = [ms[i] / (1 - b**t) for ms, b in zip(momenta, rule.betas)]
        m9 = m_hat[rule.betas.index(0.9)]
        if g.ndim >= 3:
            row = v_hat.mean(axis=-1, keepdims=True)
            col = v_hat.mean(axis=-2, keepdims=True)
            fact = row * col / row.mean(axis=-2, keepdims=True)
        else:
            fact = v_hat
        rms_p = np.sqrt((p**2).mean(axis=tuple(range(1, p.ndim)), keepdims=True) + 1.17549435e-38)
        cols = [g * scale, *[m * scale for m in m_hat], m9 / (np.sqrt(fact) + rule.eps), p / rms_p]
        cols = [c.reshape(-1) for c in cols]
        cols += [np.full(g.size, np.tanh(t / s)) for s in rule.time_scales]
        cols.append(np.full(g.size, float(g.ndim == 2)))
        rows.append(np.stack(cols, axis=1))
        nominal.append((m9 * scale).reshape(-1))
    h = np.concatenate(rows)
    n = rule.num_layers
    for k, b in zip(weights[:n], weights[n : 2 * n]):
        h = np.maximum(h @ k + b, 0)
    out = h @ weights[2 * n] + weights[2 * n + 1]
    s = rule.max_log_scale * np.tanh(out[:, 1] / rule.max_log_scale)
    d = out[:, 0]
    if rule.max_direction:
        d = rule.max_direction * np.tanh(d / rule.max_direction)
    step = -np.exp(weights[-1] + s) * (np.concatenate(nominal) + d)
    sizes = np.cumsum([g.size for g in grads])[:-1]
    updates = [u.reshape(g.shape) for u, g in zip(np.split(step, sizes), grads)]
    return updates, (momenta, v, t)


@pytest.mark.parametrize("max_direction", [0.0, 0.7])
def test_mlp_rule_matches_numpy_reference(max_direction):
    rule = MLPRule(hidden_size=5, max_direction=max_direction, seed=3, dtype=tf.float64)
    rng = np.random.default_rng(0)
    for w in rule.weights:  # non-zero outputs, so the network's part is tested too
        w.assign(0.5 * rng.normal(size=w.shape))
    weights = [w.numpy() for w in rule.weights]
    params = [rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3))]
    state_tf = rule.init([tf.constant(p) for p in params])
    state_np = (
        [[np.zeros_like(p) for p in params] for _ in rule.betas],
        [np.zeros_like(p) for p in params],
        0,
    )
    for _ in range(3):
        grads = [rng.normal(size=p.shape) * 10.0 ** rng.integers(-4, 1) for p in params]
        updates, state_tf = rule.step(
            [tf.constant(g) for g in grads], state_tf, [tf.constant(p) for p in params]
        )
        expected, state_np = numpy_rule_step(rule, weights, grads, params, state_np)
        for u, e in zip(updates, expected):
            np.testing.assert_allclose(u.numpy(), e, rtol=1e-9, atol=1e-14)
        params = [p + e for p, e in zip(params, expected)]


def test_untrained_mlp_rule_is_adam_and_scale_free():
    rule = make_rule({"name": "mlp_rule"})
    adam = make_rule({"name": "adam", "learning_rate": 1e-3})
    params = [tf.random.stateless_normal([2, 5, 3], [0, 1])]
    grads = [tf.random.stateless_normal([2, 5, 3], [0, 2])]
    u, _ = rule.step(grads, rule.init(params), params)
    a, _ = adam.step(grads, adam.init(params), params)
    np.testing.assert_allclose(u[0].numpy(), a[0].numpy(), rtol=1e-5, atol=1e-9)
    # Features do not change when the loss is scaled (gradients x 1000).
    g = grads[0]
    x1, c1, n1 = rule.features(g, params[0], [g] * 4, tf.square(g), 1.0)
    x2, c2, n2 = rule.features(1e3 * g, params[0], [1e3 * g] * 4, tf.square(1e3 * g), 1.0)
    for a, b in ((x1, x2), (c1, c2), (n1, n2)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    assert x1.shape == (30, 7) and c1.shape == (5,)


def test_factored_second_moment_is_exact_for_rank_one():
    r, c = np.array([1.0, 2.0, 3.0]), np.array([0.5, 4.0])
    v = np.outer(r, c)[None]
    np.testing.assert_allclose(factored_second_moment(tf.constant(v)).numpy(), v, rtol=1e-12)


def test_mlp_rule_rejects_bad_fields():
    for bad in (
        {"betas": (0.5,)},
        {"inputs": ("gradient",)},
        {"learning_rate": 0.0},
        {"hidden_size": 0},
    ):
        with pytest.raises(UserError):
            MLPRule(**bad)


# --- meta-training on the distribution, shipping and the suite ------------------------------


def rule_weights(workdir, config):
    rule = l2l_training.build_learned_rule(config)
    ckpt = tf.train.Checkpoint(rule=rule)
    ckpt.restore(tf.train.latest_checkpoint(str(workdir / "ckpt"))).expect_partial()
    return [v.numpy() for v in rule.weights]


# PES carries its particles through the checkpoint; slow (28 s), so run with -m slow.
@pytest.mark.parametrize("estimator", ["tbptt", pytest.param("pes", marks=pytest.mark.slow)])
def test_distribution_run_resumes_exactly(tmp_path, estimator):
    config = generalist.get_config("quick")
    config.meta.estimator = estimator  # PES carries its particles through the checkpoint
    config.train.checkpoint_every = 12
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    l2l_training.train(config, straight, log=quiet)

    def interrupt_at_4(line):  # mid-episode: the first episode has 2+ truncations
        if line.startswith("iter 4/"):
            os.kill(os.getpid(), signal.SIGINT)

    assert l2l_training.train(config, resumed, log=interrupt_at_4)["iterations"] == 4
    l2l_training.train(config, resumed, log=quiet)
    for a, b in zip(rule_weights(straight, config), rule_weights(resumed, config)):
        np.testing.assert_array_equal(a, b)
    a = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (resumed / "metrics.jsonl").read_text().splitlines()]
    key = [(r["iteration"], r["meta_loss"]) for r in a if "meta_loss" in r]
    assert key == [(r["iteration"], r["meta_loss"]) for r in b if "meta_loss" in r]


def test_export_load_and_suite(tmp_path):
    config = generalist.get_config("quick")
    workdir = tmp_path / "run"
    l2l_training.train(config, workdir, log=quiet)
    rule = l2l_training.build_learned_rule(config)
    from l2l_tf.run.workdir import restore_best

    restore_best(rule, workdir)
    pretrained.export(rule, "tiny", {"source": "test"}, tmp_path / "shipped")
    assert pretrained.names(tmp_path / "shipped") == ["tiny"]
    loaded = pretrained.load("tiny", tmp_path / "shipped")
    for a, b in zip(rule.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(UserError, match="no shipped optimizer 'nope'"):
        pretrained.load("nope", tmp_path / "shipped")

    results = l2l_evaluation.evaluate_suite(
        suite.get_config("quick"),
        rule=loaded,
        rule_name="tiny",
        output_dir=tmp_path / "suite",
        log=quiet,
    )
    on_disk = json.loads((tmp_path / "suite" / "results.json").read_text())
    assert on_disk["summary"] == results["summary"]
    assert (tmp_path / "suite" / "ratios.png").stat().st_size > 0
    assert len(on_disk["tasks"]) == len(suite.QUICK_TASKS)
    for task in on_disk["tasks"]:
        baselines = {k: v for k, v in task["scores"].items() if k != "learned"}
        assert task["best"] == min(baselines.values())
        assert (tmp_path / "suite" / "tasks" / task["name"] / "results.json").is_file()
    s = on_disk["summary"]
    assert s["beats_best"] == sum(t["learned"] < t["best"] for t in on_disk["tasks"])

    # A second rule reuses the first evaluation's tuned baselines, unchanged.
    lines = []
    again = l2l_evaluation.evaluate_suite(
        suite.get_config("quick"), rule=MLPRule(hidden_size=2), rule_name="untrained",
        output_dir=tmp_path / "again", baselines_from=tmp_path / "suite", log=lines.append,
    )
    assert sum("(reused)" in line for line in lines) == 2 * len(suite.QUICK_TASKS)
    for a, b in zip(results["tasks"], again["tasks"]):
        assert {k: v for k, v in a["scores"].items() if k != "learned"} == {
            k: v for k, v in b["scores"].items() if k != "learned"
        }


def test_shipped_generalist_loads():
    if "generalist" not in pretrained.names():
        pytest.fail("the package ships no generalist optimizer (l2l_tf/pretrained/)")
    rule = pretrained.load("generalist")
    assert isinstance(rule, MLPRule)
    meta = pretrained.info("generalist")
    assert meta["rule"]["name"] == "mlp_rule"
    size = sum(int(np.prod(w.shape)) for w in rule.weights)
    assert size < 10_000
    # One step on a fresh problem is finite and of a sensible size.
    params = [tf.random.stateless_normal([1, 8, 4], [0, 1]) * 0.3]
    grads = [tf.random.stateless_normal([1, 8, 4], [0, 2])]
    (u,), _ = rule.step(grads, rule.init(params), params)
    assert np.all(np.isfinite(u.numpy())) and 0 < float(tf.reduce_max(tf.abs(u))) < 1.0
    assert math.isfinite(meta["validation_score"])


# --- the mains --------------------------------------------------------------------------------


def test_evaluate_pretrained_on_a_config(tmp_path):
    from tests.test_cli import TINY, run

    out = tmp_path / "quadratic"
    proc = run(
        "evaluate.py",
        "--pretrained=generalist",
        "--config=configs/quadratic.py:quick",
        *[a for a in TINY if a.startswith("--config.problem") or a.startswith("--config.eval")],
        "--num_tasks=4",
        "--num_steps=10",
        f"--output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["rule"] == "pretrained:generalist"
    assert {"learned", "sgd", "adam"} <= set(results["optimizers"])


@pytest.mark.slow  # about 20 s: the whole quick suite through evaluate.py (-m slow)
def test_evaluate_pretrained_on_the_suite(tmp_path):
    from tests.test_cli import run

    out = tmp_path / "suite"
    proc = run(
        "evaluate.py",
        "--pretrained=generalist",
        "--suite=configs/suite.py:quick",
        f"--output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["rule"] == "pretrained:generalist"
    rows = [line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == len(suite.QUICK_TASKS) + 1  # the header and one row per task


def test_evaluate_pretrained_bad_input(tmp_path):
    from tests.test_cli import error_line, run

    for args, message in (
        (["--pretrained=nope", "--config=configs/quadratic.py:quick"], "no shipped optimizer"),
        (["--suite=configs/suite.py:quick"], "--suite needs one of --pretrained"),
        (["--pretrained=generalist"], "--pretrained=NAME needs --config=FILE"),
    ):
        proc = run("evaluate.py", *args, f"--output_dir={tmp_path / 'x'}")
        assert proc.returncode == 2
        assert error_line(proc).startswith("error: ") and message in error_line(proc)


# --- Keras --------------------------------------------------------------------------------------


def test_keras_optimizer_runs_the_mlp_rule_exactly():
    import keras

    from l2l_tf.keras import LearnedOptimizer

    rule = MLPRule(hidden_size=6, max_direction=1.0, seed=1)
    rng = np.random.default_rng(0)
    for w in rule.weights:
        w.assign(0.3 * rng.normal(size=w.shape).astype("float32"))
    optimizer = LearnedOptimizer(rule)
    w = keras.Variable(rng.normal(size=(5, 3)).astype("float32"))
    b = keras.Variable(np.zeros(3, "float32"))
    # The rule's own step, on the variables with a members axis of 1 (meta-training's layout).
    params = [tf.constant(w.numpy())[None], tf.constant(b.numpy())[None]]
    state = rule.init(params)
    for _ in range(3):
        grads = [rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=3).astype("float32")]
        optimizer.apply_gradients(zip([tf.constant(g) for g in grads], [w, b]))
        updates, state = rule.step([tf.constant(g)[None] for g in grads], state, params)
        params = [p + u for p, u in zip(params, updates)]
    np.testing.assert_allclose(w.numpy(), params[0][0].numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b.numpy(), params[1][0].numpy(), rtol=1e-5, atol=1e-7)
    restored = LearnedOptimizer.from_config(optimizer.get_config())
    assert isinstance(restored.rule, MLPRule) and restored.rule.config() == rule.config()
    for a, c in zip(rule.weights, restored.rule.weights):
        np.testing.assert_array_equal(a.numpy(), c.numpy())


def test_keras_fit_with_the_shipped_optimizer_lowers_the_loss():
    import keras

    from l2l_tf.keras import LearnedOptimizer

    data = classification.load_classification("digits")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=LearnedOptimizer.pretrained("generalist"),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(data.x_train, data.y_train, batch_size=64, epochs=2, verbose=0)
    assert history.history["loss"][-1] < 0.5 * math.log(10)


def test_rule_without_inputs_is_the_rule_with_those_inputs_at_zero():
    rule = MLPRule(hidden_size=4, seed=2, dtype=tf.float64)
    rng = np.random.default_rng(1)
    for w in rule.weights:
        w.assign(0.5 * rng.normal(size=w.shape))
    smaller = rule.without_inputs(("grad", "factored"))
    assert smaller.inputs == ("momenta", "param", "time", "bias")
    kernel = rule.kernels[0].numpy()
    kernel[rule.input_rows("grad") + rule.input_rows("factored")] = 0.0
    rule.kernels[0].assign(kernel)
    params = [tf.constant(rng.normal(size=(1, 4, 3)))]
    grads = [tf.constant(rng.normal(size=(1, 4, 3)))]
    a, _ = rule.step(grads, rule.init(params), params)
    b, _ = smaller.step(grads, smaller.init(params), params)
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy(), rtol=1e-12)
    assert rule.input_rows("time") == [7, 8, 9, 10] and smaller.input_rows("grad") == []
