"""The benchmark scripts run and print their machine-readable lines (no timing is asserted)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT


def _bench_process(args: list[str]) -> subprocess.CompletedProcess:
    """Runs `python bench/...` (or a script) with `args` from the repository root."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _run_bench(args: list[str]) -> subprocess.CompletedProcess:
    """`_bench_process`, asserting exit status 0."""
    proc = _bench_process(args)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_meta_train_bench_rejects_a_non_positive_chunk_count():
    proc = _bench_process(["bench/meta_train.py", "--chunks=0"])
    assert proc.returncode != 0 and "--chunks" in proc.stderr and "Traceback" not in proc.stderr


def test_meta_train_bench_prints_a_bench_line_and_dumps_a_reference(tmp_path):
    cmd = ["bench/meta_train.py", "--unrolls=2", "--warmup=1", "--batch_size=4", "--dims=3"]
    proc = _run_bench([*cmd, "--unroll_length=2", "--recompute=on", "--chunks=3"])
    line = [x for x in proc.stdout.splitlines() if x.startswith("BENCH")][-1]
    fields = dict(re.findall(r"(\w+)=(\S+)", line))
    # configs/quadratic.py unrolls statically; --static=off|on would override it.
    assert fields["mode"] == "graph+static+recompute" and fields["coords"] == "12"
    for key in ("unrolls_per_s", "optimizee_steps_per_s", "compile_s", "peak_rss_mb"):
        assert float(fields[key]) > 0

    ref = tmp_path / "ref.npz"
    proc = _run_bench(["bench/meta_train.py", f"--dump={ref}", "--batch_size=4", "--dims=3"])
    data = np.load(ref)
    assert data["w"].shape == (4, 3, 3) and np.isfinite(data["meta_loss"])
    assert f"meta_loss={float(data['meta_loss']):.8g}" in proc.stdout


@pytest.mark.slow  # about 40 s: two trainings' validation through the bench script
def test_val_score_reproduces_the_training_loops_validation_score(tmp_path, tiny_config):
    import json

    from l2l_tf.experiments.l2l import training as l2l_training
    from l2l_tf.run import workdir as workdir_lib

    tiny_config.train.val_last_steps = 3
    l2l_training.train(tiny_config, tmp_path, log=lambda *a: None)
    info = json.loads((tmp_path / "best" / "info.json").read_text())

    def run(*args):
        return _bench_process(["scripts/val_score.py", f"--workdir={tmp_path}", *args])

    proc = run()
    assert proc.returncode == 0, proc.stderr
    score = float(re.search(r"validation score (\S+)", proc.stdout).group(1))
    np.testing.assert_allclose(score, info["val_final_loss_mean"], rtol=1e-3)
    assert "last 3 steps, 8 tasks" in proc.stdout

    proc = run("--rule=nag", "--learning_rate=0.1", "--last_steps=1")
    assert proc.returncode == 0, proc.stderr
    assert "nag (learning rate 0.1): validation score" in proc.stdout

    proc = run("--rule=lbfgs")
    assert proc.returncode != 0 and "--rule must be" in proc.stderr
    assert "Traceback" not in proc.stderr

    # A generalization test: another problem size and horizon, against the library's own score.
    from l2l_tf import evaluation
    from l2l_tf.problems import make_task_family
    from l2l_tf.unroll import make_trajectory_fn

    proc = run("--num_steps=9", "--config.problem.dims=5", "--last_steps=2")
    assert proc.returncode == 0, proc.stderr
    assert "last 2 steps, 8 tasks" in proc.stdout
    score = float(re.search(r"validation score (\S+)", proc.stdout).group(1))
    config = tiny_config.copy_and_resolve_references()
    config.problem.dims = 5
    rule = l2l_training.build_learned_rule(config)
    workdir_lib.restore_best(rule, tmp_path)
    family = make_task_family(config.problem, None)
    expected, _ = evaluation.validation_score(
        make_trajectory_fn(family, rule, 9), family, config.seed, 8, 2
    )
    np.testing.assert_allclose(score, expected, rtol=1e-4)
    assert not np.isclose(score, info["val_final_loss_mean"], rtol=1e-3)

    proc = run("--config.problem.dimz=5")
    assert proc.returncode == 2 and "unknown config field" in proc.stderr


def test_mnist_grad_scales_shows_the_deeper_first_layer_below_the_log_sign_threshold():
    """The diagnosis of the 2-layer gap (README, MNIST): at the paper's initialization every
    first-layer gradient of the 2-hidden-layer MLP is below exp(-10), against 64% (mostly
    always-black pixels) for one hidden layer; offline data, no download."""
    proc = _run_bench(["scripts/mnist_grad_scales.py"])
    first = [x for x in proc.stdout.splitlines() if x.strip().startswith("layer 1 w (784, 20)")]
    below = [int(re.search(r"(\d+)% below", x).group(1)) for x in first]
    assert len(below) == 2 and below[1] == 100 and below[0] < 90, proc.stdout


def test_op_count_finds_the_unrolls_forward_and_backward_loop_bodies():
    proc = _run_bench(["bench/op_count.py", "--batch_size=4", "--dims=3", "--top=3"])
    lines = [dict(re.findall(r"(\w+)=(\S+)", x)) for x in proc.stdout.splitlines()]
    bodies = {f["body"]: f for f in lines if f.get("bench") == "op_count"}
    assert set(bodies) == {"forward", "backward"}
    forward, backward = bodies["forward"], bodies["backward"]
    # What the forward loop stacks for the backward one, the backward loop unstacks.
    assert int(forward["stack_pushes"]) == int(backward["stack_pops"]) > 0
    for body in (forward, backward):
        assert 0 < int(body["real_ops"]) < int(body["nodes"])


def test_lstm_variants_agree_with_the_librarys_lstm_step():
    """The rewrites that bench/lstm_variants.py times compute the library's LSTM step: loss and
    meta-gradients within 1e-5 (relative); the lower bound without nonlinearities does not."""
    proc = _run_bench(["bench/lstm_variants.py", "--coords=16", "--reps=1", "--unrolls=1"])
    lines = [dict(re.findall(r"(\w+)=(\S+)", x)) for x in proc.stdout.splitlines()]
    errors = {f["variant"]: float(f["max_rel_err"]) for f in lines if "max_rel_err" in f}
    exact = ("transposed", "block_cell", "split_kernel")
    assert set(errors) == {"reference", "no_nonlinearity", *exact}
    assert errors["reference"] == 0.0
    assert all(errors[v] < 1e-5 for v in exact)
    assert errors["no_nonlinearity"] > 1e-2
    timed = [f for f in lines if f.get("bench") == "lstm_variant"]
    assert len(timed) == 5 and all(float(f["ms_per_unroll"]) > 0 for f in timed)


def test_lstm_variants_rejects_an_unknown_variant():
    proc = _bench_process(["bench/lstm_variants.py", "--variants=reference,fast"])
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: --variants")


@pytest.mark.slow
@pytest.mark.parametrize("peer", ["torch", "jax"])
def test_peers_compute_l2l_tfs_meta_loss_and_meta_gradient(peer, tmp_path):
    pytest.importorskip(peer)  # the bench extra: pip install -e ".[bench]"
    ref = tmp_path / "ref.npz"
    _run_bench(["bench/meta_train.py", f"--dump={ref}", "--batch_size=4", "--dims=3"])
    data = np.load(ref)
    proc = _run_bench([f"bench/peers/{peer}_l2l.py", f"--check={ref}"])
    fields = dict(re.findall(r"(\w+)=(\S+)", proc.stdout.strip().splitlines()[-1]))
    assert fields["impl"] == peer
    np.testing.assert_allclose(float(fields["meta_loss"]), data["meta_loss"], rtol=1e-5)
    np.testing.assert_allclose(float(fields["grad_norm"]), data["grad_norm"], rtol=1e-4)
