"""The learned synaptic rule (optimizers/synaptic.py), its local signals and the boolean family."""

import json

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.experiments import validate
from l2l_tf.meta import MetaOptimizer, TruncatedBPTT
from l2l_tf.optimizers import make_rule
from l2l_tf.optimizers.synaptic import TERMS, Hebbian, SynapticRule, polynomial_update
from l2l_tf.problems import make_task_family
from l2l_tf.problems.boolean import Boolean
from l2l_tf.problems.signals import Signals, losses_grads_signals
from l2l_tf.unroll import make_trajectory_fn, optimizee_step


def np_monomial(term, pre, post, mod, w):
    """One monomial at one synapse (scalars)."""
    return {
        "1": 1.0,
        "pre": pre,
        "post": post,
        "mod": mod,
        "pre_post": pre * post,
        "pre_mod": pre * mod,
        "post_mod": post * mod,
        "pre_post_mod": pre * post * mod,
        "w": w,
        "w_post2": w * post**2,
    }[term]


def np_rule(theta, terms, pre, post, mod, w):
    """dw_ji = mean_b sum_k theta_k monomial_k, synapse by synapse (w [members, n_in, n_out])."""
    members, batch, n_in = pre.shape
    n_out = post.shape[-1]
    out = np.zeros_like(w)
    for m in range(members):
        for j in range(n_in):
            for i in range(n_out):
                total = 0.0
                for b in range(batch):
                    args = pre[m, b, j], post[m, b, i], mod[m, b, i], w[m, j, i]
                    total += sum(t * np_monomial(k, *args) for t, k in zip(theta, terms))
                out[m, j, i] = total / batch
    return out


def random_signals(rng, members=2, batch=3, n_in=4, n_out=2):
    pre, post, mod = (rng.normal(size=(members, batch, n)) for n in (n_in, n_out, n_out))
    return pre, post, mod, rng.normal(size=(members, n_in, n_out))


def test_polynomial_update_matches_numpy_for_every_term():
    rng = np.random.default_rng(0)
    pre, post, mod, w = random_signals(rng)
    theta = rng.normal(size=len(TERMS))
    coefficients = {k: tf.constant(t) for k, t in zip(TERMS, theta)}
    got = polynomial_update(
        coefficients, tf.constant(w), Signals(*map(tf.constant, (pre, post, mod)))
    )
    np.testing.assert_allclose(got.numpy(), np_rule(theta, TERMS, pre, post, mod, w), rtol=1e-12)
    # A bias [members, n_out] is a synapse from a unit of activity 1.
    ones = np.ones(pre.shape[:2] + (1,))
    b = w[:, 0, :]
    got = polynomial_update(
        coefficients, tf.constant(b), Signals(*map(tf.constant, (ones, post, mod)))
    )
    expected = np_rule(theta, TERMS, ones, post, mod, b[:, None, :])[:, 0, :]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_rule_uses_one_theta_set_per_layer():
    rng = np.random.default_rng(1)
    terms = ("pre_mod", "w", "post")
    rule = SynapticRule(terms=terms, num_layers=2, init="zero", dtype=tf.float64)
    theta = rng.normal(size=(2, 3))
    rule.theta.assign(theta)
    params, signals, expected = [], [], []
    for layer in range(2):
        pre, post, mod, w = random_signals(rng)
        ones = np.ones(pre.shape[:2] + (1,))
        params += [tf.constant(w), tf.constant(w[:, 0, :])]
        signals += [Signals(*map(tf.constant, (p, post, mod))) for p in (pre, ones)]
        expected += [
            np_rule(theta[layer], terms, pre, post, mod, w),
            np_rule(theta[layer], terms, ones, post, mod, w[:, :1, :])[:, 0, :],
        ]
    updates, _ = rule.step(None, rule.init(params), params, signals=signals)
    for u, e in zip(updates, expected):
        np.testing.assert_allclose(u.numpy(), e, rtol=1e-12)
    with pytest.raises(UserError, match="num_layers is 2 but the network has 1 layers"):
        rule.step(None, (), params[:2], signals=signals[:2])


def test_hebbian_is_oja():
    rng = np.random.default_rng(2)
    pre, post, mod, w = random_signals(rng)
    rule = Hebbian(learning_rate=0.3)
    (u,), _ = rule.step(
        None, (), [tf.constant(w)], signals=[Signals(*map(tf.constant, (pre, post, mod)))]
    )
    expected = 0.3 * np_rule([1.0, -1.0], ("pre_post", "w_post2"), pre, post, mod, w)
    np.testing.assert_allclose(u.numpy(), expected, rtol=1e-12)


def tiny_boolean(**overrides):
    fields = dict(num_inputs=3, hidden_sizes=(3,), num_members=2, dtype=tf.float64)
    return Boolean(**{**fields, **overrides})


def episode(family, index=0):
    task_seed, init_seed, batch_seed = seeding.episode_seeds(seeding.task_seed(0, 0, index))
    task = family.sample(task_seed)
    return task, family.init_params(task, init_seed), batch_seed


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("batch_size", [0, 5])
def test_signals_match_a_numpy_forward_and_backward(batch_size):
    family = tiny_boolean(batch_size=batch_size)
    task, params, batch_seed = episode(family)
    batch = family.batch(task, batch_seed)
    losses, grads, signals = losses_grads_signals(family, params, task, batch)
    x, t = (v.numpy() for v in batch)
    w1, b1, w2, b2 = (p.numpy() for p in params)
    a1 = np.einsum("mbi,mio->mbo", x, w1) + b1[:, None]
    h = np_sigmoid(a1)
    a2 = np.einsum("mbi,mio->mbo", h, w2) + b2[:, None]
    y = np_sigmoid(a2)[..., 0]
    np.testing.assert_allclose(
        losses.numpy(), np.mean(-t * np.log(y) - (1 - t) * np.log(1 - y), axis=1), rtol=1e-10
    )
    e2 = (t - y)[..., None]  # the output unit's error: target - output
    e1 = np.einsum("mbo,mio->mbi", e2, w2) * h * (1 - h)  # backpropagated
    ones = np.ones(x.shape[:2] + (1,))
    expected = [(x, h, e1), (ones, h, e1), (h, y[..., None], e2), (ones, y[..., None], e2)]
    for s, e in zip(signals, expected):
        for got, want in zip(s, e):
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    # The batch mean of pre * mod is minus the gradient.
    for s, g in zip(signals, grads):
        minus_grad = np.einsum("mbj,mbi->mji", s.pre.numpy(), s.mod.numpy()) / x.shape[1]
        np.testing.assert_allclose(minus_grad.reshape(g.shape), -g.numpy(), rtol=1e-10)


def test_delta_rule_alone_is_sgd():
    family = tiny_boolean(batch_size=4)
    rule = SynapticRule(terms=("pre_mod",), init="sgd", init_rate=0.7, dtype=tf.float64)
    sgd = make_rule({"name": "sgd", "learning_rate": 0.7})
    seed = seeding.task_seed(0, seeding.VALIDATION, 0)
    synaptic_losses, synaptic_acc = make_trajectory_fn(family, rule, 6)(seed)
    sgd_losses, sgd_acc = make_trajectory_fn(family, sgd, 6)(seed)
    np.testing.assert_allclose(synaptic_losses.numpy(), sgd_losses.numpy(), rtol=1e-12)
    np.testing.assert_allclose(synaptic_acc["accuracy"].numpy(), sgd_acc["accuracy"].numpy())
    # One step's updates, directly.
    task, params, batch_seed = episode(family)
    batch = family.batch(task, batch_seed)
    _, synaptic_params, _ = optimizee_step(family, rule, params, (), task, batch)
    _, sgd_params, _ = optimizee_step(family, sgd, params, (), task, batch)
    for p, a, b in zip(params, synaptic_params, sgd_params):
        assert not np.allclose(a.numpy(), p.numpy())
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)


def test_meta_gradient_matches_central_finite_differences():
    """d(meta-loss)/d theta of a 3-step unroll, exact (second_derivatives=True: the signals'
    dependence on theta through the parameters is kept), against central differences."""
    family = tiny_boolean(batch_size=4)
    terms = ("pre_mod", "pre_post", "post_mod", "pre_post_mod", "mod", "w", "w_post2")
    rule = SynapticRule(terms=terms, num_layers=2, init_rate=0.5, init_noise=0.1, dtype=tf.float64)
    learner = TruncatedBPTT(
        family,
        rule,
        MetaOptimizer(make_rule({"name": "sgd"}), rule.trainable_variables),
        unroll_length=3,
        second_derivatives=True,
    )
    task, params, batch_seed = episode(family)
    step0 = tf.constant(0)
    _, (grad,), _, _ = tf.function(learner.meta_gradient)(params, (), task, batch_seed, step0)
    unroll = tf.function(learner.unroll)  # theta is a variable: one trace serves every probe
    theta0 = rule.theta.numpy()
    eps = 1e-6
    fd = np.zeros_like(theta0)
    for index in np.ndindex(theta0.shape):
        values = []
        for sign in (1, -1):
            theta = theta0.copy()
            theta[index] += sign * eps
            rule.theta.assign(theta)
            values.append(float(unroll(params, (), task, batch_seed, step0)[0]))
        fd[index] = (values[0] - values[1]) / (2 * eps)
    rule.theta.assign(theta0)
    np.testing.assert_allclose(grad.numpy(), fd, rtol=1e-6, atol=1e-9)
    assert np.abs(fd).max() > 1e-3  # every layer's theta reaches the meta-loss


def test_boolean_family_tables_batches_and_accuracy():
    family = tiny_boolean(batch_size=6)
    task, params, batch_seed = episode(family)
    again, _, _ = episode(family)
    np.testing.assert_array_equal(task.labels.numpy(), again.labels.numpy())
    assert set(np.unique(task.labels.numpy())) <= {0.0, 1.0}
    x, labels = family.batch(task, batch_seed)
    assert x.shape == (2, 6, 3) and labels.shape == (2, 6)
    patterns = family.patterns.numpy()
    for m in range(2):
        for b in range(6):
            (row,) = np.flatnonzero((patterns == x.numpy()[m, b]).all(axis=1))
            assert labels.numpy()[m, b] == task.labels.numpy()[m, row]
    accuracy = family.held_out_metrics(params, task)["accuracy"].numpy()
    w1, b1, w2, b2 = (p.numpy() for p in params)
    h = np_sigmoid(np.einsum("pi,mio->mpo", patterns, w1) + b1[:, None])
    predicted = (np.einsum("mpi,mio->mpo", h, w2) + b2[:, None])[..., 0] > 0
    np.testing.assert_allclose(accuracy, np.mean(predicted == task.labels.numpy(), axis=1))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"terms": ("pre_mod", "bogus")}, "rule.terms: unknown ['bogus']"),
        ({"terms": "pre_mod"}, "rule.terms must be a non-empty tuple"),
        ({"terms": ("pre_mod", "pre_mod")}, "must not repeat"),
        ({"terms": ("pre_post",)}, "init='sgd' needs the term 'pre_mod'"),
        ({"init": "hebb"}, "rule.init must be one of"),
        ({"num_layers": -1}, "rule.num_layers must be an integer >= 0"),
        ({"init_rate": -1.0}, "rule.init_rate must be a number >= 0"),
    ],
)
def test_bad_rule_fields_are_one_line_errors(fields, message):
    with pytest.raises(UserError) as e:
        make_rule({"name": "synaptic", **fields})
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"num_inputs": 0}, "problem.num_inputs must be an integer >= 1"),
        ({"batch_size": -1}, "problem.batch_size must be an integer >= 0"),
        ({"activation": "step"}, "problem.activation must be one of"),
        ({"hidden_sizes": (0,)}, "problem.hidden_sizes must be a tuple of positive integers"),
    ],
)
def test_bad_boolean_fields_are_one_line_errors(fields, message):
    with pytest.raises(UserError) as e:
        make_task_family({"name": "boolean", **fields})
    assert message in str(e.value) and "\n" not in str(e.value)


def test_config_validation_of_signal_rules():
    from configs import synaptic_boolean

    config = synaptic_boolean.get_config("quick")
    validate(config)
    config.eval.baselines = ("sgd", "hebbian", "adam")
    validate(config)
    config.eval.baselines = ("sgd", "oja")
    with pytest.raises(UserError, match=r"eval.baselines: unknown \['oja'\]"):
        validate(config)
    config = synaptic_boolean.get_config("quick")
    config.problem = {"name": "quadratic", "dims": 3}
    with pytest.raises(UserError, match="rule: 'synaptic' needs local signals"):
        validate(config)


@pytest.mark.slow
def test_quick_config_trains_and_evaluates(tmp_path):
    """configs/synaptic_boolean.py:quick through the mains (about a minute)."""
    from tests.test_cli import run

    workdir = tmp_path / "run"
    proc = run(
        "train_optimizer.py", "--config=configs/synaptic_boolean.py:quick", f"--workdir={workdir}"
    )
    assert proc.returncode == 0, proc.stderr
    proc = run("evaluate.py", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((workdir / "eval" / "results.json").read_text())
    assert set(results["optimizers"]) == {"learned", "sgd", "hebbian"}
    assert 0 <= results["optimizers"]["learned"]["accuracy_mean"] <= 1
    assert (workdir / "eval" / "loss_curves.png").stat().st_size > 0
