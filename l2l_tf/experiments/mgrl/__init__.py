"""Meta-gradient RL (Xu et al., 2018): the return's gamma and lambda learned online, evaluated
against a grid of fixed values over fresh seeds."""

from l2l_tf.errors import UserError
from l2l_tf.experiments.mgrl.evaluation import evaluate as _evaluate
from l2l_tf.experiments.mgrl.training import train
from l2l_tf.experiments.mgrl.validation import validate


def evaluate(
    config, *, workdir=None, output_dir=None, num_tasks=None, num_steps=None, seed=None, log=print
) -> dict:
    """`evaluate.py` for MGRL: the shared signature; task counts and horizons do not apply."""
    for name, value in (("num_tasks", num_tasks), ("num_steps", num_steps)):
        if value is not None:
            raise UserError(
                f"--{name} does not apply to MGRL runs; set --config.eval.num_seeds or "
                "--config.eval.num_meta_iterations instead"
            )
    return _evaluate(config, workdir=workdir, output_dir=output_dir, seed=seed, log=log)


__all__ = ["evaluate", "train", "validate"]
