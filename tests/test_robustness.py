"""Runs survive kills, signals, corrupt checkpoints, divergence and bad config values."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from l2l_tf import experiments
from l2l_tf.errors import UserError
from l2l_tf.experiments.l2l import training as l2l_training
from l2l_tf.run import workdir as workdir_lib
from tests.conftest import ROOT, tiny_quadratic_config


def quiet(*args, **kwargs):
    pass


def final_rule_values(workdir, config):
    rule = l2l_training.build_learned_rule(config)
    ckpt = tf.train.Checkpoint(rule=rule)
    ckpt.restore(workdir_lib.checkpoint_paths(workdir / "ckpt")[0]).expect_partial()
    return [v.numpy() for v in rule.trainable_variables]


def assert_same_rule(a, b):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


# A run slow enough (tens of ms per meta-step) to be killed at chosen points.
KILLABLE = [
    "--config=configs/quadratic.py:quick",
    "--config.problem.batch_size=64",
    "--config.meta.num_steps=20",
    "--config.meta.unroll_length=10",
    "--config.train.num_meta_iterations=120",
    "--config.train.log_every=2",
    "--config.train.checkpoint_every=7",
    "--config.train.eval_every=40",
    "--config.train.num_val_tasks=16",
]


def start_training(workdir):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train_optimizer.py"), *KILLABLE, f"--workdir={workdir}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def logged_iteration(workdir):
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return 0
    its = [
        json.loads(line).get("iteration", 0)
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    return max(its, default=0)


def wait_for_iteration(proc, workdir, target, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if logged_iteration(workdir) >= target:
            return True
        time.sleep(0.01)
    return False


def killable_config():
    from configs import quadratic

    c = quadratic.get_config("quick")
    c.problem.batch_size = 64
    return c


# The reliability suite (tests/test_reliability.py) kills many more moments of three families.
@pytest.mark.reliability
def test_sigkill_at_several_points_then_resume_matches_uninterrupted(tmp_path):
    straight = tmp_path / "straight"
    proc = start_training(straight)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    killed = tmp_path / "killed"
    kills = 0
    for target in (9, 35, 36, 80):  # 35 and 36 straddle the checkpoint write at 35
        proc = start_training(killed)
        if wait_for_iteration(proc, killed, target) and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 3
    proc = start_training(killed)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resuming" in out
    assert_same_rule(
        final_rule_values(straight, killable_config()), final_rule_values(killed, killable_config())
    )
    its = [
        json.loads(line)["iteration"]
        for line in (killed / "metrics.jsonl").read_text().splitlines()
        if "mean_loss" in line
    ]
    assert its == sorted(set(its)), "replayed steps must not be logged twice"


def test_sigterm_checkpoints_and_says_how_to_resume(tmp_path):
    proc = start_training(tmp_path)
    assert wait_for_iteration(proc, tmp_path, 10)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "stopped by SIGTERM" in out and "Run the same command again to resume" in out
    stopped_at = int(out.split("stopped by SIGTERM at meta-iteration ")[1].split(";")[0])
    assert workdir_lib.checkpoint_paths(tmp_path / "ckpt")[0].endswith(f"ckpt-{stopped_at}")


def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path, tiny_config):
    straight = tmp_path / "straight"
    longer = tiny_config.copy_and_resolve_references()
    longer.train.num_meta_iterations = 12
    l2l_training.train(longer, straight, log=quiet)

    run = tmp_path / "run"
    l2l_training.train(tiny_config, run, log=quiet)  # checkpoints at 4 and 8
    newest = workdir_lib.checkpoint_paths(run / "ckpt")[0]
    assert newest.endswith("ckpt-8")
    data = next((run / "ckpt").glob("ckpt-8.data-*"))
    data.write_bytes(data.read_bytes()[:10])  # cut short, as by a kill mid-write
    lines = []
    l2l_training.train(longer, run, log=lines.append)
    assert any("ckpt-8 is unreadable" in line for line in lines)
    assert any("resuming from" in line and "ckpt-4" in line for line in lines)
    assert_same_rule(final_rule_values(straight, longer), final_rule_values(run, longer))


def test_unreadable_checkpoint_state_file_is_rebuilt(tmp_path, tiny_config):
    l2l_training.train(tiny_config, tmp_path, log=quiet)
    (tmp_path / "ckpt" / "checkpoint").write_text("garbage {{{")
    longer = tiny_config.copy_and_resolve_references()
    longer.train.num_meta_iterations = 10
    lines = []
    summary = l2l_training.train(longer, tmp_path, log=lines.append)
    assert summary["iterations"] == 10
    assert any("resuming" in line and "meta-iteration 8" in line for line in lines)


def test_no_readable_checkpoint_is_a_clear_error(tmp_path, tiny_config):
    l2l_training.train(tiny_config, tmp_path, log=quiet)
    for data in (tmp_path / "ckpt").glob("ckpt-*.data-*"):
        data.write_bytes(b"")
    with pytest.raises(UserError, match="no readable checkpoint.*--overwrite"):
        l2l_training.train(tiny_config, tmp_path, log=quiet)


def test_divergence_skips_updates_and_stops_naming_the_range(tmp_path, tiny_config):
    tiny_config.problem.init_scale = 1e30  # every loss overflows to inf
    tiny_config.train.max_consecutive_skips = 3
    rule = l2l_training.build_learned_rule(tiny_config)
    initial = [v.numpy() for v in rule.trainable_variables]
    with pytest.raises(
        UserError,
        match=r"3 consecutive non-finite meta-updates.*"
        r"meta-iterations 1-3",
    ):
        l2l_training.train(tiny_config, tmp_path, log=quiet)
    # Nothing non-finite reached the meta-parameters: no checkpoint moved them either.
    assert not workdir_lib.checkpoint_paths(tmp_path / "ckpt")
    assert all(np.all(np.isfinite(v)) for v in initial)


INT_FIELDS = [
    "meta.num_steps",
    "meta.unroll_length",
    "train.num_meta_iterations",
    "train.log_every",
    "train.checkpoint_every",
    "train.eval_every",
    "train.num_val_tasks",
    "train.keep_checkpoints",
    "train.max_consecutive_skips",
    "eval.num_tasks",
    "eval.num_steps",
    "eval.num_tuning_tasks",
]
FLOAT_FIELDS = ["meta.learning_rate", "meta.clip_grad_norm"]


def is_valid(field, value, config):
    """The spec validate() is tested against, written out apart from it: positive integers,
    finite positive rates (a clip norm of 0 turns clipping off), the cross-field rules."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if field in INT_FIELDS:
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return False
        if field == "meta.num_steps":
            return (
                value % config.meta.unroll_length == 0 and config.train.val_last_steps <= value + 1
            )
        if field == "meta.unroll_length":
            return config.meta.num_steps % value == 0
        return True
    if not (number and math.isfinite(value)):
        return False
    return value >= 0 if field == "meta.clip_grad_norm" else value > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(INT_FIELDS + FLOAT_FIELDS),
    value=st.one_of(
        st.integers(-5, 50),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(0, 100),
        st.just(float("inf")),
        st.text(max_size=3),
        st.booleans(),
        st.none(),
    ),
)
@example(field="train.num_meta_iterations", value=0)  # invalid
@example(field="meta.num_steps", value=5)  # not a multiple of meta.unroll_length
@example(field="meta.learning_rate", value=0.0)
@example(field="meta.clip_grad_norm", value=-1e-9)
@example(field="train.log_every", value=True)
@example(field="meta.learning_rate", value=float("nan"))
@example(field="train.num_meta_iterations", value=1)  # valid: always tried, whatever is drawn
@example(field="meta.num_steps", value=12)
@example(field="meta.unroll_length", value=3)
@example(field="meta.learning_rate", value=3)
@example(field="meta.learning_rate", value=1e300)
@example(field="meta.clip_grad_norm", value=0)
def test_validate_accepts_exactly_the_valid_values(field, value):
    """validate() accepts every valid value and rejects every invalid one with a UserError
    naming the field (and raises nothing else)."""
    # Built from a dict, as a hand-edited config.json would be (no type lock on the fields).
    d = tiny_quadratic_config().to_dict()
    section, name = field.split(".")
    d[section][name] = value
    c = ml_collections.ConfigDict(d)
    valid = is_valid(field, value, tiny_quadratic_config())
    try:
        experiments.validate(c)
    except UserError as e:
        assert not valid, f"a valid {field}={value!r} was rejected: {e}"
        assert field in str(e)
    else:
        assert valid, f"an invalid {field}={value!r} was accepted"


def test_interrupted_atomic_write_keeps_the_previous_version(tmp_path, monkeypatch):
    """A write killed before its rename leaves the old file whole and no temporary behind."""
    from l2l_tf import io as l2l_io

    path = tmp_path / "results.json"
    l2l_io.write_json(path, {"version": 1})

    def killed(*args):
        raise KeyboardInterrupt  # as if the process died between writing and renaming

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        l2l_io.write_json(path, {"version": 2, "big": list(range(10000))})
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_metrics_lines_are_whole_records(tmp_path):
    from l2l_tf import io as l2l_io

    path = tmp_path / "metrics.jsonl"
    for i in range(3):
        l2l_io.append_jsonl(path, {"iteration": i, "loss": float("nan") if i == 1 else 0.5})
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["iteration"] for r in records] == [0, 1, 2]
    assert records[1]["loss"] is None  # non-finite numbers are written as null, valid JSON


@pytest.mark.parametrize("loop", ["l2l", "maml", "mgrl"])
def test_every_training_loop_reports_a_signal_with_its_name_and_exit_status(tmp_path, loop):
    """SIGINT during a run: each loop stops, checkpoints, and tells the main to exit 130."""
    from l2l_tf.experiments.init import training as init_training
    from l2l_tf.experiments.mgrl import training as rl_training
    from tests.test_init_training import tiny_config
    from tests.test_rl_training import tiny_mgrl_config

    if loop == "l2l":
        config, train = tiny_quadratic_config(), l2l_training.train
    elif loop == "maml":
        config, train = tiny_config("maml"), init_training.train
    else:
        config, train = tiny_mgrl_config(), rl_training.train
    config.train.num_meta_iterations = 1000  # far more than run before the signal lands
    lines = []

    def log(line):
        lines.append(line)
        if line.startswith("iter ") and len([x for x in lines if x.startswith("iter ")]) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # the loop's handler, not KeyboardInterrupt

    summary = train(config, tmp_path / "run", log=log)
    assert summary["interrupted"] == "SIGINT"
    assert summary["exit_status"] == 130
    assert summary["iterations"] < 1000
    assert any(line.startswith("stopped by SIGINT at ") for line in lines), lines
    assert (tmp_path / "run" / "ckpt" / "checkpoint").is_file()
