"""Meta-training and evaluation of the initialization learners: tracing, resume, results files."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf import experiments
from l2l_tf.errors import UserError
from l2l_tf.experiments.init import evaluation as init_evaluation
from l2l_tf.experiments.init import training as init_training
from l2l_tf.meta import MetaOptimizer
from l2l_tf.optimizers import make_rule
from tests.conftest import ROOT

LEARNERS = ("maml", "fomaml", "metasgd", "reptile", "imaml")


def tiny_config(learner="maml"):
    import importlib

    c = importlib.import_module(f"configs.{learner}_sinusoid").get_config("quick")
    c.problem.num_shots = 3
    c.problem.hidden_sizes = (4,)
    c.meta.meta_batch_size = 3
    c.meta.iterations_per_call = 2
    if learner in ("reptile", "imaml"):
        c.meta.num_inner_steps = 2
        c.meta.cg_steps = 2
    c.train.num_meta_iterations = 6
    c.train.log_every = 3
    c.train.eval_every = 6
    c.train.checkpoint_every = 3
    c.train.num_val_tasks = 4
    c.eval.num_tasks = 5
    c.eval.num_steps = 2
    c.eval.num_tuning_tasks = 4
    c.eval.lr_grid = (0.01, 0.1)
    c.eval.pretrain_iterations = 4
    return c


def make_step(config):
    family = init_training.build_family(config, config.meta.meta_batch_size)
    learner = init_training.build_learner(config, family)
    rule = make_rule({"name": config.meta.optimizer, "learning_rate": config.meta.learning_rate})
    optimizer = MetaOptimizer(rule, learner.meta_params)
    return learner, init_training.MetaTrainStep(
        learner, optimizer, config.seed, lr_schedule=config.meta.lr_schedule
    )


@pytest.mark.parametrize("learner", LEARNERS)
def test_quick_configs_validate(learner):
    import importlib

    module = importlib.import_module(f"configs.{learner}_sinusoid")
    for variant in ("", "quick"):
        config = module.get_config(variant)
        experiments.validate(config)  # dispatches on meta.learner
        assert config.meta.learner == learner


def test_one_trace_for_all_blocks_and_blocks_compose():
    config = tiny_config("reptile")  # the linear schedule makes the blocks' positions matter
    learner_a, step_a = make_step(config)
    before = [v.numpy().copy() for v in learner_a.meta_params]
    for start, count in ((0, 2), (2, 1), (3, 1)):
        step_a(start, count, 4)
    learner_b, step_b = make_step(config)
    step_b(0, 4, 4)
    assert step_a.trace_count == 1 and step_b.trace_count == 1
    for a, b, v0 in zip(learner_a.meta_params, learner_b.meta_params, before):
        assert not np.allclose(a.numpy(), v0)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_clipped_reptile_step_is_bounded_and_points_along_the_outer_gradient():
    # Reptile's outer "gradient" is theta - mean(phi): one meta-batch whose inner loop blows up
    # gives a huge one, and an unclipped outer step then wrecks theta (the 68k divergence).
    from l2l_tf import seeding
    from l2l_tf.meta.base import sample_episode

    config = tiny_config("reptile")
    config.meta.inner_learning_rate = 2.0  # unstable inner loop: a huge but finite step
    config.meta.lr_schedule = "constant"
    family = init_training.build_family(config, config.meta.meta_batch_size)
    learner = init_training.build_learner(config, family)
    episode = sample_episode(family, seeding.task_seed(config.seed, seeding.TRAIN, 0))
    _, grads = learner.outer_grad(*episode[:3])
    norm = float(tf.linalg.global_norm(grads))
    clip = 0.05
    assert np.isfinite(norm) and norm > 100 * clip
    before = [v.numpy().copy() for v in learner.meta_params]
    optimizer = MetaOptimizer(make_rule({"name": "sgd", "learning_rate": 1.0}), learner.meta_params)
    step = init_training.MetaTrainStep(learner, optimizer, config.seed, clip_grad_norm=clip)
    assert step(0, 1, 1)["skipped"] == 0
    moved = [v.numpy() - b for v, b in zip(learner.meta_params, before)]
    np.testing.assert_allclose(np.sqrt(sum(np.sum(m**2) for m in moved)), clip, rtol=1e-4)
    for m, g in zip(moved, grads):
        np.testing.assert_allclose(m, -clip / norm * g.numpy(), rtol=1e-3, atol=1e-7)


def test_curve_function_traces_once_across_tasks():
    config = tiny_config()
    learner, _ = make_step(config)
    fn = init_training.make_curve_fn(learner, 2)
    for i in range(3):
        curve = fn(tf.constant([0, i]))
        assert curve.shape == (3, config.meta.meta_batch_size)
    assert fn.experimental_get_tracing_count() == 1


def test_summaries_count_diverged_tasks_and_leave_them_out():
    losses = np.array([[1.0, 2.0, 3.0], [0.5, np.nan, 1.5], [0.25, np.inf, 0.75]])
    s = init_evaluation.summarize_curves(losses)
    assert s["diverged"] == 1
    np.testing.assert_allclose(s["per_step_mean"], [2.0, 1.0, 0.5])
    half_width = 1.96 * np.std([0.5, 1.5], ddof=1) / np.sqrt(2)
    np.testing.assert_allclose(s["per_step_ci95"][1], half_width)
    assert init_evaluation.diverged_per_step(losses) == [0, 1, 1]


def test_a_finite_but_blown_up_loss_counts_as_diverged():
    # Task 1 ends 1e23 times above its start (finite, but diverged); task 0 ends 1e3 times
    # *below*; task 2 rises, but only 10x. An accuracy (higher is better) never blows up.
    losses = np.array([[2.0, 1.0, 0.5], [1.0, 3.0, 5.0], [2e-3, 1e23, 0.7]])
    s = init_evaluation.summarize_curves(losses)
    assert s["diverged"] == 1
    np.testing.assert_allclose(s["per_step_mean"][2], np.mean([2e-3, 0.7]))
    assert init_evaluation.diverged_per_step(losses) == [0, 0, 1]
    assert init_evaluation.tuning_score(losses) == np.inf
    assert init_evaluation.summarize_curves(losses, higher_is_better=True)["diverged"] == 0


def test_train_resume_and_evaluate_writes_the_results_schema(tmp_path):
    config = tiny_config()
    workdir = tmp_path / "run"
    config.train.num_meta_iterations = 3
    summary = init_training.train(config, workdir, log=lambda s: None)
    assert summary["iterations"] == 3
    config.train.num_meta_iterations = 6  # safe to change: the run resumes
    lines = []
    summary = init_training.train(config, workdir, log=lines.append)
    assert summary["iterations"] == 6 and "resuming" in lines[0]
    assert (workdir / "best" / "info.json").is_file()
    records = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if "meta_loss" in r] == [3, 6]

    results = init_evaluation.evaluate(config, workdir=workdir, log=lambda s: None)
    saved = json.loads((workdir / "eval" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert set(saved) == {"problem", "metric", "num_tasks", "methods"}
    assert saved["problem"] == "sinusoid" and saved["metric"] == "mse"
    assert saved["num_tasks"] == 5
    assert list(saved["methods"]) == ["maml", "pretrained", "scratch"]
    for r in saved["methods"].values():
        assert set(r) == {"per_step_mean", "per_step_ci95", "diverged"}
        assert len(r["per_step_mean"]) == len(r["per_step_ci95"]) == 3
        assert r["diverged"] == 0 and all(np.isfinite(r["per_step_mean"]))
    details = json.loads((workdir / "eval" / "details.json").read_text())
    assert details["methods"]["scratch"]["learning_rate"] in (0.01, 0.1)
    assert (workdir / "eval" / "adaptation_curves.png").stat().st_size > 0
    assert "| maml |" in (workdir / "eval" / "summary.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("learner", LEARNERS[1:])
def test_every_learner_trains_and_evaluates(tmp_path, learner):
    config = tiny_config(learner)
    config.eval.baselines = ()
    init_training.train(config, tmp_path, log=lambda s: None)
    results = init_evaluation.evaluate(config, workdir=tmp_path, log=lambda s: None)
    assert list(results["methods"]) == [learner]
    assert all(np.isfinite(results["methods"][learner]["per_step_mean"]))


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("meta.learner", "mamll", "meta.learner"),
        ("meta.lr_schedule", "cosine", "meta.lr_schedule"),
        ("meta.inner_learning_rate", -0.1, "meta.inner_learning_rate"),
        ("meta.inner_optimizer", "lstm", "meta.inner_optimizer"),
        ("eval.baselines", ("pretrained", "oracle"), "eval.baselines"),
    ],
)
def test_bad_fields_raise_user_errors(field, value, match):
    config = tiny_config()
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(UserError, match=match):
        experiments.validate(config)


def test_imaml_needs_its_fields():
    config = tiny_config("imaml")
    config.meta.lam = 0.0
    with pytest.raises(UserError, match="meta.lam"):
        experiments.validate(config)


def test_imaml_inner_rate_times_lambda_must_keep_proximal_sgd_stable():
    config = tiny_config("imaml")
    config.meta.lam, config.meta.inner_learning_rate = 1000.0, 0.01  # the old setting: 10
    with pytest.raises(UserError, match="meta.lam"):
        experiments.validate(config)


def test_the_imaml_configs_inner_loop_stays_finite_for_the_evaluated_steps():
    # With lambda = 1000 and rate 0.01, iMAML's proximal SGD grew |phi - theta| 9-fold per step
    # and every task was inf by step 6; the config must give a stable 10-step curve.
    import importlib

    config = importlib.import_module("configs.imaml_sinusoid").get_config()
    family = init_training.build_family(config, 25)
    learner = init_training.build_learner(config, family)
    curve = init_training.make_curve_fn(learner, config.eval.num_steps)(tf.constant([0, 3]))
    curve = curve.numpy()
    assert np.isfinite(curve).all()
    assert (curve[-1] < 2 * curve[1]).all()  # no task blows up between step 1 and step 10


def test_cli_bad_field_is_one_error_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train_optimizer.py"),
            "--config=configs/maml_sinusoid.py:quick",
            "--config.meta.lr_schedule=cosine",
            f"--workdir={tmp_path}",
        ],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: meta.lr_schedule")
