"""Distributed meta-training: same trajectory on 2 logical CPUs and on 2 local workers.

Both need a fresh process (logical devices and a multi-worker cluster must be set up before
TensorFlow starts), so they run `tests/distributed_run.py` in subprocesses, with a time limit,
and compare every variable of the final checkpoint with a single-device run of the same config
in this process. The two-CPU run resumes the single-device run in mid-episode (so it also
tests that `distribute` may change on resume) and checks, from scratch, meta-steps on a family
with two parameter tensors; the two workers train from scratch.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from distributed_run import distributed_config

from l2l_tf.errors import UserError
from l2l_tf.experiments.l2l import training as l2l_training
from l2l_tf.meta import distributed
from l2l_tf.problems import Quadratic

SCRIPT = Path(__file__).resolve().parent / "distributed_run.py"
TIMEOUT_S = 300  # a bound for a loaded machine; the runs take seconds when it is idle


def checkpoint_values(workdir) -> dict:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(Path(workdir) / "ckpt")))
    return {
        k: np.asarray(reader.get_tensor(k))
        for k in reader.get_variable_to_shape_map()
        if k.endswith("VARIABLE_VALUE")
    }


def assert_same_run(workdir, reference):
    got, want = checkpoint_values(workdir), checkpoint_values(reference)
    assert sorted(got) == sorted(want)
    assert any(k.startswith("meta_optimizer/targets") for k in got)  # the meta-parameters
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The single-device run of the config the subprocesses use."""
    workdir = tmp_path_factory.mktemp("single")
    l2l_training.train(distributed_config("none"), workdir, log=lambda line: None)
    return workdir


def run_script(args, env=None):
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def finish(proc) -> dict:
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"distributed run timed out after {TIMEOUT_S}s:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def copy_at_iteration_4(reference, run):
    """A copy of the reference run as its checkpoint at iteration 4 left it (mid-episode)."""
    shutil.copytree(reference, run)
    for f in (run / "ckpt").glob("ckpt-6.*"):
        f.unlink()
    (run / "ckpt" / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-4"\nall_model_checkpoint_paths: "ckpt-4"\n'
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mirrored_two_cpus_resumes_single_device_run(reference, tmp_path):
    """Two replicas take over a one-device run in mid-episode and end where it ended."""
    run = tmp_path / "run"
    copy_at_iteration_4(reference, run)
    result = finish(run_script(["mirrored", run, 2]))
    assert result["iterations"] == 6
    assert json.loads((run / "config.json").read_text())["distribute"] == "mirrored"
    assert_same_run(run, reference)
    # Two parameter tensors: each replica's coordinates are scattered in the rule state.
    assert result["two_param_max_diff"] < 1e-5


def test_two_workers_on_localhost_match_single_device(reference, tmp_path):
    workers = [f"localhost:{_free_port()}" for _ in range(2)]
    procs = [
        run_script(
            ["multi_worker", tmp_path / "run"],
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
                )
            },
        )
        for i in range(2)
    ]
    try:
        results = [finish(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [r["iterations"] for r in results] == [6, 6]
    assert_same_run(tmp_path / "run", reference)  # the chief's work directory
    assert_same_run(tmp_path / "run" / "worker_1", reference)


def test_bad_distribute_values_are_user_errors(tiny_config, tmp_path, monkeypatch):
    tiny_config.distribute = "gpus"
    with pytest.raises(UserError, match="distribute must be one of"):
        l2l_training.train(tiny_config, tmp_path, log=lambda line: None)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="TF_CONFIG"):
        distributed.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG is not a valid"):
        distributed.make_strategy("multi_worker")


def test_uneven_split_is_a_user_error():
    class ThreeReplicas:
        num_replicas_in_sync = 3

    with pytest.raises(UserError, match="problem.batch_size"):
        distributed.check_shardable(Quadratic(dims=2, batch_size=4), ThreeReplicas())
    distributed.check_shardable(Quadratic(dims=2, batch_size=6), ThreeReplicas())


def test_default_is_single_device(tiny_config):
    assert tiny_config.distribute == "none"
    assert distributed.make_strategy("none") is None
    assert distributed.worker_workdir(None, "runs/x") == Path("runs/x")
