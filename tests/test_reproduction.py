"""The same commands reproduce the recorded runs exactly, and old work directories still work.

tests/golden/ was recorded by `python tests/reproduction.py --record` before the library was
reorganized; a change that moves code must leave every number in it unchanged.
"""

import json
import shutil
import subprocess
import sys

import pytest
import reproduction


@pytest.mark.parametrize("name", list(reproduction.RUNS))
def test_run_reproduces_recorded_metrics(name, tmp_path):
    done = reproduction.train(name, tmp_path / name)
    assert done.returncode == 0, done.stderr[-2000:]
    assert reproduction.read_metrics(tmp_path / name) == reproduction.golden(name)


def test_deterministic_drops_timing_fields():
    records = [
        {"iteration": 1, "compile_s": 2.0},
        {"iteration": 2, "meta_loss": 1.5, "unrolls_per_s": 9.0, "wall_s": 3.0},
    ]
    assert reproduction.deterministic(records) == [{"iteration": 2, "meta_loss": 1.5}]


@pytest.mark.parametrize("name", list(reproduction.STOPPED_AT))
def test_old_workdir_resumes_to_the_recorded_run(name, tmp_path):
    """A work directory saved by the earlier code resumes where it stopped, to the same numbers."""
    workdir = tmp_path / name
    shutil.copytree(reproduction.GOLDEN / "workdirs" / name, workdir)
    done = reproduction.train(name, workdir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"at meta-iteration {reproduction.STOPPED_AT[name]}" in done.stdout
    stop = reproduction.STOPPED_AT[name]
    # Past the stop, every record repeats the uninterrupted run's ("best" compares with the
    # best score so far, which includes the stopped run's extra validation at its end).
    strip = lambda records: [
        {k: v for k, v in r.items() if k != "best"} for r in records if r["iteration"] > stop
    ]
    resumed = strip(reproduction.read_metrics(workdir))
    assert resumed and resumed == strip(reproduction.golden(name))


@pytest.mark.parametrize("name", ["quadratic", "maml_sinusoid"])
def test_old_workdir_evaluates(name, tmp_path):
    workdir = tmp_path / name
    shutil.copytree(reproduction.GOLDEN / "workdirs" / name, workdir)
    out = tmp_path / "eval"
    cmd = [
        sys.executable,
        str(reproduction.ROOT / "evaluate.py"),
        f"--workdir={workdir}",
        f"--output_dir={out}",
        "--num_tasks=4",
        "--config.eval.num_tuning_tasks=4",
        "--config.eval.lr_grid=(0.01,0.1)",
    ]
    done = subprocess.run(
        cmd, cwd=reproduction.ROOT, env=reproduction.env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    if name == "maml_sinusoid":  # the initialization learners keep it in details.json
        results = json.loads((out / "details.json").read_text())
    best = json.loads((workdir / "best" / "info.json").read_text())["iteration"]
    assert best <= reproduction.STOPPED_AT[name]
    assert results["best_iteration"] == best
