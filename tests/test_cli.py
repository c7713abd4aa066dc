"""The command-line mains: an end-to-end run, and one-line errors with non-zero exits."""

import fcntl
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TINY = [
    "--config.problem.dims=3",
    "--config.problem.batch_size=4",
    "--config.rule.hidden_size=4",
    "--config.meta.num_steps=4",
    "--config.meta.unroll_length=2",
    "--config.train.num_meta_iterations=4",
    "--config.train.num_val_tasks=4",
    "--config.eval.num_tuning_tasks=4",
    "--config.eval.lr_grid=(0.01,0.1)",
]


def run(script, *args, cwd=ROOT):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_line(proc):
    """The last stderr line; asserts there is no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr.strip().splitlines()[-1]


def test_train_then_evaluate(tmp_path):
    from tests.test_papercuts import documented_keys, flat_keys

    workdir = tmp_path / "run"
    proc = run(
        "train_optimizer.py", "--config=configs/quadratic.py:quick", f"--workdir={workdir}", *TINY
    )
    assert proc.returncode == 0, proc.stderr
    assert "iter 4/4" in proc.stdout
    # One `done:` line ends the run, with the next command; nothing at all on stderr.
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("done: 4 meta-iterations in ")
    assert last.endswith(f"next: python evaluate.py --workdir={workdir}")
    assert proc.stderr == ""
    # Evaluated while this process holds the lock, as a training process would: it says so.
    fd = os.open(workdir / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run("evaluate.py", f"--workdir={workdir}", "--num_tasks=6", "--num_steps=5")
    finally:
        os.close(fd)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert f"note: {workdir} is still training (process {os.getpid()})" in proc.stdout
    assert "best/ from meta-iteration 4" in proc.stdout
    results = json.loads((workdir / "eval" / "results.json").read_text())
    assert results["num_tasks"] == 6 and results["num_steps"] == 5
    assert "| learned |" in proc.stdout
    # The keys are those docs/workdir.md documents, and no others.
    documented = documented_keys("learned optimizer")
    mnist_only = {k for k in documented if k.startswith("optimizers.test_")} | {"data"}
    assert documented - mnist_only <= flat_keys(results) <= documented
    assert set(results["optimizers"]) == {"learned", "sgd", "momentum", "nag", "rmsprop", "adam"}
    assert len(results["optimizers"]["learned"]["curve_mean"]) == 6
    # Running the same command again resumes (and has nothing left to do).
    proc = run(
        "train_optimizer.py", "--config=configs/quadratic.py:quick", f"--workdir={workdir}", *TINY
    )
    assert proc.returncode == 0 and "resuming" in proc.stdout


def test_evaluate_baselines_alone(tmp_path):
    # Without --output_dir the results go to runs/baselines/NAME under the current directory.
    proc = run(
        "evaluate.py",
        f"--config={ROOT / 'configs' / 'quadratic.py'}:quick",
        *TINY,
        "--num_tasks=4",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "runs/baselines/quadratic/results.json").read_text())
    assert "learned" not in results["optimizers"] and "adam" in results["optimizers"]
    assert results["num_tasks"] == 4


@pytest.mark.parametrize(
    "args,message",
    [
        (["--config=configs/nope.py"], "config file 'configs/nope.py' not found"),
        (
            ["--config=configs/quadratic.py", "--config.meta.unrol_length=5"],
            "unknown config field 'config.meta.unrol_length'; did you mean 'unroll_length'?",
        ),
        (
            ["--config=configs/quadratic.py", "--config.meta.unroll_length=30"],
            "meta.unroll_length (30) must divide meta.num_steps (100)",
        ),
        (
            ["--config=configs/quadratic.py", "--config.problem.dims=0"],
            "problem.dims must be a positive number",
        ),
        (
            ["--config=configs/quadratic.py", "--config.problem.batch_size=-4"],
            "problem.batch_size must be a positive number",
        ),
    ],
)
def test_train_bad_input(tmp_path, args, message):
    proc = run("train_optimizer.py", *args, f"--workdir={tmp_path / 'w'}")
    assert proc.returncode == 2
    assert error_line(proc).startswith(f"error: {message}")


def test_evaluate_bad_workdirs(tmp_path):
    proc = run("evaluate.py", f"--workdir={tmp_path / 'missing'}")
    assert proc.returncode == 2 and "does not exist" in error_line(proc)
    (tmp_path / "foreign").mkdir()
    proc = run("evaluate.py", f"--workdir={tmp_path / 'foreign'}")
    assert proc.returncode == 2 and "not an l2l_tf work directory" in error_line(proc)


def test_evaluate_without_checkpoint_and_with_mismatch(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    from configs import quadratic
    from l2l_tf import config as config_lib

    (workdir / "config.json").write_text(config_lib.to_json(quadratic.get_config("quick")))
    proc = run("evaluate.py", f"--workdir={workdir}")
    assert proc.returncode == 2 and "no trained optimizer" in error_line(proc)
    proc = run(
        "train_optimizer.py",
        "--config=configs/quadratic.py:quick",
        f"--workdir={workdir}",
        *TINY,
        "--overwrite",
    )
    assert proc.returncode == 0, proc.stderr
    proc = run("evaluate.py", f"--workdir={workdir}", "--config.rule.hidden_size=9")
    assert proc.returncode == 2 and "does not match the config's rule" in error_line(proc)


MNIST_TINY = [
    "--config.problem.hidden_sizes=(3,)",
    "--config.problem.batch_size=8",
    "--config.rule.hidden_size=4",
    "--config.meta.num_steps=4",
    "--config.meta.unroll_length=2",
    "--config.train.num_meta_iterations=4",
    "--config.train.eval_every=4",
    "--config.train.num_val_tasks=2",
    "--config.eval.num_tasks=3",
    "--config.eval.num_tuning_tasks=2",
    "--config.eval.lr_grid=(0.01,0.1)",
    "--config.eval.baselines=('sgd','adam')",
]


def train_mnist(tmp_path):
    """Trains configs/mnist.py:quick (MNIST_TINY) on a small local MNIST file in tmp_path;
    returns (the work directory, the training process)."""
    from tests.mnist_files import write_npz

    write_npz(tmp_path / "mnist.npz")
    workdir = tmp_path / "run"
    proc = run(
        "train_optimizer.py",
        "--config=configs/mnist.py:quick",
        f"--workdir={workdir}",
        f"--config.data.path={tmp_path / 'mnist.npz'}",
        *MNIST_TINY,
    )
    assert proc.returncode == 0, proc.stderr
    return workdir, proc


def test_mnist_train_and_evaluate(tmp_path):
    workdir, proc = train_mnist(tmp_path)
    assert f"MNIST from {tmp_path / 'mnist.npz'}: 30 training and 10 held-out" in proc.stdout
    proc = run("evaluate.py", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((workdir / "eval" / "results.json").read_text())
    source = str(tmp_path / "mnist.npz")
    assert results["data"] == {"source": source, "num_train": 30, "num_test": 10}
    for r in results["optimizers"].values():
        for key in ("test_loss_mean", "test_loss_sem", "test_accuracy_mean", "test_accuracy_sem"):
            assert key in r
        assert 0 <= r["test_accuracy_mean"] <= 1
    assert "test accuracy (mean ± sem)" in (workdir / "eval" / "summary.md").read_text()


@pytest.mark.slow  # about 25 s: an MNIST training, then evaluation on another net (-m slow)
def test_mnist_generalization_overrides(tmp_path):
    """The paper's generalization tests: the trained optimizer on another problem, into its own
    folder (the overrides at once here, to keep the test short)."""
    workdir, _ = train_mnist(tmp_path)
    proc = run("evaluate.py", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "eval_other"
    proc = run(
        "evaluate.py",
        f"--workdir={workdir}",
        "--num_steps=6",
        "--config.problem.hidden_sizes=(5,3)",
        "--config.problem.activation=relu",
        f"--output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads((out / "results.json").read_text())
    assert r["num_steps"] == 6 and len(r["optimizers"]["learned"]["curve_mean"]) == 7
    assert r["config"]["problem"]["hidden_sizes"] == [5, 3]
    assert r["config"]["problem"]["activation"] == "relu"
    assert (workdir / "eval" / "results.json").is_file()  # the default folder is untouched


@pytest.mark.parametrize(
    "path,message",
    [
        ("{tmp}/missing.npz", "data.path '{tmp}/missing.npz' does not exist"),
        ("{tmp}/bad.npz", "{tmp}/bad.npz is corrupt or not an npz file"),
    ],
)
def test_mnist_bad_data_path(tmp_path, path, message):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    proc = run(
        "train_optimizer.py",
        "--config=configs/mnist.py:quick",
        f"--workdir={tmp_path / 'w'}",
        f"--config.data.path={path.format(tmp=tmp_path)}",
    )
    assert proc.returncode == 2
    assert error_line(proc).startswith(f"error: {message.format(tmp=tmp_path)}")


def test_mnist_bad_problem_override(tmp_path):
    proc = run(
        "evaluate.py",
        "--config=configs/mnist.py:quick",
        "--config.problem.activation=softplus",
        f"--output_dir={tmp_path}",
    )
    assert proc.returncode == 2
    assert error_line(proc).startswith("error: problem.activation must be one of")
