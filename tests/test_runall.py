"""runall.sh's argument checks (the batch itself is the README's long run, not a test)."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def runall(*args):
    return subprocess.run(
        ["bash", str(ROOT / "runall.sh"), *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mnist=nope", "mnist"], "--mnist=nope is not a variant of configs/mnist.py"),
        (["--mnist=quick", "mnist"], "--mnist=quick is not a variant"),
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
