"""The training loop and evaluation in-process: files, resume, refusals, results."""

import json
import os
import signal

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from l2l_tf import evaluation, experiments
from l2l_tf.errors import UserError
from l2l_tf.experiments.l2l import evaluation as l2l_evaluation
from l2l_tf.experiments.l2l import training as l2l_training
from l2l_tf.optimizers.schedules import learning_rate_factor
from l2l_tf.run import workdir as workdir_lib


def quiet(*args, **kwargs):
    pass


def rule_values(workdir, config):
    rule = l2l_training.build_learned_rule(config)
    import tensorflow as tf

    ckpt = tf.train.Checkpoint(rule=rule)
    ckpt.restore(tf.train.latest_checkpoint(str(workdir / "ckpt"))).expect_partial()
    return [v.numpy() for v in rule.trainable_variables]


def test_train_writes_every_file(tmp_path, tiny_config):
    summary = l2l_training.train(tiny_config, tmp_path, log=quiet)
    assert summary["iterations"] == 8
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["meta"]["unroll_length"] == 2
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if "mean_loss" in r] == [4, 8]
    assert all(np.isfinite(r["mean_loss"]) for r in records if "mean_loss" in r)
    assert any("val_final_loss_mean" in r for r in records)
    info = json.loads((tmp_path / "best" / "info.json").read_text())
    assert info["iteration"] in (4, 8)
    assert (tmp_path / "ckpt" / "checkpoint").is_file()
    assert list((tmp_path / "train").iterdir())  # TensorBoard events


@pytest.mark.parametrize(
    "schedule, preprocess",
    [("constant", "none"), ("cosine", "none"), ("constant", "adam_normalized")],
)
def test_resume_continues_exactly(tmp_path, tiny_config, schedule, preprocess):
    # 3 unrolls per episode; stopping at 4 leaves an episode half done.
    tiny_config.meta.num_steps = 6
    # adam_normalized carries its moments (m, v, t) across unrolls and through the checkpoint.
    tiny_config.rule.preprocess = preprocess
    # The cosine schedule is a function of the iteration, so a resumed run continues it.
    tiny_config.meta.lr_schedule = schedule
    tiny_config.meta.final_lr_fraction = 0.1
    straight = tmp_path / "straight"
    l2l_training.train(tiny_config, straight, log=quiet)

    resumed = tmp_path / "resumed"

    def interrupt_at_4(line):  # the loop's SIGINT handler checkpoints after iteration 4
        if line.startswith("iter 4/"):
            os.kill(os.getpid(), signal.SIGINT)

    assert l2l_training.train(tiny_config, resumed, log=interrupt_at_4)["iterations"] == 4
    lines = []
    l2l_training.train(tiny_config, resumed, log=lines.append)
    assert any("resuming" in line and "meta-iteration 4" in line for line in lines)
    for a, b in zip(rule_values(straight, tiny_config), rule_values(resumed, tiny_config)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # The last meta-update ran at the schedule's last learning rate.
    reader = tf.train.load_checkpoint(str(straight / "ckpt"))
    (key,) = [
        k for k in reader.get_variable_to_shape_map() if "meta_optimizer/rule/learning_rate" in k
    ]
    final = tiny_config.meta.learning_rate * (0.1 if schedule == "cosine" else 1.0)
    np.testing.assert_allclose(reader.get_tensor(key), final, rtol=1e-12)


def test_validation_score_averages_the_last_steps():
    losses = np.array([[3.0, 5.0], [2.0, 4.0], [1.0, 0.5]])  # [steps + 1, tasks]
    assert evaluation.tuning_score(losses) == 0.75
    assert evaluation.tuning_score(losses, last_steps=2) == np.mean([2.0, 4.0, 1.0, 0.5])
    assert evaluation.tuning_score(np.array([[1.0], [np.nan]]), last_steps=1) == np.inf


def test_learning_rate_factor_follows_half_a_cosine():

    total, f = 11, 0.2
    factors = [learning_rate_factor("cosine", i, total, f) for i in range(total)]
    np.testing.assert_allclose(factors[0], 1.0)
    np.testing.assert_allclose(factors[5], (1 + f) / 2)
    np.testing.assert_allclose(factors[-1], f)
    np.testing.assert_allclose(
        factors, f + (1 - f) * 0.5 * (1 + np.cos(np.pi * np.arange(11) / 10))
    )
    assert learning_rate_factor("constant", 7, total, f) == 1.0


def test_changed_config_is_refused_unless_overwrite(tmp_path, tiny_config):
    l2l_training.train(tiny_config, tmp_path, log=quiet)
    changed = tiny_config.copy_and_resolve_references()
    changed.rule.hidden_size = 5
    with pytest.raises(UserError, match="rule.hidden_size.*--overwrite"):
        l2l_training.train(changed, tmp_path, log=quiet)
    summary = l2l_training.train(changed, tmp_path, overwrite=True, log=quiet)
    assert summary["iterations"] == 8
    assert json.loads((tmp_path / "config.json").read_text())["rule"]["hidden_size"] == 5


def test_config_saved_before_a_field_was_added_reads_as_its_old_value():
    """A work directory written before rule.normalize existed resumes under normalize=none
    (the same computation) but not under tensor_rms."""
    from l2l_tf import config as config_lib

    old = {"rule": {"name": "lstm", "hidden_size": 20}, "seed": 0}
    new = {"rule": {"name": "lstm", "hidden_size": 20, "normalize": "none"}, "seed": 0}
    assert config_lib.changed_fields(old, new) == []
    new["rule"]["normalize"] = "tensor_rms"
    assert config_lib.changed_fields(old, new) == ["rule.normalize"]
    assert config_lib.changed_fields({"seed": 0}, {"seed": 0}) == []
    # The gradient-scaled head and input: absent reads as off (the paper's rule).
    head = {"rule": {**old["rule"], "rms_output_scale": 0.0, "rms_input": False}, "seed": 0}
    assert config_lib.changed_fields(old, head) == []
    head["rule"].update(rms_output_scale=1.0, rms_input=True)
    assert config_lib.changed_fields(old, head) == ["rule.rms_input", "rule.rms_output_scale"]
    mgrl_old = {"meta": {"learner": "mgrl"}}
    mgrl_new = {"meta": {"learner": "mgrl", "condition_on": "reference", "beta1": 0.9}}
    assert config_lib.changed_fields(mgrl_old, mgrl_new) == []
    assert config_lib.added_field(ml_collections.ConfigDict(mgrl_old), "meta.beta2") == 0.999


def test_busy_workdir_is_refused(tmp_path, tiny_config):
    with workdir_lib.WorkdirLock(tmp_path):
        with pytest.raises(UserError, match="in use"):
            l2l_training.train(tiny_config, tmp_path, log=quiet)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("meta.unroll_length", 4, "must divide meta.num_steps"),
        ("meta.num_steps", 0, "meta.num_steps must be a positive integer"),
        ("train.num_meta_iterations", -3, "train.num_meta_iterations"),
        ("meta.learning_rate", 0.0, "meta.learning_rate"),
        ("meta.lr_schedule", "step", "meta.lr_schedule"),
        ("meta.final_lr_fraction", 0.0, "meta.final_lr_fraction"),
        ("meta.final_lr_fraction", 1.5, "meta.final_lr_fraction"),
        ("meta.loss_transform", "sqrt", "meta.loss_transform"),
        ("train.val_last_steps", 0, "train.val_last_steps"),
        ("train.val_last_steps", 8, "train.val_last_steps"),
        ("eval.lr_grid", (), "eval.lr_grid"),
        ("eval.baselines", ("adam", "adagrad"), "adagrad"),
        ("meta.optimizer", "lstm", "meta.optimizer"),
        ("rule.hidden_size", 0, "rule.hidden_size"),
        ("rule.preprocess", "log", "rule.preprocess"),
        ("problem.dims", -2, "problem.dims"),
    ],
)
def test_bad_config_fields_are_named(tmp_path, tiny_config, field, value, message):
    section, name = field.split(".")
    with tiny_config.unlocked():
        tiny_config[section][name] = value
    with pytest.raises(UserError, match=message):
        l2l_training.train(tiny_config, tmp_path, log=quiet)


def test_evaluate_writes_results_with_the_promised_shape(tmp_path, tiny_config):
    l2l_training.train(tiny_config, tmp_path, log=quiet)
    results = l2l_evaluation.evaluate(tiny_config, workdir=tmp_path, log=quiet)
    on_disk = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert on_disk["problem"] == "quadratic"
    assert on_disk["num_tasks"] == 10 and on_disk["num_steps"] == 6
    assert set(on_disk["optimizers"]) == {"learned", "sgd", "momentum", "nag", "rmsprop", "adam"}
    for name, r in on_disk["optimizers"].items():
        assert len(r["curve_mean"]) == 7
        assert np.isfinite(r["final_loss_mean"]) and r["final_loss_sem"] >= 0
        assert (r["learning_rate"] is None) == (name == "learned")
        if name != "learned":
            assert r["learning_rate"] in (0.01, 0.1)
    assert (
        results["optimizers"]["adam"]["final_loss_mean"]
        == on_disk["optimizers"]["adam"]["final_loss_mean"]
    )
    csv_lines = (tmp_path / "eval" / "curves.csv").read_text().splitlines()
    assert csv_lines[0].startswith("step,learned,sgd") and len(csv_lines) == 8
    assert (tmp_path / "eval" / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_baselines_are_tuned_on_validation_not_test_tasks(tiny_config):
    """The chosen rate is the argmin of the validation score, and the grid is reported."""
    from l2l_tf.problems import make_task_family

    family = make_task_family(tiny_config.problem)
    results = evaluation.evaluate_rules(
        family, tiny_config, num_tasks=10, num_steps=6, seed=0, log=quiet
    )
    for name in tiny_config.eval.baselines:
        r = results["optimizers"][name]
        scores = {float(k): v for k, v in r["lr_search"].items()}
        assert r["learning_rate"] == min(scores, key=scores.get)


def test_summary_counts_diverged_tasks_instead_of_averaging_them():
    losses = np.array([[1.0, 1.0, 1.0], [0.5, np.inf, 0.25]])
    s = evaluation.summarize(losses)
    assert s["diverged"] == 1
    assert s["final_loss_mean"] == pytest.approx(0.375)


def test_evaluate_without_checkpoint_or_with_mismatch(tmp_path, tiny_config):
    with pytest.raises(UserError, match="no trained optimizer"):
        l2l_evaluation.evaluate(tiny_config, workdir=tmp_path, log=quiet)
    l2l_training.train(tiny_config, tmp_path, log=quiet)
    other = tiny_config.copy_and_resolve_references()
    other.rule.hidden_size = 7
    with pytest.raises(UserError, match="does not match"):
        l2l_evaluation.evaluate(other, workdir=tmp_path, log=quiet)
    other = tiny_config.copy_and_resolve_references()
    other.rule.num_layers = 1
    with pytest.raises(UserError, match="does not match"):
        l2l_evaluation.evaluate(other, workdir=tmp_path, log=quiet)


def test_unknown_meta_learner_lists_the_valid_ones(tmp_path, tiny_config):
    with tiny_config.unlocked():
        tiny_config.meta.learner = "mamal"
    with pytest.raises(UserError, match="unknown meta.learner 'mamal'; valid names: .*l2l"):

        experiments.validate(tiny_config)


def test_summary_of_held_out_metrics_leaves_out_diverged_tasks():
    losses = np.array([[1.0, 1.0, 1.0], [0.5, np.nan, 0.25]])
    metrics = {"test_loss": np.array([0.6, 9.0, 0.2]), "test_accuracy": np.array([0.8, 0.1, 0.9])}
    s = evaluation.summarize(losses, metrics)
    assert s["test_loss_mean"] == pytest.approx(0.4)
    assert s["test_loss_sem"] == pytest.approx(np.std([0.6, 0.2], ddof=1) / np.sqrt(2))
    assert s["test_accuracy_mean"] == pytest.approx(0.85)
    assert "test_loss_mean" not in evaluation.summarize(losses)
