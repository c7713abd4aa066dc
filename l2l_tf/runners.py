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


#: meta.learner -> a function building its Runner.
RUNNERS = {
    "l2l": _learned_optimizer,
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
