"""What runs a config: `meta.learner` selects the training loop, evaluation and validation.

The mains call `runner_for(config)` and nothing else, so a new family of meta-learners (with
its own loop, say) is one module and one line in `RUNNERS`. Runners are built lazily so that
running one never imports another's dependencies.
"""

from collections.abc import Callable
from typing import NamedTuple

from l2l_tf.errors import UserError, lookup


class Runner(NamedTuple):
    train: Callable  # train(config, workdir, *, overwrite=False, log=print) -> summary dict
    evaluate: Callable  # evaluate(config, *, workdir, output_dir, num_tasks, num_steps, seed)
    validate: Callable  # validate(config): raises UserError naming the bad field


def _learned_optimizer() -> Runner:
    from l2l_tf import config, evaluation, training

    return Runner(training.train, evaluation.evaluate, config.validate_l2l)


def _meta_gradient_rl() -> Runner:
    from l2l_tf import rl_training

    def evaluate(
        config,
        *,
        workdir=None,
        output_dir=None,
        num_tasks=None,
        num_steps=None,
        seed=None,
        log=print,
    ):
        for name, value in (("num_tasks", num_tasks), ("num_steps", num_steps)):
            if value is not None:
                raise UserError(
                    f"--{name} does not apply to MGRL runs; set --config.eval.num_seeds or "
                    "--config.eval.num_meta_iterations instead"
                )
        return rl_training.evaluate(
            config, workdir=workdir, output_dir=output_dir, seed=seed, log=log
        )

    return Runner(rl_training.train, evaluate, rl_training.validate_config)


def _initialization_learner() -> Runner:
    from l2l_tf import init_evaluation, init_training

    return Runner(init_training.train, init_evaluation.evaluate, init_training.validate)


#: meta.learner -> a function building its Runner.
RUNNERS = {
    "l2l": _learned_optimizer,
    # MAML and its relatives learn an initialization (l2l_tf/meta/{maml,reptile,imaml}.py).
    "maml": _initialization_learner,
    "fomaml": _initialization_learner,
    "metasgd": _initialization_learner,
    "reptile": _initialization_learner,
    "imaml": _initialization_learner,
    "mgrl": _meta_gradient_rl,
}


def learner_name(config) -> str:
    meta = config.get("meta") if config is not None else None
    return (meta.get("learner") if meta else None) or "l2l"


def runner_for(config) -> Runner:
    """The runner of `config` (by `config.meta.learner`, default "l2l")."""
    name = learner_name(config)
    if not isinstance(name, str):
        raise UserError(f"meta.learner must be a string, got {name!r}")
    return lookup(RUNNERS, name, "meta.learner")()
