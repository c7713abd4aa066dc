"""The benchmark scripts run and print their machine-readable lines (no timing is asserted)."""

import os
import re
import subprocess
import sys

import numpy as np

from tests.conftest import ROOT


def test_meta_train_bench_prints_a_bench_line_and_dumps_a_reference(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [
        sys.executable,
        "bench/meta_train.py",
        "--unrolls=2",
        "--warmup=1",
        "--batch_size=4",
        "--dims=3",
        "--unroll_length=2",
        "--recompute=on",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stdout.splitlines() if x.startswith("BENCH")][-1]
    fields = dict(re.findall(r"(\w+)=(\S+)", line))
    assert fields["mode"] == "graph+recompute" and fields["coords"] == "12"
    for key in ("unrolls_per_s", "optimizee_steps_per_s", "compile_s", "peak_rss_mb"):
        assert float(fields[key]) > 0

    ref = tmp_path / "ref.npz"
    proc = subprocess.run(
        [sys.executable, "bench/meta_train.py", f"--dump={ref}", "--batch_size=4", "--dims=3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = np.load(ref)
    assert data["w"].shape == (4, 3, 3) and np.isfinite(data["meta_loss"])
    assert f"meta_loss={float(data['meta_loss']):.8g}" in proc.stdout
