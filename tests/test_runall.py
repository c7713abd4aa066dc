"""runall.sh's argument checks (the batch itself is the README's long run, not a test)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def runall(*args, env=None):
    return subprocess.run(
        ["bash", str(ROOT / "runall.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mnist=nope", "mnist"], "--mnist=nope is not a variant of configs/mnist.py"),
        (["--mnist=quick", "mnist"], "--mnist=quick is not a variant"),
        (["--mnist="], "--mnist= is not a variant"),
        (["--mnist=long_unroll", "quadratic"], "needs mnist among the named configs"),
        (["--quick", "--mnist=long_unroll", "mnist"], "exclude each other"),
        (["--fast"], "unknown option --fast"),
        (["no_such_config"], "no config configs/no_such_config.py"),
    ],
)
def test_runall_rejects_bad_arguments_in_one_line(args, message):
    result = runall(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_runall_help_names_the_mnist_option():
    result = runall("--help")
    assert result.returncode == 0 and "--mnist=long_unroll_rms_eqhead_lin" in result.stdout


def test_runall_mnist_variant_trains_that_variant_into_its_own_folders(tmp_path):
    """With a stub `python` that records its commands (and runs `python -c` for real)."""
    log = tmp_path / "commands.txt"
    stub = tmp_path / "python"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        f'if [ "$1" = -c ]; then exec {sys.executable} "$@"; fi\n'
        f'echo "$*" >> {log}\n'
    )
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = runall("--mnist=long_unroll_rms_eqhead_lin", env=env)
    assert result.returncode == 0, result.stderr
    commands = log.read_text().splitlines()
    w = "runs/mnist_long_unroll_rms_eqhead_lin/mnist"
    assert commands[0] == (
        f"train_optimizer.py --config=configs/mnist.py:long_unroll_rms_eqhead_lin --workdir={w}"
    )
    assert commands[1] == f"evaluate.py --workdir={w}"
    assert [c.split("--output_dir=")[-1] for c in commands[2:6]] == [
        f"{w}/eval_{name}" for name in ("longer", "40hidden", "2layers", "relu")
    ]
    assert commands[6] == (
        "make_figures.py --runs_dir=runs/mnist_long_unroll_rms_eqhead_lin "
        "--output_dir=results/mnist_long_unroll_rms_eqhead_lin"
    )
    assert len(commands) == 7
